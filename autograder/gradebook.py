"""nbgrader's gradebook.db read with plain read-only SQL: the grade rows and each cell's score, without importing nbgrader."""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import NamedTuple

_GRADES_SQL = """
SELECT sa.student_id, n.name, bc.name, g.auto_score, g.manual_score, g.extra_credit,
       g.needs_manual_grade
FROM grade g
JOIN base_cell bc ON g.cell_id = bc.id
JOIN submitted_notebook sn ON g.notebook_id = sn.id
JOIN notebook n ON sn.notebook_id = n.id
JOIN submitted_assignment sa ON sn.assignment_id = sa.id
JOIN assignment a ON sa.assignment_id = a.id
WHERE a.name = ?
"""


class GradeRow(NamedTuple):
    """One row of nbgrader's `grade` table, with the student, notebook and cell it belongs to."""
    student: str
    notebook: str
    cell: str
    auto: float | None
    manual: float | None
    extra_credit: float | None
    needs_manual: bool


def grade_rows(db: Path, assignment: str) -> list[GradeRow]:
    """Every grade row of the assignment in gradebook.db at `db`, sorted; none when there is no
    gradebook yet."""
    if not Path(db).exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return sorted(GradeRow(*row) for row in con.execute(_GRADES_SQL, (assignment,)))
    finally:
        con.close()


def assignment_names(db: Path) -> list[str]:
    """The assignments gradebook.db at `db` knows (released with `make release`), sorted; none
    when there is no gradebook yet."""
    if not Path(db).exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return sorted(name for (name,) in con.execute("SELECT name FROM assignment"))
    finally:
        con.close()


def cell_score(auto: float | None, manual: float | None, extra_credit: float | None) -> float | None:
    """The score nbgrader gives a cell (its `Grade.score`): a grader's manual score, else the
    autograder's, plus any extra credit; None when neither was given (no score yet), which
    nbgrader counts as 0."""
    score = manual if manual is not None else auto
    if score is None:
        return None
    return float(score) + float(extra_credit or 0.0)


def scores(db: Path, assignment: str) -> dict[str, dict[str, float | None]]:
    """student -> {test cell: score or None}, scored as nbgrader scores them (cell_score)."""
    table: dict[str, dict[str, float | None]] = {}
    for row in grade_rows(db, assignment):
        table.setdefault(row.student, {})[row.cell] = cell_score(row.auto, row.manual,
                                                                 row.extra_credit)
    return table
