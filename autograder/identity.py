"""What a submission is, for caching: the kit's fingerprint, the source notebook, the submission key."""
from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from functools import lru_cache
from pathlib import Path

from . import lean  # noqa: F401  (before nbformat: skips what grading never uses)

import nbformat

from . import rubric as rubric_mod
from .notebook import MAX_BYTES, NotebookError, read_submission, read_submission_bytes, restore

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
    try:
        nb = path_or_nb if isinstance(path_or_nb, dict) else read_submission(path_or_nb)
    except NotebookError as exc:
        try:
            data = read_submission_bytes(path_or_nb, max_bytes=MAX_BYTES + 1)
        except NotebookError:
            data = b""
        return hashlib.sha256(fp.encode() + b"\0unreadable\0" + str(exc).encode() + b"\0"
                              + data).hexdigest()
    r = rubric_mod.load(assignment)
    plan = restore(nb, source_notebook(assignment), r.part_names)
    blob = json.dumps({"cells": [[c.source, c.label, c.origin] for c in plan.cells],
                       "part_after": plan.part_after, "solutions": plan.solutions,
                       "added": plan.added, "missing": plan.missing, "notes": plan.notes},
                      sort_keys=True).encode()
    return hashlib.sha256(fp.encode() + b"\0" + blob).hexdigest()


def key_of(path: Path, fingerprint: str, assignment: str = "gradient_backward") -> str:
    """submission_key, or for a file that is not even a notebook, a hash of its bytes. A cohort
    run asks for each file's key several times (planning, the ledger, waiting for the engine,
    nbgrader's step): a regular file is read once per process while it stays the same file.
    One changed in the last seconds is always read (file times may be too coarse to tell two
    quick writes apart)."""
    try:
        st = os.lstat(path)
    except OSError:
        return _key_of(path, fingerprint, assignment)
    if not stat.S_ISREG(st.st_mode) or time.time() - st.st_ctime < 2:
        return _key_of(path, fingerprint, assignment)
    return _key_of_file(str(path), (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns),
                        fingerprint, assignment)


@lru_cache(maxsize=4096)
def _key_of_file(path: str, identity: tuple, fingerprint: str, assignment: str) -> str:
    return _key_of(path, fingerprint, assignment)


def _key_of(path, fingerprint: str, assignment: str) -> str:
    try:
        return submission_key(path, assignment)
    except Exception:  # unreadable input is graded (score 0 with the reason), never fatal here
        h = hashlib.sha256(b"raw\0" + fingerprint.encode())
        try:
            h.update(Path(path).read_bytes())
        except OSError as e:
            h.update(repr(e).encode())
        return h.hexdigest()
