"""End to end: `nbgrader autograde` and `python -m autograder autograde` on a temporary course, real engine."""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import nbformat
import pytest

from nbgrader_course import (ASSIGNMENT, KIT, PY, copy_course, env, new_course, release_nb, run,
                             samples_module, submit)

pytestmark = [pytest.mark.slow, pytest.mark.nbgrader]

TEST_CELLS = ["test_mse_grad", "test_relu_grad", "test_lin_grad", "test_forward_and_backward",
              "test_layers_as_classes", "test_module_forward", "test_lin_without_einsum",
              "test_nn_module"]
POINTS = dict(zip(TEST_CELLS, [10, 10, 15, 15, 15, 15, 10, 10]))

VANDAL = '''# a student cell that goes looking for the gradebook to overwrite it
for p in ["gradebook.db", "../gradebook.db", "../../gradebook.db", "../../../gradebook.db",
          {db!r}]:
    try:
        with open(p, "wb") as f:
            f.write(b"pwned")
    except Exception:
        pass
'''


def rows(course: Path) -> list[tuple]:
    from autograder.gradebook import grade_rows
    return grade_rows(course / "gradebook.db", ASSIGNMENT)


def scores(course: Path) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for student, _nb, cell, auto, _manual, _extra, _needs in rows(course):
        out.setdefault(student, {})[cell] = auto
    return out


