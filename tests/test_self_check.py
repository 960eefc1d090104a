"""Tests of the student self-check (`python -m autograder check NB`): real notebooks, real kernels."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder import rubric as rubric_mod, self_check
from autograder.synth import build_submission, write_submission

SOURCE_DIR = rubric_mod.load("gradient_backward").source.parent
TROUBLED_TIMEOUT = 10
WRONG_MSE_GRAD = ("def mse_grad(inp, targ):\n"
                  "    inp.g = (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]\n")


def _release_folder(folder: Path) -> Path:
    """What a student has: the notebook's companions next to it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("gbcheck.py", "gbexplain.py", "digits.npz"):
        shutil.copy(SOURCE_DIR / name, folder / name)
    return folder


def _check_cli(nb: Path, *extra: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", "check", str(nb), *extra],
                          capture_output=True, text=True, timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def all_passing_check(tmp_path_factory) -> subprocess.CompletedProcess:
    """The check of the instructor's answers, run from another folder than the notebook's."""
    folder = _release_folder(tmp_path_factory.mktemp("release") / "gradient_backward")
    nb = write_submission(folder / "gradient_backward.ipynb")
    return _check_cli(nb, cwd=tmp_path_factory.mktemp("elsewhere"))


@pytest.fixture(scope="module")
def troubled_check(tmp_path_factory) -> subprocess.CompletedProcess:
    """A notebook with a wrong part 1, an endless part 2, a part 4 with a NameError, a hidden test that prints a secret,
    a grader:skip cell that would print, and a part 8 that kills the kernel."""
    folder = _release_folder(tmp_path_factory.mktemp("troubled"))
    nb = write_submission(folder / "gradient_backward.ipynb", {
        "mse_grad": WRONG_MSE_GRAD,
        "relu_grad": "while True:\n    pass\n",
        "forward_and_backward": ("def forward_and_backward(inp, targ):\n    l1 = lin(inp, w1, b1)\n"
                                 "    return l1 + undefined_name\n"),
        "test_mse_grad": ("from gbcheck import check_mse_grad\ncheck_mse_grad(mse_grad)\n"
                          "### BEGIN HIDDEN TESTS\nprint('SECRET HIDDEN TEST')\n### END HIDDEN TESTS\n"),
        "train_by_hand": "print('SKIPPED CELL RAN')\n",
        "nn_module": "import os\nos._exit(3)\n",
    })
    # The endless cell is waited out: the limit is short, and still far above what the setup
    # cell (torch, the digits) needs on a busy machine.
    return _check_cli(nb, "--timeout", str(TROUBLED_TIMEOUT), cwd=folder)


@pytest.mark.slow
def test_correct_notebook_passes_every_part(all_passing_check):
    """Do the instructor's answers pass all eight public checks, with gbcheck's own messages?"""
    out = all_passing_check.stdout
    assert all_passing_check.returncode == 0, all_passing_check.stderr
    assert out.count("\nPASS  ") == 8 and "FAIL" not in out
    assert "Part 1 (mse_grad): inp.g matches autograd" in out
    assert "8 of 8 public checks pass." in out


@pytest.mark.slow
def test_wrong_part_fails_with_the_notebook_message(troubled_check):
    """Does a wrong mse_grad fail part 1 with the same message the notebook's test cell shows?"""
    out = troubled_check.stdout
    assert troubled_check.returncode == 0, troubled_check.stderr
    assert "FAIL  Part 1" in out
    assert "      Part 1 (mse_grad) failed:" in out  # the verdict alone, as the notebook shows it
    assert "PASS  Part 3" in out  # later parts still checked


@pytest.mark.slow
def test_raw_error_names_the_students_cell_and_line(troubled_check):
    """Does an error raised in the student's own code say which cell and line it came from?"""
    part4 = troubled_check.stdout.split("FAIL  Part 4", 1)[1].split("\nFAIL ", 1)[0].split("\nPASS ", 1)[0]
    assert "NameError: name 'undefined_name' is not defined" in part4
    assert "at line 3 of your cell `forward_and_backward` (notebook cell " in part4
    assert "return l1 + undefined_name" in part4
    assert "gbcheck" not in part4


@pytest.mark.slow
def test_endless_cell_is_interrupted_and_reported(troubled_check):
    """Is a cell that never ends interrupted, its part failed, and the run continued?"""
    out = troubled_check.stdout
    assert "FAIL  Part 2" in out
    assert f"your cell `relu_grad` ran past the {TROUBLED_TIMEOUT} s limit per cell and was interrupted." in out
    assert "PASS  Part 7" in out


@pytest.mark.slow
def test_hidden_tests_and_skipped_cells_never_run(troubled_check):
    """Are hidden-test regions stripped and grader:skip cells left out?"""
    out = troubled_check.stdout + troubled_check.stderr
    assert "SECRET HIDDEN TEST" not in out
    assert "SKIPPED CELL RAN" not in out
    tagged = sum("grader:skip" in c.metadata.get("tags", []) for c in build_submission().cells)
    assert f"skipped {tagged} cells tagged grader:skip" in out


@pytest.mark.slow
def test_dead_kernel_is_reported_and_later_checks_marked_not_run(troubled_check):
    """When student code kills the kernel, does the check say so and mark the rest as not run?"""
    out = troubled_check.stdout
    assert "stopped the Python kernel" in out
    part8 = out[out.index("FAIL  Part 8"):]
    assert "did not run" in part8.splitlines()[1]


def test_unreadable_notebook_exits_1_with_a_sentence(tmp_path):
    """Does a file that is not a notebook give exit code 1 and one plain explanation?"""
    bad = tmp_path / "gradient_backward.ipynb"
    bad.write_text("{ not json")
    code, text = self_check.run_check(bad)
    assert code == 1
    assert text.startswith("Cannot read gradient_backward.ipynb as a notebook")


def test_plan_runs_code_cells_in_order_except_skipped():
    """Does the plan keep every code cell but the grader:skip ones, with one check per graded part?"""
    nb = build_submission()
    run, skipped, checks = self_check.plan(nb)
    tagged = [i for i, c in enumerate(nb.cells) if "grader:skip" in c.metadata.get("tags", [])]
    assert skipped == tagged and not set(run) & set(tagged)
    assert run == sorted(run)
    assert list(checks) == rubric_mod.load("gradient_backward").part_names
    assert checks["mse_grad"].title.startswith("Part 1")


def test_public_source_strips_every_hidden_region():
    """Does stripping remove each BEGIN/END HIDDEN TESTS block and keep the public lines?"""
    cell = nbformat.v4.new_code_cell(
        "a = 1\n### BEGIN HIDDEN TESTS\nsecret()\n### END HIDDEN TESTS\nb = 2\n"
        "    ### BEGIN HIDDEN TESTS\n    other()\n    ### END HIDDEN TESTS\n")
    assert self_check.public_source(cell) == "a = 1\nb = 2\n"
