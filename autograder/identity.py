"""What a submission is, for caching: the kit's fingerprint, the source notebook, the submission key."""
from __future__ import annotations

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
    try:
        nb = parse_submission(raw)
    except NotebookError as exc:
        return _unreadable_key(fp, exc, raw)
    return _plan_key(nb, fp, assignment)


def _unreadable_key(fp: str, exc: NotebookError, data: bytes) -> str:
    return hashlib.sha256(fp.encode() + b"\0unreadable\0" + str(exc).encode() + b"\0"
                          + data).hexdigest()


def _plan_key(nb, fp: str, assignment: str) -> str:
    r = rubric_mod.load(assignment)
    plan = restore(nb, source_notebook(assignment), r.part_names)
    blob = json.dumps({"cells": [[c.source, c.label, c.origin] for c in plan.cells],
                       "part_after": plan.part_after, "solutions": plan.solutions,
                       "added": plan.added, "missing": plan.missing, "notes": plan.notes},
                      sort_keys=True).encode()
    return hashlib.sha256(fp.encode() + b"\0" + blob).hexdigest()


_KEYS: dict[tuple[bytes, str, str], str] = {}   # (sha256 of the bytes, fingerprint, assignment) -> key
_KEYS_KEPT = 4096


def key_of(path: Path, fp: str, assignment: str = "gradient_backward") -> str:
    """submission_key, or for a file that is not even a notebook, a hash of its bytes. A cohort
    run asks for each file's key several times (planning, the ledger, waiting for the engine,
    nbgrader's step): the file is read and hashed each time (a read and a hash of some 40 kB),
    parsed and planned once per content and process. Keyed on the bytes, not on file times,
    so a file rewritten a moment ago is never mistaken for its earlier self."""
    try:
        raw = read_submission_bytes(path, max_bytes=MAX_BYTES + 1)
    except NotebookError as exc:   # no regular file to read (a symlink, a FIFO, too big)
        return _unreadable_key(fingerprint(assignment), exc, b"")   # as submission_key says
    memo = (hashlib.sha256(raw).digest(), fp, assignment)
    key = _KEYS.get(memo)
    if key is None:
        try:
            key = _bytes_key(raw, fingerprint(assignment), assignment)
        except Exception:  # unreadable input is graded (score 0 with the reason), never fatal here
            key = hashlib.sha256(b"raw\0" + fp.encode() + raw).hexdigest()
        if len(_KEYS) >= _KEYS_KEPT:
            _KEYS.clear()
        _KEYS[memo] = key
    return key
