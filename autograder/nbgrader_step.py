"""nbgrader glue: engine-fed autograde preprocessors and gradebook access (intake glue: nbgrader_intake.py)."""
from __future__ import annotations

from . import lean  # noqa: F401  (before nbformat: skips what grading never uses)

import atexit
import contextlib
import logging
import os
import sqlite3
import warnings
from pathlib import Path

import nbformat
from nbformat.notebooknode import NotebookNode
from traitlets import Unicode

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.apps import NbGraderAPI
from nbgrader.converters import Autograde
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor

from . import rubric as rubric_mod
from .notebook import declared_grade_id
from .scoring import PartResult, Result

log = logging.getLogger(__name__)

# --- where things are ---------------------------------------------------------------------
def results_dir(course: Path) -> Path:
    return Path(course) / ".kit" / "results"


def _coursedir_of(pp: NbGraderPreprocessor) -> CourseDirectory:
    """The converter's CourseDirectory (an API call may set its root without config)."""
    node = pp
    while node is not None:
        if isinstance(getattr(node, "coursedir", None), CourseDirectory):
            return node.coursedir
        node = getattr(node, "parent", None)
    return CourseDirectory(config=pp.config)


# --- results: the store first, the engine on a miss ----------------------------------------
_ENGINES: dict[str, object] = {}


def _engine(assignment: str):
    """One warm engine per assignment for this trusted process, closed at exit."""
    if assignment not in _ENGINES:
        from .engine import Engine
        eng = Engine(assignment)
        eng.__enter__()
        atexit.register(eng.__exit__, None, None, None)
        _ENGINES[assignment] = eng
    return _ENGINES[assignment]


def result_for(path: Path, *, assignment: str, student: str, course: Path) -> Result:
    """The engine's Result for a submitted notebook: cached by submission key, graded on a miss."""
    from .identity import key_of
    from .store import ResultStore
    store = ResultStore(results_dir(course), assignment=assignment)
    key = key_of(path, store.fingerprint, assignment)
    cached = store.find_key(key)
    if cached is not None:
        log.debug("%s: result taken from the store", student)
        return cached
    log.info("%s: not in the store, grading now", student)
    result = _engine(assignment).grade(path)
    store.save(student, result, key=key)
    return result


# --- sanitize: put every cell back in the role the source gave it ---------------------------
class RestoreGradeCells(NbGraderPreprocessor):
    """Resets forged nbgrader metadata and re-inserts deleted grade cells, before OverwriteCells.

    OverwriteCells trusts the `grade`/`solution` flags the student sent and crashes on a grade
    flag set on a solution cell; its add_missing_cells crashes when the cell before a deleted
    grade cell is gone too. Here the gradebook's source cells decide every role.
    """

    def preprocess(self, nb: NotebookNode, resources: dict):
        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gb:
            source = gb.find_notebook(info["notebook"], info["assignment"])
            roles = _source_roles(source)
            source_cells = {c.name: c for c in source.source_cells}
        for cell in nb.cells:
            self._reset_role(cell, roles)
        _insert_missing(nb, roles, source_cells, self.log)
        return nb, resources

    def _reset_role(self, cell: NotebookNode, roles: dict[str, dict]) -> None:
        meta = cell.get("metadata", {}).get("nbgrader")
        if meta is None:
            return
        gid = declared_grade_id(cell)
        if gid not in roles:
            if meta.get("grade") or meta.get("solution") or meta.get("locked") or meta.get("task"):
                self.log.warning("Cell with unknown grade_id %r: its nbgrader metadata is dropped",
                                 meta.get("grade_id"))
            del cell.metadata["nbgrader"]
            return
        for flag, value in roles[gid].items():
            if meta.get(flag) != value:
                self.log.warning("Cell %s: nbgrader %r was %r, restored to %r", gid, flag,
                                 meta.get(flag), value)
                meta[flag] = value
        if not roles[gid]["grade"]:
            meta.pop("points", None)


