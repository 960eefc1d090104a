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
    reference = load(folder, "reference") if (Path(folder) / "reference.py").is_file() else None
    return cases, getattr(reference, "inputs", lambda case: case.make_inputs())
