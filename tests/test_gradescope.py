"""Tests of the Gradescope bundle: the zip's layout, and run_autograder on a simulated /autograder."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder import gradescope_bundle, gradescope_runtime, rubric as rubric_mod, scoring
from autograder.synth import write_submission

RUBRIC = rubric_mod.load("gradient_backward")
WRONG_MSE_GRAD = ("def mse_grad(inp, targ):\n"
                  "    inp.g = (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]\n")
BUNDLED_TITLE = "Part 1: mse_grad (from the bundle)"


@pytest.fixture(scope="module")
def bundle_zip(tmp_path_factory) -> Path:
    return gradescope_bundle.build(tmp_path_factory.mktemp("build") / "autograder.zip",
                            config={"test_visibility": "after_published"})


def _autograder_root(tmp: Path, bundle: Path, submission: dict[str, bytes | Path]) -> Path:
    """Gradescope's layout: the zip unpacked in source/, run_autograder copied up, the upload in submission/.

    The bundle's part-1 title is changed, so a result carrying it proves the bundle's copy graded.
    """
    root = tmp / "autograder"
    with zipfile.ZipFile(bundle) as z:
        z.extractall(root / "source")
    for name in ("run_autograder", "setup.sh"):  # zipfile does not restore modes
        (root / "source" / name).chmod(0o755)
    toml = root / "source" / "assignments" / "gradient_backward" / "assignment.toml"
    toml.write_text(toml.read_text().replace('"Part 1: mse_grad"', f'"{BUNDLED_TITLE}"'))
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    for name, content in submission.items():
        dest = root / "submission" / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copy(content, dest)
        else:
            dest.write_bytes(content)
    return root


def _run_autograder(root: Path) -> dict:
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": sys.executable}
    proc = subprocess.run([str(root / "run_autograder")], env=env, capture_output=True, text=True,
                          timeout=900, cwd="/")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((root / "results" / "results.json").read_text())


@pytest.fixture(scope="module")
def results_of_wrong_part1_beside_a_scratch_notebook(bundle_zip, tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("gs-two")
    nb = write_submission(tmp / "gradient_backward.ipynb", {"mse_grad": WRONG_MSE_GRAD})
    scratch = write_submission(tmp / "scratch.ipynb")
    root = _autograder_root(tmp, bundle_zip, {"hw/gradient_backward.ipynb": nb,
                                              "hw/scratch.ipynb": scratch})
    return _run_autograder(root)


def test_bundle_has_scripts_at_root_and_the_grading_kit(bundle_zip):
    """Does the zip hold setup.sh and run_autograder at its root (executable) and the kit, no clutter?"""
    with zipfile.ZipFile(bundle_zip) as z:
        names = set(z.namelist())
        modes = {i.filename: i.external_attr >> 16 for i in z.infolist()}
    for required in ("setup.sh", "run_autograder", "gradescope.json", "requirements.txt",
                     "constraints.txt", "pyproject.toml", "autograder/engine.py",
                     "autograder/sandbox/inside.py", "assignments/gradient_backward/assignment.toml",
                     "source/gradient_backward/gradient_backward.ipynb",
                     "source/gradient_backward/gbcheck.py", "source/gradient_backward/digits.npz"):
        assert required in names, required
    assert modes["run_autograder"] & stat.S_IXUSR and modes["setup.sh"] & stat.S_IXUSR
    assert not [n for n in names if "__pycache__" in n or n.startswith((".venv", "tests/", "release/"))]


def test_bundle_is_reproducible(bundle_zip, tmp_path):
    """Do two builds of the same kit give byte-identical zips?"""
    again = gradescope_bundle.build(tmp_path / "again.zip", config={"test_visibility": "after_published"})
    assert again.read_bytes() == bundle_zip.read_bytes()


def test_scripts_parse_as_bash():
    """Are setup.sh and run_autograder valid bash?"""
    for script in ("setup.sh", "run_autograder"):
        subprocess.run(["bash", "-n", str(gradescope_bundle.TEMPLATES / script)], check=True)


@pytest.mark.slow
def test_wrong_part_is_graded_per_part_by_the_bundled_kit(results_of_wrong_part1_beside_a_scratch_notebook):
    """Does run_autograder grade with the bundle's kit and report each part with its own score?"""
    r = results_of_wrong_part1_beside_a_scratch_notebook
    assert r["max_score"] == RUBRIC.max_score
    assert [t["name"] for t in r["tests"]] == [p.test_cell for p in RUBRIC.parts]
    part1 = r["tests"][0]
    assert part1["output"].startswith(BUNDLED_TITLE)
    assert part1["score"] == 0 and part1["status"] == "failed"
    assert r["score"] == RUBRIC.max_score - RUBRIC.get("mse_grad").points
    assert all(t["status"] == "passed" for t in r["tests"][1:])


