"""Tests of the GitHub Classroom workflow template: its YAML, and its grading step run for real."""
from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from autograder import rubric as rubric_mod
from autograder.rubric import KIT_ROOT
from autograder.synth import write_submission

RUBRIC = rubric_mod.load("gradient_backward")
WORKFLOW = KIT_ROOT / "ci_templates" / "classroom.yml"
WRONG_RELU_GRAD = "def relu_grad(inp, out):\n    inp.g = out.g.clone()\n"


def _workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _steps() -> list[dict]:
    return _workflow()["jobs"]["run-autograding-tests"]["steps"]


def _step(step_id: str) -> dict:
    return next(s for s in _steps() if s.get("id") == step_id)


def _expand(value: str, context: dict[str, str]) -> str:
    """Replace the workflow's `${{ ... }}` expressions; an unknown one fails the test."""
    def sub(m: re.Match) -> str:
        return context[m.group(1).strip()]
    return re.sub(r"\$\{\{(.*?)\}\}", sub, value)


def _run_grading_step(workspace: Path, tmp: Path) -> tuple[subprocess.CompletedProcess, Path, Path]:
    """The grading step's own `run` and `env`, as GitHub Actions would run them in this workspace.

    The kit checkout (.grader-kit) is this working tree, linked in so that notebook picking sees
    it; KIT_DIR names the tree itself, because the sandbox hides /tmp, where the link lives.
    """
    (workspace / ".grader-kit").symlink_to(KIT_ROOT, target_is_directory=True)
    summary, output = tmp / "summary.md", tmp / "output.txt"
    context = {"github.workspace": str(workspace), "runner.temp": str(tmp)}
    step = _step("grading")
    env = {**os.environ, "GITHUB_WORKSPACE": str(workspace), "RUNNER_TEMP": str(tmp),
           "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(output), "CI": "true",
           **{k: _expand(str(v), context) for k, v in step["env"].items()}}
    assert env["KIT_DIR"] == str(workspace / ".grader-kit")
    env["KIT_DIR"] = str(KIT_ROOT)
    proc = subprocess.run(["bash", "-e", "-c", step["run"]], env=env, cwd=workspace,
                          capture_output=True, text=True, timeout=900)
    return proc, summary, output


def _outputs(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


@pytest.fixture(scope="module")
def grading_step_on_wrong_relu_grad(tmp_path_factory):
    """The grading step on a student repository whose part 2 is wrong."""
    workspace = tmp_path_factory.mktemp("student-repo")
    write_submission(workspace / "gradient_backward.ipynb", {"relu_grad": WRONG_RELU_GRAD})
    (workspace / "README.md").write_text("my homework\n")
    return _run_grading_step(workspace, tmp_path_factory.mktemp("runner-temp"))


def test_workflow_parses_and_triggers_on_push():
    """Is the template valid YAML with the Classroom triggers, permissions and a timeout?"""
    wf = _workflow()
    assert wf["name"] == "Autograding Tests"
    assert "push" in wf["on"] and "repository_dispatch" in wf["on"]
    assert wf["permissions"]["checks"] == "write"
    job = wf["jobs"]["run-autograding-tests"]
    assert job["timeout-minutes"] <= 60 and "github-classroom[bot]" in job["if"]


def test_reporter_reads_the_grading_step_output():
    """Does the reporter get `<RUNNER>_RESULTS` from the grading step's `result` output?"""
    reporter = next(s for s in _steps() if "autograding-grading-reporter" in s.get("uses", ""))
    runner = reporter["with"]["runners"]
    assert _step(runner)  # a step with that id exists
    assert reporter["env"][f"{runner.upper()}_RESULTS"] == f"${{{{ steps.{runner}.outputs.result }}}}"
    assert reporter["if"] == "always()"


def test_workflow_installs_the_pinned_environment_and_bubblewrap():
    """Does the workflow install the kit from requirements + constraints, and bwrap?"""
    runs = "\n".join(s.get("run", "") for s in _steps())
    assert "-r requirements.txt -c constraints.txt" in runs
    assert "bubblewrap" in runs
    kit = next(s for s in _steps() if s.get("with", {}).get("path") == ".grader-kit")
    assert kit["with"]["token"] == "${{ secrets.KIT_TOKEN }}"


@pytest.mark.slow
def test_grading_step_writes_points_summary_and_payload(grading_step_on_wrong_relu_grad):
    """Does the grading step print `Points X/Y`, fill the job summary and the reporter payload?"""
    proc, summary, output = grading_step_on_wrong_relu_grad
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = RUBRIC.max_score - RUBRIC.get("relu_grad").points
    assert f"Points {expected:g}/{RUBRIC.max_score:g}" in proc.stdout.splitlines()
    md = summary.read_text()
    assert f"## gradient_backward: {expected:g} / {RUBRIC.max_score:g} points" in md
    assert "<details><summary>Part 2: relu_grad</summary>" in md
    outs = _outputs(output)
    assert outs["points"] == f"{expected:g}" and outs["max-points"] == f"{RUBRIC.max_score:g}"
    payload = json.loads(base64.b64decode(outs["result"]))
    assert payload["max_score"] == RUBRIC.max_score and payload["status"] == "fail"
    assert sum(t["score"] for t in payload["tests"]) == expected  # what the reporter sends Classroom
    assert [t["status"] for t in payload["tests"]].count("fail") == 1


@pytest.mark.slow
def test_grading_step_ignores_the_kits_own_notebook(grading_step_on_wrong_relu_grad):
    """Is the student's notebook graded, not the kit checkout's source notebook beside it?"""
    proc, _, _ = grading_step_on_wrong_relu_grad
    assert "Several notebooks" not in proc.stdout + proc.stderr


@pytest.mark.slow
def test_grading_step_without_a_notebook_reports_zero(tmp_path):
    """With no notebook pushed, does the step still succeed and report 0 points with the reason?"""
    workspace = tmp_path / "repo"
    workspace.mkdir()
    proc, summary, output = _run_grading_step(workspace, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"Points 0/{RUBRIC.max_score:g}" in proc.stdout
    assert "No notebook found" in summary.read_text()
    assert json.loads(base64.b64decode(_outputs(output)["result"]))["status"] == "error"
