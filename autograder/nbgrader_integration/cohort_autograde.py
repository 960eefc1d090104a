"""CohortAutograde: `nbgrader autograde` over many students in one run of one converter."""
from __future__ import annotations

from pathlib import Path

from nbconvert.exporters import Exporter
from traitlets import Callable, Set, Type, Unicode

from nbgrader import utils
from nbgrader.converters import Autograde
from nbgrader.converters.base import BaseConverter

from . import source_cells
from .course_api import open_api
from .owned_exporter import OwnedNotebookExporter


class CohortAutograde(Autograde):
    """`nbgrader autograde` over the given students in one converter run, calling back as each is stored."""
    # The same preprocessors, copies into autograded/, checksums, timestamps and late penalties
    # as one run per student, without paying the converter's and gradebook's start-up for each.

    students = Set(Unicode(), help="student ids to autograde; every other submission is left as it is")
    on_done = Callable(allow_none=True, default_value=None,
                       help="called with a student id once that student's notebooks are stored")
    ready = Callable(allow_none=True, default_value=None,
                     help="called with a student id before that student is converted; False skips "
                          "the student (it may wait, e.g. for the engine's result)")
    # each notebook is read by the exporter and written once: no copies of it are needed
    exporter_class = Type(OwnedNotebookExporter, klass=Exporter).tag(config=True)

    def __init__(self, **kw):
        super().__init__(**kw)
        self._current = None

    def init_destination(self, assignment_id: str, student_id: str) -> bool:
        if student_id not in self.students:
            return False          # up to date, or scored 0 without nbgrader: not touched
        if self.ready is not None and not self.ready(student_id):
            return False
        return super().init_destination(assignment_id, student_id)

    def init_assignment(self, assignment_id: str, student_id: str) -> None:
        self._current = None
        super().init_assignment(assignment_id, student_id)
        self._current = student_id

    def convert_single_notebook(self, notebook_filename: str) -> None:
        # nbgrader converts each notebook twice: sanitize into autograded/, then read that copy
        # back and autograde it. Here both lists run in order in one conversion: the same
        # notebook, without the write, read, copy and validation in between (a third of the
        # pass). Nothing in between depends on the copy on disk: no kernel runs here. The
        # group-shared permissions nbgrader sets after its second pass, set_permissions sets
        # once the student's notebooks are written.
        self.log.info("Sanitizing and autograding %s", notebook_filename)
        self.exporter._preprocessors = []
        for pp in [*self.sanitize_preprocessors, *self.autograde_preprocessors]:
            self.exporter.register_preprocessor(pp)
        with utils.setenv(NBGRADER_EXECUTION="autograde"):
            BaseConverter.convert_single_notebook(self, notebook_filename)

    def run_post_convert_hook(self):
        super().run_post_convert_hook()
        if self._current is not None:   # every notebook converted, permissions set
            if self.on_done is not None:
                self.on_done(self._current)
            self._current = None


def autograde_cohort(course: Path, assignment: str, students: list[str], on_done, ready=None) -> dict:
    """Runs CohortAutograde; `ready(student)` is asked before each student (False skips it),
    and `on_done(student)` is called as each student's notebooks are stored. Returns
    nbgrader's outcome (`success`, and `log`/`error` when it failed)."""
    from nbgrader.utils import capture_log, temp_attrs
    if not students:
        return {"success": True}
    api = open_api(course)
    with temp_attrs(api.coursedir, assignment_id=assignment, student_id="*"), \
            source_cells.one_read_per_run():
        app = CohortAutograde(students=set(students), on_done=on_done, ready=ready,
                              coursedir=api.coursedir, parent=api)
        app.force = True
        app.create_student = True
        return capture_log(app)
