"""EngineGrades: the autograde step that writes the sandboxed engine's part scores as the test cells' outputs (in place of Execute)."""
from __future__ import annotations

from .. import lean  # noqa: F401  (before nbformat: skips what grading never uses)

import atexit
import logging
from pathlib import Path

from nbformat.notebooknode import NotebookNode
from traitlets import Unicode

from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor

from .. import rubric as rubric_mod
from ..notebook import declared_cell_index
from ..scoring import PartResult, Result
from ..store import results_dir

log = logging.getLogger(__name__)


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
        from ..engine import Engine
        eng = Engine(assignment)
        eng.__enter__()
        atexit.register(eng.__exit__, None, None, None)
        _ENGINES[assignment] = eng
    return _ENGINES[assignment]


def result_for(path: Path, *, assignment: str, student: str, course: Path) -> Result:
    """The engine's Result for a submitted notebook: cached by submission key, graded on a miss."""
    from ..identity import key_of
    from ..store import ResultStore
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


# --- autograde: the engine's part scores become the test cells' outputs ---------------------
class EngineGrades(NbGraderPreprocessor):
    """Writes each test cell's outputs so that SaveAutoGrades stores the engine's part score."""
    # nbgrader's determine_grade reads a code grade cell's outputs: an `error` or a stderr stream
    # gives 0, the first `execute_result` is read as the score, otherwise full points. Each test
    # cell gets a stdout stream with the part's feedback, then an execute_result holding the exact
    # score, so 0, partial and full all come out as the engine computed them.

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
        idx = declared_cell_index(nb, rp.test_cell)
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
    # the shapes nbformat.v4.new_output builds, without its schema check per output: the
    # exporter validates the whole notebook once, after the last step
    return [NotebookNode(output_type="stream", name="stdout", text=text),
            NotebookNode(output_type="execute_result", data=NotebookNode({"text/plain": repr(score)}),
                         metadata=NotebookNode(), execution_count=None)]