def _source_roles(source_nb) -> dict[str, dict]:
    grade = {c.name: c.max_score for c in source_nb.grade_cells}
    solution = {c.name for c in source_nb.solution_cells}
    roles = {}
    for c in source_nb.source_cells:
        role = {"grade": c.name in grade, "solution": c.name in solution, "locked": bool(c.locked)}
        if role["grade"]:
            role["points"] = float(grade[c.name])
        roles[c.name] = role
    return roles


def _insert_missing(nb: NotebookNode, roles: dict[str, dict], source_cells: dict, log_) -> None:
    """A deleted grade cell comes back after the nearest surviving source cell that preceded it."""
    order = list(source_cells)
    for gid in order:
        if not roles[gid]["grade"] or _find(nb, gid) is not None:
            continue
        log_.warning("Grade cell %s was missing from the submission: restored from the source", gid)
        cell = _cell_from_source(source_cells[gid], roles[gid])
        at = len(nb.cells)
        for prev in reversed(order[:order.index(gid)]):
            idx = _find(nb, prev)
            if idx is not None:
                at = idx + 1
                break
        else:
            at = 0 if order.index(gid) == 0 else len(nb.cells)
        nb.cells.insert(at, cell)


def _find(nb: NotebookNode, grade_id: str) -> int | None:
    for i, cell in enumerate(nb.cells):
        if declared_grade_id(cell) == grade_id:
            return i
    return None


def _cell_from_source(src, role: dict) -> NotebookNode:
    meta = {"nbgrader": dict(role, grade_id=src.name, checksum=src.checksum, schema_version=3,
                             cell_type=src.cell_type, task=False),
            "deletable": False, "editable": False}
    if src.cell_type == "code":
        return nbformat.v4.new_code_cell(src.source, metadata=meta)
    return nbformat.v4.new_markdown_cell(src.source, metadata=meta)


# --- autograde: the engine's part scores become the test cells' outputs ---------------------
class EngineGrades(NbGraderPreprocessor):
    """Writes each test cell's outputs so that SaveAutoGrades stores the engine's part score.

    nbgrader's determine_grade reads a code grade cell's outputs: an `error` or a stderr stream
    gives 0, the first `execute_result` is read as the score, otherwise full points. Each test
    cell gets a stdout stream with the part's feedback, then an execute_result holding the exact
    score, so 0, partial and full all come out as the engine computed them.
    """

    course_root = Unicode("", help="course directory (defaults to the converter's)").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict):
        info = resources["nbgrader"]
        student, assignment, notebook = info["student"], info["assignment"], info["notebook"]
        rubric = rubric_mod.load(assignment)
        coursedir = _coursedir_of(self)
        course = Path(self.course_root or coursedir.root)
        path = Path(coursedir.format_path(coursedir.submitted_directory, student, assignment)) \
            / f"{notebook}.ipynb"
        result = result_for(path, assignment=assignment, student=student, course=course)
        apply_result(nb, result, rubric, self.log)
        return nb, resources


def apply_result(nb: NotebookNode, result: Result, rubric, log_=log) -> None:
    """Every rubric test cell (exactly once, code, rubric points) gets the outputs of its part."""
    by_cell = {p.name: p for p in result.parts}
    hide = ClearHiddenTests()
    for rp in rubric.parts:
        idx = _find(nb, rp.test_cell)
        if idx is None:  # RestoreGradeCells runs first, so only a misconfigured course gets here
            raise RuntimeError(f"test cell {rp.test_cell} is not in the notebook: check "
                               "c.Autograde.sanitize_preprocessors in nbgrader_config.py")
        cell = nb.cells[idx]
        meta = cell.metadata.nbgrader
        if float(meta.get("points", -1)) != rp.points:
            raise RuntimeError(
                f"{rp.test_cell} is worth {meta.get('points')} points in the gradebook but "
                f"{rp.points:g} in the rubric: run `make release` after changing assignment.toml")
        part = by_cell.get(rp.test_cell) or _missing_part(rp)
        cell.cell_type = "code"
        hide._remove_hidden_test_region(cell)   # hidden regions never reach autograded/ or feedback/
        cell.outputs = part_outputs(part, rp.points)
        cell.execution_count = None


