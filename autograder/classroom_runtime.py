"""GitHub Classroom's CI runtime: grades the pushed notebook, writes the job summary and the points Classroom reads."""
from __future__ import annotations

import argparse
import base64
import html
import json
import os
import sys
from pathlib import Path

from .scoring import Result
from .submission_folder import DEFAULT_ASSIGNMENT, GRADE_TIMEOUT, grade_folder

MAX_DETAIL = 4000  # characters of one part's feedback in the job summary


def classroom_payload(result: Result) -> dict:
    """The runner result that classroom-resources/autograding-grading-reporter reads (base64 JSON).

    The reporter sums `tests[].score` into the "Points X/Y" it sends to GitHub Classroom.
    """
    status = "error" if result.error else ("pass" if result.score >= result.max_score else "fail")
    return {
        "version": 1, "status": status, "max_score": result.max_score,
        "tests": [{"name": p.title, "status": "pass" if p.status == "passed" else "fail",
                   "score": p.score, "message": p.output[:MAX_DETAIL], "test_code": p.name,
                   "filename": "", "line_no": 0, "execution_time": ""} for p in result.parts],
    }


def points_line(result: Result) -> str:
    return f"Points {result.score:g}/{result.max_score:g}"


def summary_markdown(result: Result, assignment: str) -> str:
    """The job summary: total, one row per part, the feedback of every part not fully passed."""
    lines = [f"## {assignment}: {result.score:g} / {result.max_score:g} points", ""]
    if result.output:
        lines += [f"<pre>{html.escape(result.output)}</pre>", ""]
    lines += ["| part | score | |", "|---|---:|---|"]
    for p in result.parts:
        mark = "✅" if p.status == "passed" else "❌"
        lines.append(f"| {html.escape(p.title)} | {p.score:g} / {p.max_score:g} | {mark} |")
    for p in result.parts:
        if p.status != "passed" and p.output:
            lines += ["", f"<details><summary>{html.escape(p.title)}</summary>",
                      f"<pre>{html.escape(p.output[:MAX_DETAIL])}</pre></details>"]
    lines += ["", points_line(result), ""]
    return "\n".join(lines)


def _append(path: str | None, text: str) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(text)


def publish(result: Result, assignment: str, *, results_file: Path | None = None) -> None:
    """Write what GitHub Actions reads: job summary, step outputs, the results file, the log."""
    if results_file:
        results_file.parent.mkdir(parents=True, exist_ok=True)
        results_file.write_text(json.dumps(result.to_json(), indent=1) + "\n", encoding="utf-8")
    payload = base64.b64encode(json.dumps(classroom_payload(result)).encode()).decode("ascii")
    _append(os.environ.get("GITHUB_STEP_SUMMARY"), summary_markdown(result, assignment))
    _append(os.environ.get("GITHUB_OUTPUT"),
            f"result={payload}\npoints={result.score:g}\nmax-points={result.max_score:g}\n")
    for p in result.parts:
        print(f"{'PASS' if p.status == 'passed' else 'FAIL'}  {p.title}: {p.score:g}/{p.max_score:g}")
    print(points_line(result))  # the line GitHub Classroom's older autograder parsed from the log


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m autograder.classroom_runtime", description=__doc__)
    p.add_argument("--submission", default=os.environ.get("GITHUB_WORKSPACE", "."),
                   help="the folder holding the student's notebook (the repository checkout)")
    p.add_argument("--assignment", default=DEFAULT_ASSIGNMENT)
    p.add_argument("--results", default=None, help="also write the contract's JSON here")
    p.add_argument("--timeout", type=float, default=GRADE_TIMEOUT)
    args = p.parse_args(argv)
    result = grade_folder(Path(args.submission).resolve(), args.assignment, timeout=args.timeout)
    publish(result, args.assignment, results_file=Path(args.results) if args.results else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
