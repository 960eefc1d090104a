"""Gradescope's runtime: grades /autograder/submission into results/results.json (run by the bundle's run_autograder)."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from .scoring import Result
from .submission_folder import DEFAULT_ASSIGNMENT, GRADE_TIMEOUT, grade_folder

log = logging.getLogger(__name__)

CONFIG = "gradescope.json"              # the bundle's settings, written at build time
DEFAULTS = {
    "assignment": DEFAULT_ASSIGNMENT,
    "visibility": "visible",            # the whole result: visible | after_due_date | after_published | hidden
    "test_visibility": "visible",       # each part's line
    "stdout_visibility": "hidden",      # the grader's own logs
    "max_test_output": 6000,            # characters per part
    "max_output": 10000,                # characters of the top-level output
    "grade_timeout": GRADE_TIMEOUT,     # seconds for one `grade` run
}


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n... (output cut at {limit} characters)"


def to_gradescope(result: Result, cfg: dict) -> dict:
    """Gradescope's results.json: the contract's JSON plus visibility, numbering and capped output."""
    data = result.to_json()
    data["output"] = _cap(data["output"], cfg["max_output"])
    data["visibility"] = cfg["visibility"]
    data["stdout_visibility"] = cfg["stdout_visibility"]
    for number, (test, part) in enumerate(zip(data["tests"], result.parts), start=1):
        test["number"] = str(number)
        test["visibility"] = cfg["test_visibility"]
        test["output"] = _cap(f"{part.title}\n{test['output']}".rstrip(), cfg["max_test_output"])
    return data


def run(root: Path) -> Path:
    """Grade `root`/submission and write `root`/results/results.json (Gradescope's layout)."""
    cfg = {**DEFAULTS, **_read_config(root / "source" / CONFIG)}
    result = grade_folder(root / "submission", cfg["assignment"], timeout=cfg["grade_timeout"])
    out = root / "results" / "results.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(to_gradescope(result, cfg), indent=1) + "\n", encoding="utf-8")
    log.info("gradescope: %s/%s -> %s", result.score, result.max_score, out)
    return out


def warm(root: Path) -> int:
    """At image build (setup.sh): fill the kit's cache in the image, so that no submission's
    trusted side draws the hidden inputs or imports torch to compute the references."""
    from . import assignment, rubric
    cfg = {**DEFAULTS, **_read_config(root / "source" / CONFIG)}
    return assignment.warm_cache(rubric.load(cfg["assignment"]).folder)


def _read_config(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


if __name__ == "__main__":  # `python -m autograder.gradescope_runtime run|warm --root /autograder`
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(prog="python -m autograder.gradescope_runtime")
    p.add_argument("action", choices=["run", "warm"])
    p.add_argument("--root", default=os.environ.get("AUTOGRADER_ROOT", "/autograder"))
    args = p.parse_args()
    {"run": run, "warm": warm}[args.action](Path(args.root))
