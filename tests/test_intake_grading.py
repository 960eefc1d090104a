"""Odd files through the real engine and nbgrader autograde: each gets a grade and a sentence, never an engine-failure loop."""
from __future__ import annotations

import copy
import json
import sqlite3
from pathlib import Path

import nbformat
import pytest

from intake_uploads import blank, correct
from nbgrader_course import ASSIGNMENT, new_course, run, submit
from autograder import notebook as nbmod
from autograder import rubric as rubric_mod

pytestmark = pytest.mark.nbgrader

RUBRIC = rubric_mod.load(ASSIGNMENT)
WRONG_MSE = "def mse_grad(inp, targ):\n    inp.g = 0 * inp\n"


def odd_metadata():
    """A correct notebook whose solution cells carry every kind of malformed nbgrader metadata."""
    nb = correct()
    odd = {"mse_grad": "a string", "relu_grad": {"schema_version": 1, "grade_id": "relu_grad", "solution": True},
           "lin_grad": {"schema_version": 3, "grade_id": ["lin_grad"], "solution": True},
           "forward_and_backward": None}
    for cell in nb.cells:
        gid = nbmod.grade_id(cell)
        if gid in odd:
            cell.metadata["nbgrader"] = odd[gid]
    return nb


def twins():
    """Two mse_grad cells: a correct one first, then a wrong one (the one nbgrader keeps)."""
    nb = correct()
    i = next(i for i, c in enumerate(nb.cells) if nbmod.grade_id(c) == "mse_grad")
    wrong = copy.deepcopy(nb.cells[i])
    wrong.source, wrong.id = WRONG_MSE, "twin"
    nb.cells.insert(i + 1, wrong)
    return nb


def stripped():
    nb = correct()
    for cell in nb.cells:
        cell.metadata = {}
    return nb


def v3():
    return nbformat.convert(correct(), 3)


SUBMISSIONS = {   # student -> (bytes, expected total, a phrase the result must carry or "")
    "oddmeta": (lambda: nbformat.writes(odd_metadata()).encode(), 100.0, ""),
    "twins": (lambda: nbformat.writes(twins()).encode(), 90.0, ""),
    "nometa": (lambda: nbformat.writes(stripped()).encode(), 100.0, "found by the names it defines"),
    "bomcrlf": (lambda: b"\xef\xbb\xbf" + nbformat.writes(correct()).encode().replace(b"\n", b"\r\n"), 100.0, ""),
    "oldformat": (lambda: json.dumps(v3()).encode(), 100.0, ""),
    "deep": (lambda: b'{"nbformat": 4, "cells": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", 0.0,
             "nested far too deeply"),
    "huge": (lambda: json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "source": "x = 1", "metadata": {}, "outputs": [], "execution_count": None}
    ] * 100_000}).encode(), 0.0, "100,000 cells"),
    "stub": (lambda: nbformat.writes(blank()).encode(), None, ""),
}


def totals(course: Path) -> dict[str, float]:
    con = sqlite3.connect(course / "gradebook.db")
    return dict(con.execute(
        """SELECT sa.student_id, SUM(g.auto_score) FROM grade g
           JOIN submitted_notebook sn ON g.notebook_id = sn.id
           JOIN submitted_assignment sa ON sn.assignment_id = sa.id GROUP BY sa.student_id"""))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = new_course(tmp_path_factory.mktemp("odd"))
    for student, (make, _, _) in SUBMISSIONS.items():
        submit(course, student, make())
    first = run("autograder", "autograde", ASSIGNMENT, "--jobs", "1", cwd=course, timeout=1500, check=False)
    second = run("autograder", "autograde", ASSIGNMENT, "--jobs", "1", cwd=course, timeout=600, check=False)
    return course, first, second


def stored(course: Path, student: str) -> dict:
    """The engine's result for a student, from the kit's results store."""
    from autograder.store import ResultStore
    result = ResultStore(course / ".kit" / "results", assignment=ASSIGNMENT).load(student)
    return result.to_json() if result is not None else {}


def test_every_odd_file_gets_a_grade(graded):
    """Does each odd file end with a gradebook score (full for the honest ones) and exit 0?"""
    course, first, _ = graded
    assert first.returncode == 0, first.stderr[-4000:]
    got = totals(course)
    assert sorted(got) == sorted(SUBMISSIONS)
    for student, (_, expected, _) in SUBMISSIONS.items():
        if expected is not None:
            assert got[student] == pytest.approx(expected), (student, got[student])
    assert got["stub"] < 10      # (an untouched part 7 stub passes 1 of 5 part-7 checks today: reported)


def test_each_odd_file_gets_its_sentence(graded):
    """Does the result of each refused or rescued file carry the sentence that explains it?"""
    course, first, _ = graded
    for student, (_, _, phrase) in SUBMISSIONS.items():
        if phrase:
            assert phrase in first.stderr or phrase in json.dumps(stored(course, student)) \
                or phrase in _comments(course, student), student


def _comments(course: Path, student: str) -> str:
    con = sqlite3.connect(course / "gradebook.db")
    rows = con.execute("""SELECT c.auto_comment FROM comment c JOIN submitted_notebook sn ON c.notebook_id = sn.id
                          JOIN submitted_assignment sa ON sn.assignment_id = sa.id WHERE sa.student_id = ?""",
                       (student,)).fetchall()
    autograded = course / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    return " ".join(str(r[0]) for r in rows) + (autograded.read_text() if autograded.exists() else "")


def test_a_second_run_redoes_nothing(graded):
    """Is nothing retried on the next run (no "engine failure" loop for the odd files)?"""
    _, _, second = graded
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"0 graded, {len(SUBMISSIONS)} already up to date, 0 failed" in second.stderr


def test_duplicate_ids_grade_the_cell_the_instructor_sees(graded):
    """With two mse_grad cells, is the one in autograded/ (nbgrader's pick) the one the engine graded?"""
    course, _, _ = graded
    nb = nbformat.read(str(course / "autograded" / "twins" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"), 4)
    shown = [c.source for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "mse_grad"]
    assert shown == [WRONG_MSE]
    part = next(t for t in stored(course, "twins")["tests"] if t["name"] == "test_mse_grad")
    assert part["score"] == 0


def test_odd_metadata_never_reaches_nbgrader_raw(graded):
    """Did nbgrader autograde the odd-metadata notebook (not only the engine), the bad metadata gone?"""
    course, _, _ = graded
    nb = json.loads((course / "autograded" / "oddmeta" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text())
    metas = [c["metadata"].get("nbgrader") for c in nb["cells"] if "nbgrader" in c["metadata"]]
    assert all(isinstance(m, dict) and isinstance(m.get("grade_id"), str) for m in metas)
