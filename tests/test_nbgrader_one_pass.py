"""The nbgrader step in one pass: late penalties, timestamps and autograded/ copies as nbgrader stores them."""
from __future__ import annotations

import sqlite3

import pytest

from nbgrader_course import ASSIGNMENT, new_course, release_nb, run, samples_module, submit

pytestmark = pytest.mark.slow


def test_one_pass_keeps_late_penalties_timestamps_and_copies(tmp_path):
    """With a due date and nbgrader's 'zero' late policy, does one pass over the class store the
    late student's penalty and every timestamp, copy the assignment's files into autograded/,
    and store the same again when run again?"""
    from nbgrader.api import Gradebook
    course = new_course(tmp_path)
    with (course / "nbgrader_config.py").open("a") as f:
        f.write('\nc.LateSubmissionPlugin.penalty_method = "zero"\n')
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        gb.update_or_create_assignment(ASSIGNMENT, duedate="2026-11-30 12:00:00 UTC")
    full = samples_module().notebook(release=release_nb(course))
    stamps = {"early": "2026-11-30 11:00:00.000000 UTC", "late": "2026-11-30 13:00:00.000000 UTC"}
    for student, stamp in stamps.items():
        path = submit(course, student, full)
        (path.parent / "timestamp.txt").write_text(stamp)

    run("autograder", "autograde", ASSIGNMENT, "--jobs", "1", cwd=course)
    first = _rows(course)
    con = sqlite3.connect(course / "gradebook.db")
    got = dict(con.execute(
        """SELECT sa.student_id, sn.late_submission_penalty FROM submitted_notebook sn
           JOIN submitted_assignment sa ON sn.assignment_id = sa.id""").fetchall())
    scores = dict(con.execute(
        """SELECT sa.student_id, SUM(g.auto_score) FROM grade g
           JOIN submitted_notebook sn ON g.notebook_id = sn.id
           JOIN submitted_assignment sa ON sn.assignment_id = sa.id GROUP BY sa.student_id""").fetchall())
    stored = dict(con.execute("SELECT student_id, timestamp FROM submitted_assignment").fetchall())
    con.close()
    assert scores["early"] == scores["late"] == 100
    assert not got["early"] and got["late"] == scores["late"]      # 'zero': the whole score
    assert {s: stored[s][:19] for s in stamps} == {s: t[:19] for s, t in stamps.items()}
    for student in stamps:
        folder = course / "autograded" / student / ASSIGNMENT
        assert {"gbcheck.py", "gbexplain.py", "digits.npz", "timestamp.txt", f"{ASSIGNMENT}.ipynb"} <= \
            {p.name for p in folder.iterdir()}

    # up to date, or regraded when the kit changed in between: the same rows either way
    run("autograder", "autograde", ASSIGNMENT, "--jobs", "1", cwd=course)
    assert _rows(course) == first


def _rows(course):
    con = sqlite3.connect(course / "gradebook.db")
    try:
        return sorted(con.execute(
            """SELECT sa.student_id, sa.timestamp, sn.late_submission_penalty, g.auto_score
               FROM grade g JOIN submitted_notebook sn ON g.notebook_id = sn.id
               JOIN submitted_assignment sa ON sn.assignment_id = sa.id""").fetchall())
    finally:
        con.close()


def test_the_pass_converts_a_student_only_once_the_engines_result_is_there(tmp_path, shared_engine):
    """With nbgrader's pass running beside the engine: is a student whose result is stored
    converted and scored, and one whose result never comes (the engine stopped) left out,
    reported failed and not marked done, so that the next run grades it?"""
    from autograder import autograde
    from autograder.identity import key_of
    from autograder.store import ResultStore, results_dir
    course = new_course(tmp_path)
    full = samples_module().notebook(release=release_nb(course))
    for student in ("graded", "never"):
        submit(course, student, full)
    subs = autograde.discover(course, ASSIGNMENT)
    store = ResultStore(results_dir(course), assignment=ASSIGNMENT)
    graded = next(s for s in subs if s.student == "graded")
    store.save("graded", shared_engine.grade(graded.notebook),
               key=key_of(graded.notebook, store.fingerprint, ASSIGNMENT))
    asked = []

    def wait_for(sub):
        asked.append(sub.student)
        return sub.student == "graded"

    counts = autograde.run_nbgrader(course, ASSIGNMENT, subs, store, wait_for)
    assert asked == ["graded", "never"]                   # in order, each before its conversion
    assert counts["graded"] == 1 and counts["failed"] == ["never"]
    assert (course / "autograded" / "graded" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file()
    assert not (course / "autograded" / "never").exists()
    assert set(autograde.read_ledger(autograde.ledger_path(course, ASSIGNMENT))) == {"graded"}
    assert sum(r[3] for r in _rows(course) if r[0] == "graded") == 100