def cell_of(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """A released course with four corpus-like submissions, not graded yet."""
    course = new_course(tmp_path_factory.mktemp("pristine"))
    s = samples_module()
    rel = release_nb(course)
    full = s.notebook(release=rel)
    submit(course, "noisy", s.notebook({"mse_grad": s.NOISY_MSE}, release=rel))
    submit(course, "mistakes", s.notebook({**s.mistake("mse_missing_factor_2"),
                                           **s.mistake("relu_no_mask")}, release=rel))
    cheater = s.notebook({**s.mistake("cheat_backward"), "forward_and_backward": s.FWD_BWD_AUTOGRAD},
                         release=rel)
    db = str(course / "gradebook.db")
    cheater.cells.insert(3, nbformat.v4.new_code_cell(VANDAL.format(db=db), id="vandal"))
    submit(course, "cheater", cheater)
    tamper = s.tamper_cell(s.delete_cell(full, "test_relu_grad"), "test_mse_grad", "pass")
    retyped = cell_of(tamper, "test_lin_grad")      # a test cell turned into a raw cell
    retyped.cell_type = "raw"
    retyped.pop("outputs", None)
    retyped.pop("execution_count", None)
    submit(course, "tamper", tamper)
    return course


@pytest.fixture(scope="module")
def graded(pristine, tmp_path_factory) -> Path:
    """The course after the plain nbgrader command (the engine runs inside it) and generate_feedback."""
    course = copy_course(pristine, tmp_path_factory.mktemp("graded") / "course")
    run("nbgrader", "autograde", ASSIGNMENT, cwd=course)
    run("nbgrader", "generate_feedback", ASSIGNMENT, "--force", cwd=course)
    return course


def test_nbgrader_scores_equal_the_cli_grade(graded, shared_engine):
    """Does `nbgrader autograde` store, per test cell, exactly the score `autograder grade` prints?"""
    # The JSON `grade --json` prints is this Result.to_json() (tests/test_engine.py checks the CLI).
    res = shared_engine.grade(graded / "submitted" / "mistakes" / ASSIGNMENT /
                              f"{ASSIGNMENT}.ipynb").to_json()
    got = scores(graded)["mistakes"]
    assert got == {t["name"]: t["score"] for t in res["tests"]}
    assert 0 < sum(got.values()) < 100       # partial credit came through as partial credit


def test_every_gradebook_score_is_the_engines(graded):
    """For every student, is each test cell's auto_score the engine's part score, cheater included?"""
    got = scores(graded)
    for record in (graded / ".kit" / "results").glob("*.json"):
        res = json.loads(record.read_text())
        assert got[res["id"]] == {t["name"]: t["score"] for t in res["result"]["tests"]}, res["id"]
    assert len(got) == 4
    assert got["cheater"]["test_mse_grad"] == 0 == got["cheater"]["test_forward_and_backward"]


def test_warnings_and_stderr_do_not_zero_a_cell(graded):
    """Does a correct answer that prints to stderr and warns still get full points?"""
    assert scores(graded)["noisy"] == POINTS


def test_deleted_and_tampered_test_cells_are_restored_and_graded(graded):
    """Are deleted, re-typed (raw) and forged-points test cells all restored and graded?"""
    assert scores(graded)["tamper"] == POINTS
    nb = nbformat.read(str(graded / "autograded" / "tamper" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"), 4)
    assert cell_of(nb, "test_relu_grad").outputs
    assert cell_of(nb, "test_mse_grad").metadata.nbgrader.points == 10
    assert cell_of(nb, "test_lin_grad").cell_type == "code"
    con = sqlite3.connect(graded / "gradebook.db")
    assert con.execute("SELECT max_score FROM grade_cells gc JOIN base_cell bc ON gc.id = bc.id "
                       "WHERE bc.name = 'test_mse_grad'").fetchone() == (10.0,)


def test_student_code_never_touches_the_gradebook(graded):
    """Does a submission that tries to overwrite gradebook.db leave it whole?"""
    assert (graded / "gradebook.db").read_bytes()[:15] == b"SQLite format 3"
    assert set(scores(graded)) == {"noisy", "mistakes", "cheater", "tamper"}


def test_feedback_shows_each_parts_message_and_no_hidden_suite(graded):
    """Does the feedback page carry the engine's per-part text, and nothing of the hidden suites?"""
    page = (graded / "feedback" / "mistakes" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    stored = json.loads(next((graded / ".kit" / "results").glob("mistakes-*.json")).read_text())
    for t in stored["result"]["tests"]:
        assert html.escape(t["output"].splitlines()[0], quote=False) in page
    hidden = {p.name for p in (KIT / "assignments" / ASSIGNMENT).iterdir()}
    for folder in ("autograded", "feedback"):
        for f in (graded / folder).rglob("*"):
            assert f.name not in hidden, f
            if f.suffix in (".ipynb", ".html"):
                assert "BEGIN HIDDEN TESTS" not in f.read_text(), f


def test_regrade_replaces_stale_scores(graded, tmp_path):
    """After a student's notebook changes, does `autograder autograde` regrade them and only them?"""
    course = copy_course(graded, tmp_path / "course")
    run("autograder", "autograde", ASSIGNMENT, "--jobs", "1", cwd=course)   # ledger catches up
    before = scores(course)
    fixed = course / "submitted" / "tamper" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    (course / "submitted" / "mistakes" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").write_bytes(fixed.read_bytes())
    out = run("autograder", "autograde", ASSIGNMENT, "--jobs", "1", cwd=course)
    assert "1 graded, 3 already up to date" in out.stderr
    after = scores(course)
    assert after["mistakes"] == POINTS != before["mistakes"]
    assert {s: after[s] for s in after if s != "mistakes"} == \
        {s: before[s] for s in before if s != "mistakes"}


def test_the_kits_one_pass_stores_what_nbgraders_own_steps_store(pristine, graded, tmp_path):
    """Does `autograder autograde` (one conversion per notebook, the source cells read once per
    run, each notebook's grades saved in one transaction) store the same grades and comments,
    and write the same autograded/ notebooks, as `nbgrader autograde` run with nbgrader's own
    two conversions, OverwriteCells and SaveAutoGrades?"""
    stock, kit = (copy_course(pristine, tmp_path / name) for name in ("stock", "kit"))
    config = stock / "nbgrader_config.py"
    text = config.read_text()
    for ours, theirs in (("autograder.nbgrader_integration.overwrite_cells.CachedOverwriteCells",
                          "nbgrader.preprocessors.OverwriteCells"),
                         ("autograder.nbgrader_integration.save_auto_grades.BatchedSaveAutoGrades",
                          "nbgrader.preprocessors.SaveAutoGrades")):
        assert text.count(f'"{ours}"') == 1
        text = text.replace(f'"{ours}"', f'"{theirs}"')
    config.write_text(text)
    for course in (stock, kit):   # the engine's results, so that neither run grades again
        shutil.copytree(graded / ".kit" / "results", course / ".kit" / "results")
    run("nbgrader", "autograde", ASSIGNMENT, cwd=stock)
    run("autograder", "autograde", ASSIGNMENT, "--jobs", "1", cwd=kit)

    # the one difference meant: the kit asks for a grader where it could not verify code
    flagged = {(r.student, r.cell) for r in rows(kit) if r.needs_manual}
    assert [r._replace(needs_manual=None) for r in rows(kit)] == \
        [r._replace(needs_manual=None) for r in rows(stock)]
    assert {(r.student, r.cell) for r in rows(stock) if r.needs_manual} <= flagged
    assert {s for s, _ in flagged} <= {"cheater"}
    assert len(rows(kit)) == 4 * len(TEST_CELLS)
    comments = """SELECT sa.student_id, bc.name, c.auto_comment FROM comment c
                  JOIN base_cell bc ON c.cell_id = bc.id JOIN submitted_notebook sn ON c.notebook_id = sn.id
                  JOIN submitted_assignment sa ON sn.assignment_id = sa.id ORDER BY 1, 2"""
    got = {course: sqlite3.connect(course / "gradebook.db").execute(comments).fetchall()
           for course in (stock, kit)}
    assert got[kit] == got[stock] and len(got[kit]) == 4 * 8
    notebooks = sorted(p.relative_to(stock) for p in (stock / "autograded").rglob("*.ipynb"))
    assert len(notebooks) == 4
    for nb in notebooks:   # byte for byte, but the random id a restored cell is given
        ids = re.compile(rb'\n   "id": "[0-9a-f]{8}",')
        assert ids.sub(b"", (kit / nb).read_bytes()) == ids.sub(b"", (stock / nb).read_bytes()), nb


def _class_of(pristine: Path, dest: Path, graded: Path) -> Path:
    """Eight students (copies of the four), the store of `graded` so the engine is not rerun."""
    course = copy_course(pristine, dest)
    for i, student in enumerate(["noisy", "mistakes", "cheater", "tamper"] * 2):
        src = pristine / "submitted" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        submit(course, f"s{i}_{student}", src.read_bytes())
    for student in ["noisy", "mistakes", "cheater", "tamper"]:
        shutil.rmtree(course / "submitted" / student)
    shutil.copytree(graded / ".kit" / "results", course / ".kit" / "results")
    return course


def test_kill_9_midway_then_rerun_gives_the_same_gradebook(pristine, graded, tmp_path):
    """Killed with -9 in the middle of nbgrader's pass, does a rerun end with the same grade rows?"""
    straight = _class_of(pristine, tmp_path / "straight", graded)
    run("autograder", "autograde", ASSIGNMENT, "--jobs", "1", cwd=straight)

    killed = _class_of(pristine, tmp_path / "killed", graded)
    ledger = killed / ".kit" / "autograde" / f"{ASSIGNMENT}.json"
    proc = subprocess.Popen([PY, "-m", "autograder", "autograde", ASSIGNMENT, "--jobs", "1"],
                            cwd=killed, env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if ledger.exists() and len(json.loads(ledger.read_text() or "{}")) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(json.loads(ledger.read_text()))
    assert 2 <= done_before < 8
    out = run("autograder", "autograde", ASSIGNMENT, "--jobs", "1", cwd=killed)
    assert "already up to date" in out.stderr
    assert rows(killed) == rows(straight)
    assert len(rows(killed)) == 8 * len(TEST_CELLS)


def test_bad_inputs_get_a_log_line_and_the_right_outcome(graded, tmp_path):
    """Odd ids, empty folder, gutted notebook, nbformat 3, 50 MB, mistyped assignment: what happens?"""
    course = copy_course(graded, tmp_path / "course")
    good = (course / "submitted" / "tamper" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_bytes()
    submit(course, "José Núñez", good)
    (course / "submitted" / "empty" / ASSIGNMENT).mkdir(parents=True)
    submit(course, "wrongname", good)
    (course / "submitted" / "wrongname" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").rename(
        course / "submitted" / "wrongname" / ASSIGNMENT / "my homework.ipynb")
    v4 = nbformat.reads(good.decode(), 4)
    submit(course, "oldformat", nbformat.writes(nbformat.convert(v4, 3)))
    gutted = nbformat.reads(good.decode(), 4)      # solution cell and its test cell both deleted
    gutted.cells = [c for c in gutted.cells
                    if c.metadata.get("nbgrader", {}).get("grade_id") not in ("relu_grad", "test_relu_grad")]
    submit(course, "gutted", gutted)
    big = nbformat.reads(good.decode(), 4)
    big.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * (50 * 2**20))]
    submit(course, "bigfile", big)

    out = run("autograder", "autograde", ASSIGNMENT, "--jobs", "2", cwd=course)
    log = out.stderr
    got = scores(course)
    assert "'José Núñez' has spaces or non-ASCII letters" in log
    assert got["José Núñez"] == POINTS
    assert "no notebook in" in log and sum(got["empty"].values()) == 0
    assert "found ['my homework.ipynb'] but not gradient_backward.ipynb" in log
    assert sum(got["wrongname"].values()) == 0
    assert got["oldformat"] == POINTS
    assert got["bigfile"] == POINTS

    assert got["gutted"]["test_relu_grad"] == 0 and sum(got["gutted"].values()) == 90
    typo = run("autograder", "autograde", "gradient_backwrd", cwd=course, check=False)
    assert typo.returncode == 2 and "unknown assignment 'gradient_backwrd'" in typo.stderr
