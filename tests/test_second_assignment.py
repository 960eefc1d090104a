"""A second, tiny assignment (tests/assignments/tiny) graded end to end by the same engine: the assignment is a plug-in."""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

from autograder import assignment
from autograder.engine import Engine

TINY = Path(__file__).resolve().parent / "assignments" / "tiny"
SOURCE = TINY / "source" / "tiny.ipynb"

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def tiny_engine():
    with Engine(str(TINY)) as engine:
        yield engine


def _submission(tmp_path: Path, name: str, **cells: str) -> Path:
    """The tiny source notebook with the given solution cells' code replaced."""
    nb = nbformat.read(str(SOURCE), as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in cells:
            cell.source = cells[gid]
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(nb, str(path))
    return path


def test_solution_scores_the_tiny_rubrics_points(tiny_engine):
    """Does the tiny assignment's own solution get its own rubric's 10 points, per test cell?"""
    result = tiny_engine.grade(SOURCE)
    assert (result.score, result.max_score) == (10, 10), result.output
    assert {p.name: p.score for p in result.parts} == {"test_mse_grad": 4, "test_square_grad": 6}


def test_stubs_score_zero(tiny_engine, tmp_path):
    """Do unanswered parts score 0, each saying it is not written yet?"""
    stub = 'def {0}(inp, x):\n    raise NotImplementedError("write {0}")'
    result = tiny_engine.grade(_submission(tmp_path, "stubs", mse_grad=stub.format("mse_grad"),
                                           square_grad=stub.format("square_grad")))
    assert result.score == 0
    assert all("not written yet" in p.output for p in result.parts), result.output


def test_a_wrong_part_costs_only_its_points(tiny_engine, tmp_path):
    """Does forgetting out.g in part 2 cost part 2's 6 points and nothing in part 1?"""
    result = tiny_engine.grade(_submission(tmp_path, "wrong", square_grad=(
        "def square_grad(inp, out):\n    inp.g = 2. * inp")))
    assert {p.name: p.score for p in result.parts} == {"test_mse_grad": 4, "test_square_grad": 0}
    assert "differs from autograd" in result.part("square_grad").output


def test_both_assignments_grade_side_by_side(tiny_engine, shared_engine):
    """With both engines alive in one process, does each keep its own `cases`, `verdicts` and
    `test_mse_grad` modules, none of them loaded by bare name off sys.path?"""
    assert shared_engine.grade(shared_engine.rubric.source).score == shared_engine.rubric.max_score
    assert tiny_engine.grade(SOURCE).score == 10
    for module in ("cases", "verdicts", "test_mse_grad"):
        assert assignment.load(TINY, module) is not assignment.load(shared_engine.rubric.folder, module)
        assert module not in sys.modules
    assert str(TINY) not in sys.path and str(shared_engine.rubric.folder) not in sys.path
