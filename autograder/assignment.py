"""Loads an assignment folder's own modules (cases, reference, verdicts, suites...) by path, under a package name unique to the folder."""
from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import re
import sys
import threading
from pathlib import Path
from types import ModuleType

from .rubric import KIT_ROOT

PREFIX = "_assignment_"
_lock = threading.Lock()


def package_name(folder: str | Path) -> str:
    """'_assignment_gradient_backward_1a2b3c4d5e': the folder's name for reading, its path's hash
    for uniqueness (two folders named alike never share a module)."""
    folder = Path(folder).resolve()
    digest = hashlib.sha256(str(folder).encode()).hexdigest()[:10]
    return f"{PREFIX}{re.sub(r'[^0-9A-Za-z_]', '_', folder.name)}_{digest}"


def package(folder: str | Path) -> ModuleType:
    """The folder as a package of its own (no __init__.py needed, nothing added to sys.path), so
    its modules import one another relatively: `from .cases import Case`."""
    folder = Path(folder).resolve()
    name = package_name(folder)
    with _lock:
        if name not in sys.modules:
            spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
            spec.submodule_search_locations = [str(folder)]
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
        return sys.modules[name]


def load(folder: str | Path, module: str) -> ModuleType:
    """`module` (e.g. "cases") of the assignment in `folder`, imported once per process."""
    if not (Path(folder) / f"{module}.py").is_file():
        raise ModuleNotFoundError(f"{folder} has no {module}.py")
    package(folder)
    return importlib.import_module(f"{package_name(folder)}.{module}")


def cases_and_inputs(folder: str | Path):
    """The assignment's cases, and how a case's inputs are made (its `reference.inputs` when it
    has one: the suites' references cache the same inputs, so they are built once)."""
    cases = load(folder, "cases").all_cases()
    return cases, getattr(_reference(folder), "inputs", lambda case: case.make_inputs())


def _reference(folder: str | Path) -> ModuleType | None:
    """The assignment's `reference` module, when it has one."""
    return load(folder, "reference") if (Path(folder) / "reference.py").is_file() else None


def constant(folder: str | Path, module: str, name: str):
    """A module-level constant of one of the assignment's modules, read from its text without
    running it: the probes import torch, which the trusted side otherwise never needs."""
    import ast
    tree = ast.parse((Path(folder) / f"{module}.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise LookupError(f"{module}.py sets no constant {name}")


# --- what an assignment computes once and keeps: its inputs and references ---------------------
def warm_cache(folder: str | Path) -> int:
    """Computes now what the assignment keeps in the cache (every case's expected output, when
    its `reference` module has `expected`, and the inputs they are computed from), e.g. while
    an autograder image is built, so that no submission pays for it. Returns how many cases it
    went through."""
    cases, _ = cases_and_inputs(folder)
    reference = _reference(folder)
    if not hasattr(reference, "expected"):
        return 0
    for case in cases:
        reference.expected(case)
    return len(cases)


CACHE_DIR = KIT_ROOT / ".kit" / "cache"
# What a cached computation may depend on besides the folder's own code.
_CACHE_PACKAGES = ("numpy", "torch")


def _cache_digest(folder: Path, name: str) -> str:
    from importlib import metadata
    h = hashlib.sha256(f"{name}\0{sys.version}\0".encode())
    for dist in _CACHE_PACKAGES:
        try:
            h.update(f"{dist}={metadata.version(dist)}\0".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{dist}=none\0".encode())
    for path in sorted(folder.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:24]


def cached_arrays(folder: str | Path, name: str, compute) -> dict:
    """`compute()` (a dict of plain numeric arrays), kept in the kit's .kit/cache under a hash of
    the assignment folder's code, Python's version and numpy's and torch's: a worker that finds
    it pays neither the computation nor its imports (torch: a second of every engine start).
    The cache is on the trusted side only (the sandbox never sees the kit's folder); a file that
    cannot be read is computed again, and one that cannot be written is simply not kept."""
    import io
    import zipfile

    import numpy as np

    from .safe_files import atomic_write
    folder = Path(folder).resolve()
    path = CACHE_DIR / f"{package_name(folder)}-{name}-{_cache_digest(folder, name)}.npz"
    try:
        with np.load(path, allow_pickle=False) as stored:
            found = {key: stored[key] for key in stored.files}
        # a member that is not a plain numeric array (np.load hands back raw bytes for one
        # without the .npy header) makes the whole file unreadable: computed again
        if all(isinstance(v, np.ndarray) and v.dtype.kind in "biuf" for v in found.values()):
            return found
    except (OSError, ValueError, EOFError, MemoryError, zipfile.BadZipFile):
        pass
    arrays = compute()
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    try:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        atomic_write(path, buf.getvalue())
        # what older versions of the code kept under this name is never read again
        for old in CACHE_DIR.glob(f"{package_name(folder)}-{name}-*.npz"):
            if old != path:
                old.unlink(missing_ok=True)
    except OSError:
        pass
    return arrays
