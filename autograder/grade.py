"""The `grade` verb: one submission, the contract's JSON on stdout, logs on stderr."""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

log = logging.getLogger("autograder.grade")


def main(*, notebook: str, json: bool = False, assignment: str = "gradient_backward") -> int:
    from . import lean  # noqa: F401  (first: trims what the imports below would load)
    from . import rubric
    from .engine import grade_notebook
    from .sandbox import SandboxError
    try:
        rubric.load(assignment)
    except FileNotFoundError:
        print(f"error: no assignment named {assignment!r}", file=sys.stderr)
        return 2
    timings: dict[str, float] = {}
    try:
        grade_notebook(Path(notebook), assignment, timings=timings,
                       deliver=lambda result: _deliver(result, json))
    except SandboxError as exc:
        # Not the student's fault: no score rather than an unfair one.
        print(f"error: the sandbox could not start, nothing was graded: {exc}", file=sys.stderr)
        return 3
    log.info("timings: %s", ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
    return 0


def _deliver(result, as_json: bool):
    """The result, printed as soon as it exists (the engine shuts down afterwards)."""
    if as_json:
        _print_json(result.to_json())
        return
    print(result.output, file=sys.stderr)
    for p in result.parts:
        print(f"{p.name:28s} {p.score:6.2f} / {p.max_score:g}  {p.status}")
    print(f"{'total':28s} {result.score:6.2f} / {result.max_score:g}")
    sys.stdout.flush()


def _print_json(data: dict):
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
    sys.stdout.flush()