def _missing_part(rp) -> PartResult:
    return PartResult(part=rp.part, name=rp.test_cell, title=rp.title, score=0.0,
                      max_score=rp.points, output="Not graded: the engine returned no result for this part.")


def part_outputs(part: PartResult, points: float) -> list[NotebookNode]:
    score = min(max(float(part.score), 0.0), float(points))
    text = f"{part.title}: {score:g} / {points:g} points\n"
    if part.output:
        text += part.output.rstrip("\n") + "\n"
    return [nbformat.v4.new_output("stream", name="stdout", text=text),
            nbformat.v4.new_output("execute_result", data={"text/plain": repr(score)},
                                   execution_count=None)]


# --- collecting: moved to autograder/collect.py, canvas.py and nbgrader_intake.py -----------
from .canvas import parse_canvas  # noqa: E402,F401  (kept importable from here for demo.py)


# --- the gradebook, read and written through nbgrader's API ------------------------------------
_NOISE = ("Attribute 'checksum'", "db_assignments", "Removing existing assignment",
          "Directory not found. Creating", "Skipped submission with no match information",
          # NbGraderAPI probes the exchange on start; in-process grading never uses it
          "Unwritable directory, please contact your instructor")


class _QuietNbgrader(logging.Filter):
    """nbgrader's per-file INFO lines, and its checksum warning (every test cell trips it when
    OverwriteCells puts the hidden-test regions back), drown the lines that matter."""

    def filter(self, record: logging.LogRecord) -> bool:
        if any(noise in record.getMessage() for noise in _NOISE):
            return False
        return record.levelno >= logging.WARNING or logging.getLogger().isEnabledFor(logging.DEBUG)


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


def db_url(course: Path) -> str:
    return f"sqlite:///{Path(course).resolve() / 'gradebook.db'}"


def known_assignments(course: Path) -> list[str]:
    if not (Path(course) / "gradebook.db").exists():
        return []
    with Gradebook(db_url(course)) as gb:
        return sorted(a.name for a in gb.assignments)


def gradebook_id(course: Path, assignment: str) -> str:
    """The assignment row's id: a new gradebook.db gets a new one, so old ledgers stop matching."""
    with Gradebook(db_url(course)) as gb:
        return gb.find_assignment(assignment).id


def has_submission(course: Path, assignment: str, student: str) -> bool:
    with Gradebook(db_url(course)) as gb:
        try:
            gb.find_submission(assignment, student)
        except MissingEntry:
            return False
    return True


def record_zero(course: Path, assignment: str, student: str, reason: str) -> None:
    """A student whose submission nbgrader cannot open gets 0 on every autograded cell, with the reason."""
    from nbgrader.utils import parse_utc
    stamp = Path(course) / "submitted" / student / assignment / "timestamp.txt"
    with Gradebook(db_url(course)) as gb:
        gb.update_or_create_student(student)
        sub = gb.update_or_create_submission(assignment, student)
        # The formgrader counts a submission as autograded (and shows its score) only when this timestamp
        # equals the submitted one and autograded/<student>/<assignment>/ exists.
        sub.timestamp = parse_utc(stamp.read_text().strip()) if stamp.is_file() else None
        names = []
        for nb in sub.notebooks:
            names.append(nb.name)
            for grade in nb.grades:
                grade.auto_score = 0.0 if grade.cell_type == "code" else grade.auto_score
                grade.needs_manual_grade = grade.manual_score is not None
            for comment in nb.comments:
                comment.auto_comment = f"Not graded: {reason}"
        gb.db.commit()
    # What the grading view opens for this student: the reason, in place of a notebook nobody could read.
    import html
    folder = Path(course) / "autograded" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    note = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        f"**Not graded, scored 0:** {html.escape(reason)}\n\nThe kit could not read this submission; "
        "every part was recorded as 0. Ask the student to resubmit, or enter manual scores.")])
    for name in names:
        nbformat.write(note, str(folder / f"{name}.ipynb"))


