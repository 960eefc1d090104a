"""Diagnosis: names a wrong answer after an assignment's mistake catalogue (trusted side only)."""
from __future__ import annotations

import importlib.util
import sys
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np

from . import rubric as rubric_mod
from .feedback import Mistake

FALLBACK_ID = "wrong_values"


@dataclass(frozen=True)
class Entry:
    """One catalogued mistake: the parts it can occur in, a title and a message template."""
    id: str
    parts: tuple[str, ...]
    title: str
    message: str
    per_case: bool = True  # False: the message reads the same for every case (no case prefix)


class _Blank(dict):
    """Template fields that a caller did not supply read as '?' instead of failing."""

    def __missing__(self, key):
        return "?"


@dataclass(frozen=True)
class Catalogue:
    entries: Mapping[str, Entry]
    explain: Callable | None  # generic explain(name, got, expected, *, n=None) -> (id|None, msg)

    def __contains__(self, mistake_id: str) -> bool:
        return mistake_id in self.entries

    def message(self, mistake_id: str, **fields) -> str:
        return self.entries[mistake_id].message.strip().format_map(_Blank(fields))

    def mistake(self, mistake_id: str, prefix: str = "", **fields) -> Mistake:
        """The assertion a hidden test raises: catalogue id plus its filled-in message.

        `prefix` (naming the case) is left out for messages that read the same for every
        case, so that feedback listing distinct messages shows them once."""
        prefix = prefix if self.entries[mistake_id].per_case else ""
        return Mistake(mistake_id, prefix + self.message(mistake_id, **fields))


def _load_function(path: Path, function: str) -> Callable:
    """A function from a file loaded by path, under a private module name."""
    name = f"_catalogue_{path.stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return getattr(sys.modules[name], function)


@lru_cache(maxsize=None)
def load(assignment: str = "gradient_backward") -> Catalogue:
    """The assignment's catalogue.toml, with its generic `explain` function if it names one."""
    folder = rubric_mod.load(assignment).folder
    data = tomllib.loads((folder / "catalogue.toml").read_text())
    entries = {mid: Entry(id=mid, parts=tuple(e.get("parts", ())), title=e["title"],
                          message=e["message"], per_case=bool(e.get("per_case", True)))
               for mid, e in data["mistakes"].items()}
    explain = None
    if "explain" in data:
        path = rubric_mod.KIT_ROOT / data["explain"]["module"]
        explain = _load_function(path, data["explain"].get("function", "explain"))
    return Catalogue(entries=entries, explain=explain)


# --- formatting ---------------------------------------------------------------------------

def values(a, k: int = 4) -> str:
    """A few leading values of an array, for a message: '[0.0312, -0.0441, ...]'."""
    flat = np.asarray(a, dtype=np.float64).ravel()
    shown = ", ".join(f"{v:.4g}" for v in flat[:k])
    return f"[{shown}{', ...' if flat.size > k else ''}]"


def shape(a) -> str:
    return str(tuple(np.shape(a)))


def fields(name: str, got, expected, **extra) -> dict:
    """The template fields every comparison message can use."""
    return {"name": name, "got_shape": shape(got), "expected_shape": shape(expected),
            "got_values": values(got), "expected_values": values(expected), **extra}


# --- comparing ----------------------------------------------------------------------------

def close(got, expected, rtol: float, atol: float) -> bool:
    """Same shape, and every element within rtol of itself plus atol of the array's scale."""
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        return False
    scale = float(np.abs(expected).max()) if expected.size else 0.0
    return bool(np.all(np.abs(got - expected) <= rtol * np.abs(expected) + atol * max(scale, 1e-30)))


def _explain(catalogue: Catalogue, name, got, expected, n) -> str | None:
    if catalogue.explain is None:
        return None
    import torch  # the generic explainer works on tensors, as in the student's notebook
    try:
        mid, _ = catalogue.explain(name, torch.from_numpy(np.array(got, dtype=np.float64)),
                                   torch.from_numpy(np.array(expected, dtype=np.float64)), n=n)
    except Exception:  # noqa: BLE001 - an odd shape must cost the hint, never the verdict
        return None
    return mid if mid in catalogue else None


def match(catalogue: Catalogue, name: str, got, expected, *,
          candidates: Iterable[tuple[str, np.ndarray]] = (), n: int | None = None,
          rtol: float = 1e-3, atol: float = 1e-4) -> str:
    """The catalogue id that explains `got`: a candidate it equals, else the generic explainer."""
    for mistake_id, wrong in candidates:
        if close(got, wrong, rtol, atol):
            return mistake_id
    return _explain(catalogue, name, got, expected, n) or FALLBACK_ID


def missing(name: str, expected, returned: Mapping[str, np.ndarray], *,
            rtol: float = 1e-3, atol: float = 1e-4) -> str:
    """Why an output is missing: computed but only returned, or never computed."""
    if any(close(r, expected, rtol, atol) for r in returned.values()):
        return "g_only_returned"
    return "g_missing"
