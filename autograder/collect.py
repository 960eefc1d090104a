"""`python -m autograder collect ARCHIVE`: a Canvas download -> submitted/ through nbgrader zip_collect."""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath

log = logging.getLogger("autograder.collect")


# what the Canvas collector and zip_collect say that an instructor needs to see
_WORTH_A_LINE = ("Ignored", "Collected '", "submitted late", "files collected", "ERROR", "CRITICAL")


class CollectError(Exception):
    """Input the instructor has to fix (wrong archive, unknown assignment)."""


def main(*, archive: str, assignment: str = "gradient_backward", course: str = ".") -> int:
    try:
        students = collect(Path(archive), assignment, Path(course))
    except CollectError as e:
        log.error("%s", e)
        return 2
    log.info("collected %d students into %s", len(students),
             Path(course) / "submitted")
    return 0


def collect(archive: Path, assignment: str, course: Path) -> list[str]:
    """Runs zip_collect on a copy of the archive; returns the students now in submitted/."""
    course = course.resolve()
    check_assignment(course, assignment)
    check_archive(archive)
    inbox = course / "downloaded" / assignment / "archive"
    if inbox.exists():
        shutil.rmtree(inbox)   # only this download is collected, not an earlier one left here
    inbox.mkdir(parents=True)
    shutil.copy(archive, inbox / archive.name)
    run = subprocess.run(
        [sys.executable, "-m", "nbgrader", "zip_collect", assignment, "--force"],
        cwd=course, capture_output=True, text=True, env=_env(course))
    for line in run.stderr.splitlines():
        if any(k in line for k in _WORTH_A_LINE):
            log.info("%s", line.split("] ", 1)[-1])
    if run.returncode != 0:
        raise CollectError(f"nbgrader zip_collect failed (exit {run.returncode}):\n{run.stderr[-2000:]}")
    submitted = course / "submitted"
    return sorted(p.name for p in submitted.iterdir()
                  if (p / assignment).is_dir()) if submitted.is_dir() else []


def check_assignment(course: Path, assignment: str) -> None:
    known = sorted(p.name for p in (course / "source").iterdir() if p.is_dir()) \
        if (course / "source").is_dir() else []
    if assignment not in known:
        raise CollectError(f"unknown assignment {assignment!r}: the course has {known or 'none'}")
    if not (course / "release" / assignment).is_dir():
        raise CollectError(f"release/{assignment} is missing: run `make release` first")


def check_archive(archive: Path) -> None:
    """A readable zip whose members all stay inside the folder they are extracted to."""
    if not archive.is_file():
        raise CollectError(f"no such archive: {archive}")
    if not zipfile.is_zipfile(archive):
        raise CollectError(f"{archive} is not a zip archive (Canvas: Assignment > Download Submissions)")
    with zipfile.ZipFile(archive) as z:
        for name in z.namelist():
            p = PurePosixPath(name)
            if p.is_absolute() or ".." in p.parts:
                raise CollectError(f"{archive}: member {name!r} would land outside the course folder")


def _env(course: Path) -> dict:
    """nbgrader must import the kit (for the Canvas collector) even from a copy of the course."""
    env = dict(os.environ)
    kit = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (kit, env.get("PYTHONPATH")) if p)
    return env
