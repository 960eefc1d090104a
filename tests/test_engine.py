"""The engine on whole notebooks: the contract's CLI, broken files, restored cells, fallbacks."""
from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest

from autograder import rubric, synth

KIT = rubric.KIT_ROOT
SOURCE = KIT / "source/gradient_backward/gradient_backward.ipynb"
RELEASE = KIT / "release/gradient_backward/gradient_backward.ipynb"


@pytest.fixture
def engine(shared_engine):
    """These tests only grade whole notebooks with default limits: the session's engine does."""
    return shared_engine


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", *args], capture_output=True,
                          text=True, timeout=600, cwd=KIT)


@pytest.mark.sandbox
def test_cli_grades_source_full_and_release_zero(engine, cli_grade_of_source):
    """Does `grade --json` give the source full marks and the release 0, in the contract's shape?"""
    # The CLI once (its stdout is the contract); the release through the same Result.to_json.
    proc = cli_grade_of_source      # `grade SOURCE --json`, as _cli runs it (tests/conftest.py)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for data, full in ((json.loads(proc.stdout), True), (engine.grade(RELEASE).to_json(), False)):
        r = rubric.load()
        assert data["max_score"] == r.max_score
        assert [t["name"] for t in data["tests"]] == [p.test_cell for p in r.parts]
        for t, p in zip(data["tests"], r.parts):
            assert set(t) >= {"name", "score", "max_score", "status", "output"}
            assert t["max_score"] == p.points
            assert t["status"] == ("passed" if full else "failed")
            assert t["score"] == (p.points if full else 0)
        assert data["score"] == (r.max_score if full else 0)
    assert "NotImplementedError" in data["tests"][0]["output"] or \
        "not written yet" in data["tests"][0]["output"]


@pytest.mark.parametrize("content, reason", [
    (b"", "not valid notebook JSON"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not text"),
    (b'{"cells": [], "metadata": {}', "not valid notebook JSON"),
    (b'{"hello": "world"}', "not a Jupyter notebook"),
    (b'{"nbformat": 4, "nbformat_minor": 5, "cells": "nope", "metadata": {}}', "no list of cells"),
])
def test_unreadable_file_is_a_result_with_a_reason(engine, tmp_path, content, reason):
    """Is a file that is not a readable notebook scored 0 with a plain reason?"""
    bad = tmp_path / "broken.ipynb"
    bad.write_bytes(content)
    data = engine.grade(bad).to_json()
    assert data["score"] == 0 and reason in data["output"]
    assert all(t["score"] == 0 and t["max_score"] > 0 for t in data["tests"])


@pytest.mark.sandbox  # until `grade` reads the file before it starts an engine
def test_cli_scores_an_unreadable_file_0_and_exits_0(tmp_path):
    """Does `grade --json` on a file that is not a notebook exit 0 with one JSON result giving the reason?"""
    bad = tmp_path / "broken.ipynb"
    bad.write_bytes(b'{"cells": [], "metadata": {}')
    proc = _cli("grade", str(bad), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["score"] == 0 and "not valid notebook JSON" in data["output"]
    assert [t["name"] for t in data["tests"]] == [p.test_cell for p in rubric.load().parts]


def test_usage_errors_exit_2():
    """Do a missing argument and an unknown assignment exit with code 2?"""
    assert _cli("grade").returncode == 2
    assert _cli("grade", str(SOURCE), "--assignment", "gradient_backwrd").returncode == 2


def test_max_score_comes_from_the_rubric_not_the_notebook(engine, tmp_path):
    """Can a student raise a part's points by editing their notebook's metadata?"""
    nb = nbformat.read(str(SOURCE), as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("points"):
            cell.metadata["nbgrader"]["points"] = 1000
    path = tmp_path / "inflated.ipynb"
    nbformat.write(nb, str(path))
    result = engine.grade(path)
    assert result.max_score == rubric.load().max_score
    assert result.score == result.max_score


def test_deleted_solution_cell_costs_only_its_part(engine, tmp_path):
    """When a student deletes a solution cell, is only that part lost, with a message saying so?"""
    nb = nbformat.read(str(SOURCE), as_version=4)
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "relu_grad"]
    path = tmp_path / "deleted.ipynb"
    nbformat.write(nb, str(path))
    result = engine.grade(path)
    assert result.part("relu_grad").score == 0
    assert "no `relu_grad` solution cell" in result.part("relu_grad").output
    assert all(p.score == p.max_score for p in result.parts if p.part != "relu_grad")


def test_tampered_locked_cell_is_restored(engine, tmp_path):
    """Does a student's edit of the locked setup cell (to fake the data or weights) count for nothing?"""
    nb = nbformat.read(str(SOURCE), as_version=4)
    setup = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "setup")
    setup.source = "raise SystemExit('no setup for you')"
    path = tmp_path / "tampered.ipynb"
    nbformat.write(nb, str(path))
    assert engine.grade(path).score == rubric.load().max_score


def test_cells_added_by_the_student_run_in_place(engine, tmp_path):
    """Do a student's own helper cells (and a stray magic) run where they put them?"""
    helper = "%matplotlib inline\ndef _two():\n    return 2.\n"
    mse = ("def mse_grad(inp, targ):\n"
           "    inp.g = _two() * (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]\n")
    path = synth.write_submission(tmp_path / "helpers.ipynb", {"mse_grad": mse},
                                  extra_cells={"forward_check": [helper]})
    result = engine.grade(path)
    assert result.part("mse_grad").score == result.part("mse_grad").max_score


def test_nbformat_3_notebook_is_graded(engine, tmp_path):
    """Is an old nbformat-3 notebook converted and graded like any other?"""
    nb = nbformat.read(str(SOURCE), as_version=4)
    v3 = nbformat.convert(nb, 3)
    path = tmp_path / "old.ipynb"
    path.write_text(nbformat.writes(v3, version=3))
    assert engine.grade(path).score == rubric.load().max_score


def test_result_json_round_trips(engine):
    """Does a result read back from its JSON give the same scores (what the store relies on)?"""
    from autograder.scoring import Result
    result = engine.grade(SOURCE)
    again = Result.from_json(json.loads(json.dumps(result.to_json())))
    assert again.to_json() == result.to_json()


@pytest.mark.sandbox
@pytest.mark.parametrize("level, words", [("namespaces", "CAN READ"), ("rlimits", "NETWORK")])
def test_weaker_isolation_is_said_plainly(level, words, monkeypatch):
    """Without bwrap, does the kit still grade, and say in the result how weak its sandbox was?"""
    monkeypatch.setenv("GBK_ISOLATION", level)
    proc = _cli("grade", str(SOURCE), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(proc.stdout)
    assert data["score"] == data["max_score"]
    assert words in data["output"] and "WARNING" in data["output"]
    assert "SANDBOX WEAKENED" in proc.stderr
