"""SharedGradebook: during one cohort pass, every gradebook opened on the course's database is one session of one connection."""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from nbgrader.api import Gradebook

from .gradebook_api import db_url

log = logging.getLogger(__name__)


class SharedGradebook:
    """What `Gradebook(url, course_id)` returns during `shared_gradebook`: the one real gradebook."""
    # nbgrader opens a Gradebook (a new SQLAlchemy engine, table inspection, create_all, course
    # check) five or six times per notebook. Here every opening shares one connection and
    # session; `close()` keeps what closing means to the caller (its uncommitted changes are
    # discarded: nbgrader commits what it keeps), and the course row is still checked per id.

    def __init__(self, real: Gradebook, course_id: str, checked: set[str]):
        self._real, self._course_id = real, course_id
        if course_id not in checked:
            real.check_course(course_id=course_id)
            checked.add(course_id)

    def __getattr__(self, name):
        # Sequential use only (one converter, one thread): the id of the latest opening is
        # the one its methods see, as with a gradebook of its own.
        self._real.course_id = self._course_id
        return getattr(self._real, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._real.db.rollback()


# Every module of nbgrader's autograde pipeline that opens a Gradebook, and the kit's own.
_GRADEBOOK_USERS = ("nbgrader.converters.autograde", "nbgrader.preprocessors.saveautogrades",
                    "nbgrader.preprocessors.overwritecells", "nbgrader.preprocessors.latesubmissions",
                    "nbgrader.preprocessors.overwritekernelspec",
                    f"{__package__}.source_cells", f"{__package__}.save_auto_grades",
                    f"{__package__}.gradebook_api")


@contextlib.contextmanager
def shared_gradebook(course: Path):
    """Within this block, every gradebook opened in this process on the course's database
    is one session of one connection (nbgrader's own code included). Yields `durable()`:
    once it returns, what was committed so far survives a power cut too."""
    import importlib
    import sys
    url = db_url(course)
    path = Path(url[10:]) if url.startswith("sqlite:///") else None
    if path is not None:
        _journal(path, "wal")
    real = Gradebook(url)
    if path is not None:
        _commit_without_sync(real)
    checked = {real.course_id}

    def ours(other: str) -> bool:
        return other == url or (other.startswith("sqlite:///") and
                                Path(other[10:]).resolve() == Path(url[10:]).resolve())

    def opened(db_url_, course_id="default_course", authenticator=None):
        if not ours(db_url_) or authenticator is not None:
            return Gradebook(db_url_, course_id, authenticator)
        return SharedGradebook(real, course_id, checked)

    saved = {}
    for name in _GRADEBOOK_USERS:
        module = sys.modules.get(name) or importlib.import_module(name)
        saved[module] = module.__dict__["Gradebook"]
        module.Gradebook = opened
    try:
        yield lambda: _durable(real) if path is not None else None
    finally:
        for module, original in saved.items():
            module.Gradebook = original
        real.close()
        if path is not None:
            _journal(path, "delete")


def _journal(path: Path, mode: str) -> None:
    """Sets the database file's journal mode (it is stored in the file). WAL for the pass; back
    to nbgrader's default after it, so gradebook.db is again one file. A database another
    process holds open stays in WAL mode, which every SQLite reader handles."""
    import sqlite3
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=10)) as con:
            con.execute(f"PRAGMA journal_mode={mode}")
    except sqlite3.Error as e:
        log.warning("gradebook journal mode not set to %s: %s", mode, e)


def _durable(real: Gradebook) -> None:
    """A checkpoint syncs the write-ahead log and the database file: one wait per student
    instead of one per commit."""
    from sqlalchemy import text
    real.db.execute(text("PRAGMA wal_checkpoint(PASSIVE)"))
    real.db.commit()


def _commit_without_sync(real: Gradebook) -> None:
    """nbgrader commits once per cell: with the default journal, each commit waits for the disk
    several times (most of a cohort pass's time). In WAL mode with synchronous=NORMAL a commit
    waits for none: a killed process still loses nothing it committed, and the file stays
    consistent; only a power cut can drop commits made since the last `durable()`."""
    from sqlalchemy import event

    @event.listens_for(real.engine, "connect")
    def _no_sync(dbapi_connection, _record):
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    real.db.commit()
    real.db.close()
    real.engine.dispose()   # connections opened from now on carry the setting
