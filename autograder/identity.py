"""What a submission is, for caching: the kit's fingerprint, the source notebook, the submission key."""
from __future__ import annotations

import ast
import hashlib
import json
from functools import lru_cache
from pathlib import Path

from . import lean  # noqa: F401  (before nbformat: skips what grading never uses)

import nbformat

from . import rubric as rubric_mod
from .notebook import MAX_BYTES, NotebookError, parse_submission, read_submission_bytes, restore

PACKAGE = Path(__file__).resolve().parent
# The modules whose code can change a result (the rest only move results around): a cached
# result stays valid until one of these, the assignment folder or the source notebook changes.
SCORING_MODULES = ("engine.py", "notebook.py", "scoring.py", "rubric.py", "autograd_scan.py",
                   "suite.py", "feedback.py", "diagnose.py")


@lru_cache(maxsize=None)
def fingerprint(assignment: str = "gradient_backward") -> str:
    """Hash of everything that decides a score: the engine, the assignment folder, the source."""
    r = rubric_mod.load(assignment)
    h = hashlib.sha256()
    files = [PACKAGE / m for m in SCORING_MODULES] + sorted((PACKAGE / "sandbox").glob("*.py")) + sorted(
        p for p in r.folder.rglob("*") if p.is_file() and p.suffix in (".py", ".toml")
        and "__pycache__" not in p.parts) + [r.source]
    for f in files:
        h.update(str(f.relative_to(rubric_mod.KIT_ROOT)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:32]


@lru_cache(maxsize=None)
def source_notebook(assignment: str = "gradient_backward"):
    """The assignment's instructor notebook (read once per process)."""
    return nbformat.read(str(rubric_mod.load(assignment).source), as_version=4)


def submission_key(path_or_nb, assignment: str = "gradient_backward") -> str:
    """sha256 over what the grader would run for this submission, plus the kit's fingerprint:
    equal keys give equal results, so it is the cache key. Everything in the plan that the
    engine reads is covered (cells, where parts end, missing cells, added code, notes).
    Unreadable files key on their bytes."""
    fp = fingerprint(assignment)
    if isinstance(path_or_nb, dict):
        return _plan_key(path_or_nb, fp, assignment)
    try:
        raw = read_submission_bytes(path_or_nb, max_bytes=MAX_BYTES + 1)
    except NotebookError as exc:
        return _unreadable_key(fp, exc, b"")
    return _bytes_key(raw, fp, assignment)


def _bytes_key(raw: bytes, fp: str, assignment: str) -> str:
    return _bytes_key_and_hint(raw, fp, assignment)[0]


def _bytes_key_and_hint(raw: bytes, fp: str, assignment: str) -> tuple[str, float]:
    try:
        nb = parse_submission(raw)
    except NotebookError as exc:
        return _unreadable_key(fp, exc, raw), 0.0
    return _plan_key_and_hint(nb, fp, assignment)


def _unreadable_key(fp: str, exc: NotebookError, data: bytes) -> str:
    return hashlib.sha256(fp.encode() + b"\0unreadable\0" + str(exc).encode() + b"\0"
                          + data).hexdigest()


def _plan_key(nb, fp: str, assignment: str) -> str:
    return _plan_key_and_hint(nb, fp, assignment)[0]


def _plan_key_and_hint(nb, fp: str, assignment: str) -> tuple[str, float]:
    r = rubric_mod.load(assignment)
    plan = restore(nb, source_notebook(assignment), r.part_names)
    blob = json.dumps({"cells": [[c.source, c.label, c.origin] for c in plan.cells],
                       "part_after": plan.part_after, "solutions": plan.solutions,
                       "added": plan.added, "missing": plan.missing, "notes": plan.notes},
                      sort_keys=True).encode()
    hint = slow_hint(c.source for c in plan.cells if c.origin != "source")
    return hashlib.sha256(fp.encode() + b"\0" + blob).hexdigest(), hint


def slow_hint(sources) -> float:
    """A guess at how long a submission's own code keeps its process busy, in rough seconds,
    for the order of grading only (never for a score): the seconds its constant sleeps ask
    for, something for every Python-level loop, and a cell's time limit for a `while True`.
    A cohort run starts the likely-slow first, so that it does not end waiting on one."""
    total = 0.0
    for source in sources:
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError, RecursionError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                    and getattr(node.func, "attr", getattr(node.func, "id", "")) == "sleep" \
                    and isinstance(node.args[0].value, (int, float)):
                total += min(max(float(node.args[0].value), 0.0), 60.0)
            elif isinstance(node, ast.While):
                constant = isinstance(node.test, ast.Constant) and bool(node.test.value)
                total += 30.0 if constant else 0.2
            elif isinstance(node, (ast.For, ast.comprehension)):
                total += 0.2
    return total


# (sha256 of the bytes, fingerprint, assignment) -> (key, slow_hint)
_KEYS: dict[tuple[bytes, str, str], tuple[str, float]] = {}
_KEYS_KEPT = 4096


def key_of(path: Path, fp: str, assignment: str = "gradient_backward") -> str:
    return key_and_hint_of(path, fp, assignment)[0]


def key_and_hint_of(path: Path, fp: str, assignment: str = "gradient_backward") -> tuple[str, float]:
    """submission_key, or for a file that is not even a notebook, a hash of its bytes. A cohort
    run asks for each file's key several times (planning, the ledger, waiting for the engine,
    nbgrader's step): the file is read and hashed each time (a read and a hash of some 40 kB),
    parsed and planned once per content and process. Keyed on the bytes, not on file times,
    so a file rewritten a moment ago is never mistaken for its earlier self."""
    try:
        raw = read_submission_bytes(path, max_bytes=MAX_BYTES + 1)
    except NotebookError as exc:   # no regular file to read (a symlink, a FIFO, too big)
        return _unreadable_key(fingerprint(assignment), exc, b""), 0.0   # as submission_key says
    memo = (hashlib.sha256(raw).digest(), fp, assignment)
    found = _KEYS.get(memo)
    if found is None:
        try:
            found = _bytes_key_and_hint(raw, fingerprint(assignment), assignment)
        except Exception:  # unreadable input is graded (score 0 with the reason), never fatal here
            found = hashlib.sha256(b"raw\0" + fp.encode() + raw).hexdigest(), 0.0
        if len(_KEYS) >= _KEYS_KEPT:
            _KEYS.clear()
        _KEYS[memo] = found
    return found
