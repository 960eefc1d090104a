"""The nbgrader-free gradebook reader: nbgrader's own scoring rule (manual over auto, plus extra credit), one reader for the report, the CSV and the nbgrader step."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from autograder import gradebook, gradebook_table, report, rubric

ASSIGNMENT = "gradient_backward"
RUBRIC = rubric.load(ASSIGNMENT)
CELLS = [p.test_cell for p in RUBRIC.parts]

# nbgrader's tables, reduced to the columns the reader joins on and reads
SCHEMA = """
CREATE TABLE assignment (id TEXT PRIMARY KEY, name TEXT);
CREATE TABLE notebook (id TEXT PRIMARY KEY, name TEXT);
CREATE TABLE base_cell (id TEXT PRIMARY KEY, name TEXT);
CREATE TABLE submitted_assignment (id TEXT PRIMARY KEY, assignment_id TEXT, student_id TEXT);
CREATE TABLE submitted_notebook (id TEXT PRIMARY KEY, assignment_id TEXT, notebook_id TEXT);
CREATE TABLE grade (id TEXT PRIMARY KEY, cell_id TEXT, notebook_id TEXT, auto_score FLOAT,
                    manual_score FLOAT, extra_credit FLOAT, needs_manual_grade BOOLEAN);
"""


def make_gradebook(course: Path, grades: dict[str, dict[str, tuple]]) -> Path:
    """grades: student -> {cell: (auto, manual, extra_credit)}; every other cell auto 0."""
    db = course / "gradebook.db"
    con = sqlite3.connect(db)
    con.executescript(SCHEMA)
    con.execute("INSERT INTO assignment VALUES ('a', ?)", (ASSIGNMENT,))
    con.execute("INSERT INTO notebook VALUES ('nb', ?)", (ASSIGNMENT,))
    for c in CELLS:
        con.execute("INSERT INTO base_cell VALUES (?, ?)", (c, c))
    for i, (student, cells) in enumerate(sorted(grades.items())):
        con.execute("INSERT INTO submitted_assignment VALUES (?, 'a', ?)", (f"sa{i}", student))
        con.execute("INSERT INTO submitted_notebook VALUES (?, ?, 'nb')", (f"sn{i}", f"sa{i}"))
        for c in CELLS:
            auto, manual, extra = cells.get(c, (0.0, None, None))
            con.execute("INSERT INTO grade VALUES (?, ?, ?, ?, ?, ?, 0)",
                        (f"g{i}{c}", c, f"sn{i}", auto, manual, extra))
    con.commit()
    con.close()
    return db


@pytest.mark.parametrize("auto,manual,extra,want", [
    (3.0, None, None, 3.0),       # the autograder's score
    (3.0, 1.0, None, 1.0),        # a grader's manual score wins
    (3.0, None, 0.5, 3.5),        # extra credit adds to the autograder's score
    (0.0, 2.0, 0.5, 2.5),         # ... and to a manual one
    (None, None, 0.5, None),      # no score yet: nbgrader counts 0, with no extra credit
])
def test_cell_score_is_nbgraders(auto, manual, extra, want):
    """Is a cell scored as nbgrader's Grade.score scores it?"""
    assert gradebook.cell_score(auto, manual, extra) == want


def test_report_and_csv_agree_on_extra_credit(tmp_path):
    """Do the report and the gradebook table read the same scores, extra credit included?"""
    first, second = CELLS[0], CELLS[1]
    db = make_gradebook(tmp_path, {"ann": {first: (1.0, None, 0.5), second: (None, None, None)},
                                   "bob": {first: (1.0, 2.0, 0.25)}})
    parts = {p.test_cell: p.part for p in RUBRIC.parts}
    in_report = report.read_gradebook(db, RUBRIC)
    rows = {r["student"]: r for r in gradebook_table.table(tmp_path, ASSIGNMENT)}
    assert in_report["ann"][parts[first]] == rows["ann"][parts[first]] == 1.5
    assert in_report["bob"][parts[first]] == rows["bob"][parts[first]] == 2.25
    assert rows["ann"][parts[second]] is None            # the table shows "-": no score yet
    assert in_report["ann"][parts[second]] == 0.0        # the report counts it as nbgrader does
    assert rows["ann"]["total"] == 1.5


def test_no_gradebook_reads_as_empty(tmp_path):
    assert gradebook.grade_rows(tmp_path / "gradebook.db", ASSIGNMENT) == []
    assert report.read_gradebook(tmp_path / "gradebook.db", RUBRIC) == {}