@pytest.mark.slow
def test_visibility_settings_reach_results_json(results_of_wrong_part1_beside_a_scratch_notebook):
    """Are the configured visibilities written for the whole result and each part?"""
    r = results_of_wrong_part1_beside_a_scratch_notebook
    assert r["visibility"] == "visible" and r["stdout_visibility"] == "hidden"
    assert {t["visibility"] for t in r["tests"]} == {"after_published"}
    assert [t["number"] for t in r["tests"]] == [str(i) for i in range(1, 9)]


@pytest.mark.slow
def test_named_notebook_wins_over_a_second_one(results_of_wrong_part1_beside_a_scratch_notebook):
    """With two notebooks, is the one named like the assignment graded and the student told?"""
    out = results_of_wrong_part1_beside_a_scratch_notebook["output"]
    assert out.startswith("Several notebooks were submitted (hw/gradient_backward.ipynb, hw/scratch.ipynb)")
    assert "graded gradient_backward.ipynb" in out


@pytest.mark.slow
def test_no_notebook_scores_zero_and_says_what_to_upload(bundle_zip, tmp_path):
    """With no .ipynb uploaded, is the result 0 with a sentence naming the file to upload?"""
    r = _run_autograder(_autograder_root(tmp_path, bundle_zip, {"answers.py": b"x = 1\n"}))
    assert r["score"] == 0 and r["max_score"] == RUBRIC.max_score
    assert "No notebook found in your submission: upload gradient_backward.ipynb." in r["output"]
    assert len(r["tests"]) == len(RUBRIC.parts)


@pytest.mark.slow
def test_two_unnamed_notebooks_are_not_guessed(bundle_zip, tmp_path):
    """With two notebooks and neither named like the assignment, is nothing graded, and why said?"""
    r = _run_autograder(_autograder_root(tmp_path, bundle_zip, {"a.ipynb": b"{}", "b.ipynb": b"{}"}))
    assert r["score"] == 0
    assert "none is unambiguously gradient_backward.ipynb" in r["output"]


@pytest.mark.slow
def test_broken_notebook_scores_zero_with_the_reason(bundle_zip, tmp_path):
    """Does a file that is not a notebook get 0 and the engine's reason, not a crash?"""
    r = _run_autograder(_autograder_root(tmp_path, bundle_zip,
                                         {"gradient_backward.ipynb": b'{"cells": [oops'}))
    assert r["score"] == 0
    assert r["extra_data"]["error"]
    assert all("unreadable" in t["extra_data"]["flags"] for t in r["tests"])


def test_long_feedback_is_capped():
    """Is a part's output cut at the configured length, with a note that it was cut?"""
    res = scoring.unreadable(RUBRIC, "x" * 50_000)
    data = gradescope_runtime.to_gradescope(res, {**gradescope_runtime.DEFAULTS, "max_test_output": 1000,
                                          "max_output": 2000})
    assert all(len(t["output"]) < 1100 for t in data["tests"])
    assert data["output"].endswith("(output cut at 2000 characters)")


def test_setup_fills_the_reference_cache_that_every_submission_then_reads(bundle_zip, tmp_path):
    """Does setup.sh's `warm` step leave the hidden inputs and the autograd references in the
    image's .kit/cache, and does a submission then grade from those files (full marks, the files
    untouched, no other made)?"""
    source = Path(gradescope_bundle.__file__).resolve().parent.parent / "source" / "gradient_backward"
    root = _autograder_root(tmp_path, bundle_zip, {"gradient_backward.ipynb": source / "gradient_backward.ipynb"})
    assert "gradescope_runtime warm" in (root / "source" / "setup.sh").read_text()
    env = {**os.environ, "PYTHONPATH": str(root / "source")}
    subprocess.run([sys.executable, "-m", "autograder.gradescope_runtime", "warm", "--root", str(root)],
                   cwd=root / "source", env=env, check=True, capture_output=True, timeout=300)
    cached = sorted((root / "source" / ".kit" / "cache").glob("*.npz"))
    assert [p.name.split("-")[1] for p in cached] == ["expected", "inputs"]
    before = [p.stat().st_mtime_ns for p in cached]
    r = _run_autograder(root)
    assert r["score"] == r["max_score"] == 100
    assert sorted((root / "source" / ".kit" / "cache").glob("*.npz")) == cached
    assert [p.stat().st_mtime_ns for p in cached] == before
