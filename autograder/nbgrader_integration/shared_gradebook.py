"""SharedGradebook: during one cohort pass, every gradebook opened on the course's database is one session of one connection."""
from __future__ import annotations

import contextlib
from pathlib import Path

from nbgrader.api import Gradebook

from .gradebook_api import db_url


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
                    f"{__package__}.restore_grade_cells", f"{__package__}.gradebook_api")


@contextlib.contextmanager
def shared_gradebook(course: Path):
    """Within this block, every gradebook opened in this process on the course's database
    is one session of one connection (nbgrader's own code included)."""
    import importlib
    import sys
    url = db_url(course)
    real = Gradebook(url)
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
        yield
    finally:
        for module, original in saved.items():
            module.Gradebook = original
        real.close()
