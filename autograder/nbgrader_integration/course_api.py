"""An NbGraderAPI for a course folder with its nbgrader_config.py loaded, and nbgrader's log noise filtered."""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

from nbgrader.apps import NbGraderAPI

_NOISE = ("Attribute 'checksum'", "db_assignments", "Removing existing assignment",
          "Directory not found. Creating", "Skipped submission with no match information",
          # NbGraderAPI probes the exchange on start; in-process grading never uses it
          "Unwritable directory, please contact your instructor")


class _QuietNbgrader(logging.Filter):
    """Drops nbgrader's per-file INFO lines and its checksum warning, which drown the lines that matter."""
    # every test cell trips the checksum warning when OverwriteCells puts the hidden-test regions back

    def filter(self, record: logging.LogRecord) -> bool:
        # the level first: most records are INFO lines dropped either way, and formatting one
        # (a submission's repr, up to six times) was a tenth of the grading pass's gradebook work
        if record.levelno < logging.WARNING and not logging.getLogger().isEnabledFor(logging.DEBUG):
            return False
        message = record.getMessage()
        return not any(noise in message for noise in _NOISE)


def quiet_nbgrader_logs() -> None:
    # nbgrader 0.9.6 with SQLAlchemy 2.x: harmless autoflush notes on every new submission row
    warnings.filterwarnings("ignore", message=r"Object of type <Submitted\w+> not in session")
    logger = logging.getLogger("traitlets")
    if not any(isinstance(f, _QuietNbgrader) for f in logger.filters):
        logger.addFilter(_QuietNbgrader())


def open_api(course: Path, **config) -> NbGraderAPI:
    """An NbGraderAPI for the course folder, with its nbgrader_config.py loaded."""
    quiet_nbgrader_logs()
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader
    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config() \
        if (Path(course) / "nbgrader_config.py").exists() else Config()
    cfg.CourseDirectory.root = str(Path(course).resolve())
    for section, values in config.items():
        for k, v in values.items():
            cfg[section][k] = v
    return NbGraderAPI(config=cfg)