def mark_manual_review(course: Path, assignment: str, student: str, test_cells: list[str]) -> None:
    """Flag these test cells "needs manual grade" in the gradebook: the formgrader lists them,
    and the instructor can give the points back with a manual score."""
    with Gradebook(db_url(course)) as gb:
        sub = gb.find_submission(assignment, student)
        for nb in sub.notebooks:
            for grade in nb.grades:
                if grade.name in test_cells:
                    grade.needs_manual_grade = True
        gb.db.commit()


# --- one pass over a cohort: one process, one gradebook session ------------------------------
class _SharedGradebook:
    """What `Gradebook(url, course_id)` returns during `shared_gradebook`: the one real gradebook.

    nbgrader opens a Gradebook (a new SQLAlchemy engine, table inspection, create_all, course
    check) five or six times per notebook. Here every opening shares one connection and
    session; `close()` keeps what closing means to the caller (its uncommitted changes are
    discarded: nbgrader commits what it keeps), and the course row is still checked per id."""

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


# Every module of nbgrader's autograde pipeline that opens a Gradebook, and this one.
_GRADEBOOK_USERS = ("nbgrader.converters.autograde", "nbgrader.preprocessors.saveautogrades",
                    "nbgrader.preprocessors.overwritecells", "nbgrader.preprocessors.latesubmissions",
                    "nbgrader.preprocessors.overwritekernelspec", __name__)


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
        return _SharedGradebook(real, course_id, checked)

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


class CohortAutograde(Autograde):
    """`nbgrader autograde` over the given students in one run of one converter: the same
    preprocessors, copies into autograded/, checksums, timestamps and late penalties as
    one run per student, without paying the converter's and gradebook's start-up for each."""

    def __init__(self, *, students: set[str], on_done, **kw):
        super().__init__(**kw)
        self._students, self._on_done, self._current = set(students), on_done, None

    def init_destination(self, assignment_id: str, student_id: str) -> bool:
        if student_id not in self._students:
            return False          # up to date, or scored 0 without nbgrader: not touched
        return super().init_destination(assignment_id, student_id)

    def init_assignment(self, assignment_id: str, student_id: str) -> None:
        self._current = None
        super().init_assignment(assignment_id, student_id)
        self._current = student_id

    def run_post_convert_hook(self):
        super().run_post_convert_hook()
        if self._current is not None:   # every notebook converted, permissions set
            self._on_done(self._current)
            self._current = None


def autograde_cohort(course: Path, assignment: str, students: list[str], on_done) -> dict:
    """Runs CohortAutograde; `on_done(student)` is called as each student's notebooks are
    stored. Returns nbgrader's outcome (`success`, and `log`/`error` when it failed)."""
    from nbgrader.utils import capture_log, temp_attrs
    if not students:
        return {"success": True}
    api = open_api(course)
    with temp_attrs(api.coursedir, assignment_id=assignment, student_id="*"):
        app = CohortAutograde(students=set(students), on_done=on_done,
                              coursedir=api.coursedir, parent=api)
        app.force = True
        app.create_student = True
        return capture_log(app)


def submitted_students(course: Path, assignment: str) -> set[str]:
    """Students with a submission row for the assignment (one query)."""
    with Gradebook(db_url(course)) as gb:
        return {s.student_id for s in gb.find_assignment(assignment).submissions}


def backup_gradebook(course: Path, keep: int = 5) -> Path | None:
    """A consistent copy of gradebook.db (sqlite's backup API), keeping the newest `keep` copies."""
    import time
    src = Path(course) / "gradebook.db"
    if not src.exists():
        return None
    dest = src.with_name(f"gradebook.db.bak-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    with sqlite3.connect(src) as a, sqlite3.connect(dest) as b:
        a.backup(b)
    for old in sorted(src.parent.glob("gradebook.db.bak-*"))[:-keep]:
        old.unlink(missing_ok=True)
    return dest

