"""The `grade` verb: one submission, the contract's JSON on stdout, logs on stderr."""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

log = logging.getLogger("autograder.grade")


def main(*, notebook: str, json: bool = False, assignment: str = "gradient_backward") -> int:
    from . import rubric
    from .engine import grade_notebook
    from .sandbox import SandboxError
    try:
        rubric.load(assignment)
    except FileNotFoundError:
        print(f"error: no assignment named {assignment!r}", file=sys.stderr)
        return 2
    try:
        result = grade_notebook(Path(notebook), assignment)
    except SandboxError as exc:
        # Not the student's fault: no score rather than an unfair one.
        print(f"error: the sandbox could not start, nothing was graded: {exc}", file=sys.stderr)
        return 3
    if json:
        _print_json(result.to_json())
    else:
        print(result.output, file=sys.stderr)
        for p in result.parts:
            print(f"{p.name:28s} {p.score:6.2f} / {p.max_score:g}  {p.status}")
        print(f"{'total':28s} {result.score:6.2f} / {result.max_score:g}")
    return 0


def _print_json(data: dict):
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
    sys.stdout.flush()
