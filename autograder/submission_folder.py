"""A submission folder graded through the contract's command: the notebook picked without following links, a Result always (Gradescope's and CI's runtimes)."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from . import rubric as rubric_mod
from .notebook import NotebookError
from .rubric import KIT_ROOT
from .safe_files import read_regular, regular_files
from .scoring import Result, unreadable

DEFAULT_ASSIGNMENT = "gradient_backward"
GRADE_TIMEOUT = 900                     # seconds for one `grade` run, far above a normal 30 s


def pick_notebook(folder: Path, expected: str) -> tuple[Path | None, str]:
    """(the notebook to grade or None, a note for the student).

    Only regular files inside the submission count: a symbolic link (to the kit's notebook, to
    another file) is never followed, and said so. Several notebooks: the one named like the
    assignment wins; otherwise nothing is guessed.
    """
    # dot folders hold checkpoints, .git, or (in CI) the grading kit's own notebook: never the answer
    files, skipped = regular_files(folder)
    found = [p for p in files if p.suffix.lower() == ".ipynb"]
    links = [s for s in skipped if s.what.lower().endswith(".ipynb")]
    refused = " ".join(f"{s.line()}." for s in links)
    if not found:
        return None, " ".join(x for x in (f"No notebook found in your submission: upload {expected}.",
                                          refused) if x)
    if len(found) == 1:
        return found[0], refused
    named = [p for p in found if p.name.lower() == expected.lower()]
    names = ", ".join(p.relative_to(folder).as_posix() for p in found)
    if len(named) == 1:
        return named[0], " ".join(x for x in (f"Several notebooks were submitted ({names}); graded "
                                              f"{expected}, ignored the rest.", refused) if x)
    return None, f"Several notebooks were submitted ({names}) and none is unambiguously {expected}: submit only {expected}."


def grade_via_cli(notebook: Path, assignment: str, *, timeout: float,
                  python: str = sys.executable) -> tuple[Result | None, str]:
    """The contract's command on one notebook: (Result, "") or (None, why it failed)."""
    cmd = [python, "-m", "autograder", "grade", str(notebook), "--json", "--assignment", assignment]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=KIT_ROOT)
    except subprocess.TimeoutExpired:
        return None, f"the grader did not finish within {timeout:g} s"
    sys.stderr.write(proc.stderr[-20000:])  # the grader's logs: stdout_visibility decides who sees them
    try:
        return Result.from_json(json.loads(proc.stdout)), ""
    except (ValueError, KeyError, TypeError):
        return None, f"the grader exited with code {proc.returncode} without a result"


def grade_folder(folder: Path, assignment: str, *, timeout: float) -> Result:
    """A Result for whatever a student put in `folder`: never raises for what they submitted."""
    rubric = rubric_mod.load(assignment)
    expected = rubric.source.name
    notebook, note = pick_notebook(folder, expected)
    if notebook is None:
        return unreadable(rubric, note)
    # The grader reads a private copy taken through an O_NOFOLLOW descriptor: a file swapped for
    # a link after the pick, or reached through a linked folder, is refused, not followed.
    try:
        data = read_regular(notebook, folder)
    except NotebookError as exc:
        return unreadable(rubric, " ".join(x for x in (note, str(exc)) if x))
    with tempfile.TemporaryDirectory(prefix="gb-submission-") as private:
        copy = Path(private) / expected
        copy.write_bytes(data)
        result, failure = grade_via_cli(copy, assignment, timeout=timeout)
    if result is None:
        failed = unreadable(rubric, f"the autograder failed ({failure}); this is not a judgement "
                                    "of your work: please tell your instructor")
        return failed.replace(error=f"grader_failure: {failure}")
    return result.replace(output="\n".join(x for x in (note, result.output) if x))
