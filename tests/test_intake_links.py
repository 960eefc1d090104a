"""Symbolic links in a submission are never followed: Gradescope, the CI step, grade-all and autograde discovery."""
from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder import batch, classroom_runtime, gradescope_bundle, gradescope_runtime
from autograder import rubric as rubric_mod
from autograder.autograde import discover as autograde_discover

RUBRIC = rubric_mod.load("gradient_backward")
SOLUTION = RUBRIC.source                     # the instructor's notebook, with every answer
SOLUTION_CODE = "\n".join(c.source for c in nbformat.read(str(SOLUTION), 4).cells)


def test_the_link_target_really_holds_the_answers():
    """Is the kit's source notebook the prize (so a 0 below means the link was refused)?"""
    assert "BEGIN SOLUTION" in SOLUTION.read_text()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return gradescope_bundle.build(tmp_path_factory.mktemp("gs") / "autograder.zip")


def test_bundle_ships_no_solution_text(bundle):
    """Does nothing in autograder.zip hold the solutions or the hidden-test regions of the notebook?"""
    with zipfile.ZipFile(bundle) as z:
        notebooks = [n for n in z.namelist() if n.endswith(".ipynb")]
        assert notebooks == ["source/gradient_backward/gradient_backward.ipynb"]
        text = z.read(notebooks[0]).decode()
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    bodies = re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", SOLUTION_CODE, re.S)
    given = "\n".join(c.source for c in nbformat.read(str(SOLUTION), 4).cells
                      if not c.get("metadata", {}).get("nbgrader", {}).get("solution"))
    lines = {l.strip() for b in bodies for l in b.splitlines() if len(l.strip()) > 12} \
        - {l.strip() for l in given.splitlines()}             # lines the lesson itself shows are no secret
    assert len(lines) > 20                                   # the answers are really there to leak
    shipped = {l.strip() for c in nbformat.reads(text, 4).cells for l in c.source.splitlines()}
    assert sorted(lines & shipped) == []


def _gradescope_root(tmp: Path, bundle: Path) -> Path:
    root = tmp / "autograder"
    with zipfile.ZipFile(bundle) as z:
        z.extractall(root / "source")
    (root / "submission").mkdir()
    return root


def test_gradescope_symlink_to_the_shipped_notebook_scores_zero(tmp_path, bundle):
    """An upload that is only a link to /autograder/source/...ipynb: 0 with a sentence, not 100?"""
    root = _gradescope_root(tmp_path, bundle)
    shipped = root / "source" / "source" / "gradient_backward" / "gradient_backward.ipynb"
    (root / "submission" / "gradient_backward.ipynb").symlink_to(shipped)
    assert (root / "submission" / "gradient_backward.ipynb").read_bytes() == shipped.read_bytes()
    out = json.loads(gradescope_runtime.run(root).read_text())
    assert out["score"] == 0
    assert "symbolic link" in out["output"] and "upload gradient_backward.ipynb" in out["output"]


def test_gradescope_symlink_to_the_kits_solution_and_a_linked_folder_score_zero(tmp_path, bundle):
    """A link to the real solution notebook, and a folder that is a link to the kit's source folder:
    both refused, never graded?"""
    root = _gradescope_root(tmp_path, bundle)
    (root / "submission" / "mine.ipynb").symlink_to(SOLUTION)
    (root / "submission" / "hw").symlink_to(SOLUTION.parent, target_is_directory=True)
    assert (root / "submission" / "hw" / SOLUTION.name).is_file()
    out = json.loads(gradescope_runtime.run(root).read_text())
    assert out["score"] == 0 and "mine.ipynb: a symbolic link" in out["output"]


def test_ci_step_symlink_into_the_kit_checkout_scores_zero(tmp_path, monkeypatch, capsys):
    """In the Classroom job, a pushed link to .grader-kit's source notebook: Points 0, not 100?"""
    ws = tmp_path / "repo"
    (ws / ".grader-kit").mkdir(parents=True)
    kit_copy = ws / ".grader-kit" / "gradient_backward.ipynb"
    kit_copy.write_bytes(SOLUTION.read_bytes())
    (ws / "gradient_backward.ipynb").symlink_to(".grader-kit/gradient_backward.ipynb")
    assert "BEGIN SOLUTION" in (ws / "gradient_backward.ipynb").read_text()
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    assert classroom_runtime.main(["--submission", str(ws), "--results", str(tmp_path / "r.json")]) == 0
    assert f"Points 0/{RUBRIC.max_score:g}" in capsys.readouterr().out
    assert "symbolic link" in summary.read_text()


def test_grade_all_discovery_skips_links(tmp_path, caplog):
    """Does grade-all skip a linked notebook in a flat folder and a linked student folder?"""
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "alice.ipynb").write_text("{}")
    (flat / "mallory.ipynb").symlink_to(SOLUTION)
    (flat / "x\x1b[2Jy.ipynb").write_text("{}")
    assert [sid for sid, _ in batch.discover(flat)] == ["alice"]
    assert "x\\x1b[2Jy" in caplog.text and "\x1b" not in caplog.text
    course = tmp_path / "course" / "submitted"
    (course / "bob" / "gradient_backward").mkdir(parents=True)
    (course / "bob" / "gradient_backward" / "gradient_backward.ipynb").write_text("{}")
    (course / "carol" / "gradient_backward").mkdir(parents=True)
    (course / "carol" / "gradient_backward" / "gradient_backward.ipynb").symlink_to(SOLUTION)
    (course / "dave").symlink_to(course / "bob", target_is_directory=True)
    assert [sid for sid, _ in batch.discover(course)] == ["bob"]
    assert "symbolic link" in caplog.text


def test_autograde_discovery_refuses_links_and_unsafe_ids(tmp_path):
    """Does autograde give a linked notebook 0 with the reason, and skip linked or unsafe student folders?"""
    sub = tmp_path / "submitted"
    (sub / "carol" / "gradient_backward").mkdir(parents=True)
    (sub / "carol" / "gradient_backward" / "gradient_backward.ipynb").symlink_to(SOLUTION)
    (sub / "erin" / "gradient_backward").mkdir(parents=True)
    (sub / "erin" / "gradient_backward" / "gradient_backward.ipynb").write_text("{}")
    (sub / "dave").symlink_to(sub / "erin", target_is_directory=True)
    (sub / "x\x1b[2Jy" / "gradient_backward").mkdir(parents=True)
    subs = {s.student: s for s in autograde_discover(tmp_path, "gradient_backward")}
    assert sorted(subs) == ["carol", "erin"]
    assert subs["carol"].notebook is None and "symbolic link" in subs["carol"].reason
    assert subs["erin"].notebook is not None
