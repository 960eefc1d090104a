"""gradebook.db read and written through nbgrader's API: assignments, submissions, zero scores, manual review, names, backups."""
from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

import nbformat

from nbgrader.api import Gradebook

from ..safe_files import id_problem


def db_url(course: Path) -> str:
    return f"sqlite:///{Path(course).resolve() / 'gradebook.db'}"


def gradebook_id(course: Path, assignment: str) -> str:
    """The assignment row's id: a new gradebook.db gets a new one, so old ledgers stop matching."""
    with Gradebook(db_url(course)) as gb:
        return gb.find_assignment(assignment).id


def record_zero(course: Path, assignment: str, student: str, reason: str) -> None:
    """A student whose submission nbgrader cannot open gets 0 on every autograded cell, with the reason."""
    from nbgrader.utils import parse_utc
    stamp = Path(course) / "submitted" / student / assignment / "timestamp.txt"
    with Gradebook(db_url(course)) as gb:
        gb.update_or_create_student(student)
        sub = gb.update_or_create_submission(assignment, student)
        # The formgrader counts a submission as autograded (and shows its score) only when this timestamp
        # equals the submitted one and autograded/<student>/<assignment>/ exists.
        sub.timestamp = parse_utc(stamp.read_text().strip()) if stamp.is_file() else None
        names = []
        for nb in sub.notebooks:
            names.append(nb.name)
            for grade in nb.grades:
                grade.auto_score = 0.0 if grade.cell_type == "code" else grade.auto_score
                grade.needs_manual_grade = grade.manual_score is not None
            for comment in nb.comments:
                comment.auto_comment = f"Not graded: {reason}"
        gb.db.commit()
    # What the grading view opens for this student: the reason, in place of a notebook nobody could read.
    import html
    folder = Path(course) / "autograded" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    note = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        f"**Not graded, scored 0:** {html.escape(reason)}\n\nThe kit could not read this submission; "
        "every part was recorded as 0. Ask the student to resubmit, or enter manual scores.")])
    for name in names:
        nbformat.write(note, str(folder / f"{name}.ipynb"))


def mark_manual_review(course: Path, assignment: str, student: str, test_cells: list[str]) -> None:
    """Flag these test cells "needs manual grade" in the gradebook: the formgrader lists them,
    and the instructor can give the points back with a manual score."""
    with Gradebook(db_url(course)) as gb:
        sub = gb.find_submission(assignment, student)
        for nb in sub.notebooks:
            for grade in nb.grades:
                if grade.name in test_cells:
                    grade.needs_manual_grade = True
        gb.db.commit()


def submitted_students(course: Path, assignment: str) -> set[str]:
    """Students with a submission row for the assignment (one query)."""
    with Gradebook(db_url(course)) as gb:
        return {s.student_id for s in gb.find_assignment(assignment).submissions}


def backup_gradebook(course: Path, keep: int = 5) -> Path | None:
    """A consistent copy of gradebook.db (sqlite's backup API), keeping the newest `keep` copies."""
    import time
    src = Path(course) / "gradebook.db"
    if not src.exists():
        return None
    dest = src.with_name(f"gradebook.db.bak-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    with sqlite3.connect(src) as a, sqlite3.connect(dest) as b:
        a.backup(b)
    for old in sorted(src.parent.glob("gradebook.db.bak-*"))[:-keep]:
        old.unlink(missing_ok=True)
    return dest


def clean_name(text) -> str:
    """A person's name as nbgrader's templates print it unescaped: no markup, no controls."""
    text = "".join(ch for ch in str(text or "") if (ch.isprintable() and ch not in "<>&\"`\\"))
    return text.strip()[:100]


def set_student_names(course: Path, names: dict[str, tuple[str, str]]) -> None:
    """student id -> (first, last) into gradebook.db, creating the student; a name already
    there (typed in the formgrader, or from an earlier roster) is kept."""
    if not names:
        return
    # nbgrader runs the `alembic` command next to this Python when it opens a gradebook
    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([bindir, os.environ.get("PATH", "")])
    with Gradebook(db_url(course)) as gb:
        for sid, (first, last) in names.items():
            if id_problem(sid):
                continue
            first, last = clean_name(first), clean_name(last)
            student = gb.update_or_create_student(sid)
            if not student.first_name and not student.last_name:
                # a formgrader view shows "last, first" when both are set, else the id
                student.first_name, student.last_name = (first, last) if (first and last) else ("", first or last or sid)
        gb.db.commit()
