"""`python -m autograder demo` (= `make`): collect the sample class, autograde, feedback, CSV, table."""
from __future__ import annotations

import logging
import time
import zipfile
from pathlib import Path

from . import collect as collect_mod
from . import gradebook_table
from .autograde import AutogradeError, autograde

log = logging.getLogger("autograder.demo")

ASSIGNMENT = "gradient_backward"
SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "canvas_download.zip"


def main(*, course: str = ".", jobs: int = 0) -> int:
    course_path = Path(course).resolve()
    t0 = time.monotonic()
    try:
        guard_real_class(course_path, SAMPLES)
        steps(course_path, jobs=jobs)
    except (collect_mod.CollectError, AutogradeError, DemoError) as e:
        log.error("%s", e)
        return 2
    log.info("demo done in %.0f s", time.monotonic() - t0)
    return 0


class DemoError(Exception):
    pass


def sample_students(archive: Path) -> set[str]:
    from .canvas import parse_canvas
    with zipfile.ZipFile(archive) as z:
        return {f.student for f in map(parse_canvas, z.namelist()) if f and f.ext == ".ipynb"}


def guard_real_class(course: Path, archive: Path) -> None:
    """The demo writes into the course's gradebook: never next to a real class's submissions."""
    if not archive.is_file():
        raise DemoError(f"{archive} is missing: run `.venv/bin/python samples/build_samples.py`")
    submitted = course / "submitted"
    present = {p.name for p in submitted.iterdir() if p.is_dir()} if submitted.is_dir() else set()
    real = sorted(present - sample_students(archive))
    if real:
        raise DemoError(f"{submitted} holds submissions that are not the sample class ({real[:3]}...): "
                        "run the demo in another folder: python -m autograder demo --course build/demo")


def steps(course: Path, *, jobs: int = 0) -> None:
    from .nbgrader_integration.course_api import open_api
    _banner("1/5 collect the Canvas download", SAMPLES)
    students = collect_mod.collect(SAMPLES, ASSIGNMENT, course)
    log.info("%d students in %s", len(students), course / "submitted")

    _banner("2/5 autograde (sandboxed engine, then nbgrader)", course / "gradebook.db")
    autograde(course, ASSIGNMENT, jobs=jobs)

    _banner("3/5 feedback (nbgrader generate_feedback)", course / "feedback")
    out = open_api(course).generate_feedback(ASSIGNMENT, force=True)
    if not out.get("success"):
        raise DemoError(f"generate_feedback failed:\n{(out.get('error') or '')[-2000:]}")

    _banner("4/5 export", course / "build" / "grades.csv")
    rows = gradebook_table.table(course, ASSIGNMENT)
    csv_path = gradebook_table.write_csv(rows, ASSIGNMENT, course / "build" / "grades.csv")

    _banner("5/5 gradebook", "")
    print(gradebook_table.render(rows, ASSIGNMENT), flush=True)
    feedback = sorted((course / "feedback").glob(f"*/{ASSIGNMENT}/*.html"))
    print(f"""
Where things are:
  submitted notebooks   {course / 'submitted'}/<student>/{ASSIGNMENT}/
  autograded notebooks  {course / 'autograded'}/<student>/{ASSIGNMENT}/
  feedback (HTML)       {course / 'feedback'}/<student>/{ASSIGNMENT}/{ASSIGNMENT}.html  ({len(feedback)} pages)
  grades (CSV)          {csv_path}
  gradebook             {course / 'gradebook.db'}   (review and override: make lab -> Nbgrader > Manage Assignments)
""", flush=True)


def _banner(title: str, where) -> None:
    log.info("== %s %s", title, f"-> {where}" if where else "")
