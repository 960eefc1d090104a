"""Temporary nbgrader courses for the tests/test_nbgrader_*.py files: real nbgrader, real engine."""
from __future__ import annotations

import atexit
import fcntl
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

KIT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "gradient_backward"
PY = sys.executable


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(p for p in (str(KIT), e.get("PYTHONPATH")) if p)
    return e


def run(*args: str, cwd: Path, check: bool = True, timeout: float = 600, extra_env=None):
    """A real command (python -m nbgrader / python -m autograder) in the course folder."""
    e = env()
    e.update(extra_env or {})
    out = subprocess.run([PY, "-m", *args], cwd=cwd, env=e, capture_output=True, text=True,
                         timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"{args} exited {out.returncode}:\n{out.stderr[-4000:]}")
    return out


_RELEASED: list[Path] = []


def new_course(root: Path) -> Path:
    """A copy of a course released once per test session (nbgrader_config.py, source/, gradebook.db)."""
    return copy_course(released_course(), root / "course")


def released_course() -> Path:
    """The course that `nbgrader generate_assignment` released, once per test session (shared by
    the xdist workers of one run): read it, never write into it (new_course gives a copy to write in)."""
    if not _RELEASED:
        shared = os.environ.get(SHARED_TMP)
        if shared:
            _RELEASED.append(_shared_release(Path(shared) / "released"))
        else:
            top = Path(tempfile.mkdtemp(prefix="gb-released-"))
            atexit.register(shutil.rmtree, top, True)
            _RELEASED.append(_release(top / "course"))
    return _RELEASED[0]


# Set by tests/conftest.py in each xdist worker: the run's temporary folder, shared by its workers
# (pytest removes it with its old runs, as it does every tmp_path).
SHARED_TMP = "GB_TESTS_SHARED_TMP"


def _release(base: Path) -> Path:
    base.mkdir()
    shutil.copy(KIT / "nbgrader_config.py", base)
    shutil.copytree(KIT / "source", base / "source")
    run("nbgrader", "generate_assignment", ASSIGNMENT, "--force", "--log-level=WARN", cwd=base)
    return base


def _shared_release(top: Path) -> Path:
    """The first worker to ask releases into `top` while any other waits on the lock."""
    top.mkdir(exist_ok=True)
    with open(top / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (top / "done").exists():
                shutil.rmtree(top / "course", ignore_errors=True)   # a release that failed half-way
                _release(top / "course")
                (top / "done").touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return top / "course"


def samples_module():
    spec = importlib.util.spec_from_file_location("build_samples", KIT / "samples" / "build_samples.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def release_nb(course: Path) -> Path:
    return course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"


def submit(course: Path, student: str, nb) -> Path:
    path = course / "submitted" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(nb, (bytes, str)):
        path.write_bytes(nb if isinstance(nb, bytes) else nb.encode())
    else:
        nbformat.write(nb, str(path))
    return path


def copy_course(course: Path, dest: Path) -> Path:
    shutil.copytree(course, dest, symlinks=True)
    return dest
