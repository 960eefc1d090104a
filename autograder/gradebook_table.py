"""`python -m autograder gradebook`: the gradebook as a students x parts table, and as a CSV."""
from __future__ import annotations

import csv
import logging
import io
from pathlib import Path

from . import gradebook
from . import rubric as rubric_mod
from .safe_files import atomic_write

log = logging.getLogger("autograder.gradebook")


def main(*, course: str = ".", assignment: str = "gradient_backward", csv_out: str | None = None) -> int:
    course_path = Path(course)
    if not (course_path / "gradebook.db").exists():
        log.error("no gradebook at %s: run `make release` and `make autograde` first",
                  course_path / "gradebook.db")
        return 2
    rows = table(course_path, assignment)
    print(render(rows, assignment))
    if csv_out:
        write_csv(rows, assignment, Path(csv_out))
        log.info("grades written to %s", csv_out)
    return 0


def table(course: Path, assignment: str) -> list[dict]:
    """One dict per student: part -> score (a grader's manual score wins), total, max."""
    rub = rubric_mod.load(assignment)
    rows = []
    for student, cells in sorted(gradebook.scores(course / "gradebook.db", assignment).items()):
        row = {"student": student}
        for p in rub.parts:
            row[p.part] = cells.get(p.test_cell)
        row["total"] = round(sum(v for k, v in row.items() if k in rub.part_names and v), 2)
        row["max"] = rub.max_score
        rows.append(row)
    return rows


def render(rows: list[dict], assignment: str) -> str:
    rub = rubric_mod.load(assignment)
    width = max([len("student")] + [len(r["student"]) for r in rows])
    heads = [f"P{i}" for i in range(1, len(rub.parts) + 1)]
    lines = [f"{'student':<{width}}  " + " ".join(f"{h:>5}" for h in heads) + f"  {'total':>6}"]
    lines.append("-" * len(lines[0]))
    for r in rows:
        cells = " ".join(_fmt(r[p.part]) for p in rub.parts)
        lines.append(f"{r['student']:<{width}}  {cells}  {r['total']:>6g}")
    lines.append("-" * len(lines[0]))
    lines.append(f"{'max':<{width}}  " + " ".join(f"{p.points:>5g}" for p in rub.parts)
                 + f"  {rub.max_score:>6g}")
    legend = ", ".join(f"P{i} {p.part}" for i, p in enumerate(rub.parts, 1))
    return "\n".join(lines) + f"\n{legend}\n(- = no score yet: needs manual grading in the formgrader)"


def _fmt(v) -> str:
    return f"{'-':>5}" if v is None else f"{v:>5g}"


def write_csv(rows: list[dict], assignment: str, out: Path) -> Path:
    """student, one column per part, total, max_score; written atomically."""
    rub = rubric_mod.load(assignment)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = io.StringIO(newline="")
    w = csv.writer(text)
    w.writerow(["student", *rub.part_names, "total", "max_score"])
    for r in rows:
        w.writerow([r["student"], *("" if r[p] is None else r[p] for p in rub.part_names),
                    r["total"], r["max"]])
    atomic_write(out, text.getvalue())
    return out
