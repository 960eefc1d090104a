"""Diagnosis: names a wrong answer after an assignment's mistake catalogue (trusted side only)."""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np

from . import assignment
from . import rubric as rubric_mod
from .feedback import Mistake

FALLBACK_ID = "wrong_values"        # same shape, no known transformation
SHAPE_FALLBACK_ID = "wrong_shape"   # another shape, no known transformation


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
    """A function from a module of the assignment, loaded by path under its assignment's package."""
    return getattr(assignment.load(path.parent, path.stem), function)


def catalogue_data(folder: Path) -> dict:
    """An assignment folder's catalogue.toml as TOML data (FileNotFoundError when it has none):
    the one place that reads the file."""
    return tomllib.loads((Path(folder) / "catalogue.toml").read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def load(assignment: str = "gradient_backward") -> Catalogue:
    """The assignment's catalogue.toml, with its generic `explain` function if it names one."""
    data = catalogue_data(rubric_mod.load(assignment).folder)
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
    out = {"name": name, "got_shape": shape(got), "expected_shape": shape(expected),
           "got_values": values(got), "expected_values": values(expected)}
    g, e = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    c = _factor(g, e) if g.shape == e.shape else None
    if c is not None:
        out["factor"] = f"{c:.4g}"
    return {**out, **extra}


# --- comparing ----------------------------------------------------------------------------

def close(got, expected, rtol: float, atol: float) -> bool:
    """Same shape, and every element within rtol of itself plus atol of the array's scale."""
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        return False
    scale = float(np.abs(expected).max()) if expected.size else 0.0
    return bool(np.all(np.abs(got - expected) <= rtol * np.abs(expected) + atol * max(scale, 1e-30)))


def is_param(name: str) -> bool:
    """Is `name` a weight's or bias's gradient (a sum over the batch), not an activation's?"""
    token = re.split(r"[^A-Za-z0-9_]+", re.sub(r"\.g(rad)?$", "", name.strip()))[-1].lower()
    return bool(re.fullmatch(r"(w|b|weight|bias)\d*", token))


def _factor(got: np.ndarray, expected: np.ndarray) -> float | None:
    """The least-squares c in got ~ c * expected (same shape); callers check that it fits."""
    norm = float((expected * expected).sum())
    if norm == 0.0:
        return None
    return float((got * expected).sum()) / norm


def _named_factor(c: float, n: int | None, param: bool) -> list[str]:
    """Catalogue ids for got == c * expected: a known factor, plus the sign when it is flipped."""
    sign = ["sign_flipped"] if c < 0 else []
    size = abs(c)

    def near(a: float, b: float) -> bool:
        return abs(a - b) <= 1e-3 * b

    if near(size, 1.0):
        return sign
    known = [(2.0, "factor_2"), (0.5, "factor_half")]
    if n and n > 2:
        known += [(float(n), "factor_n"), (1.0 / n, "mean_not_sum" if param else "factor_1_over_n")]
    for value, mistake_id in known:
        if near(size, value):
            return [mistake_id, *sign]
    return ["constant_factor"]


def _same_shape(got, expected, n, param, rtol, atol) -> list[str]:
    """Ids for a same-shaped wrong array: a constant factor, a transpose, all zeros, else none."""
    if not got.any() and expected.any():
        return ["all_zero"]
    c = _factor(got, expected)
    if c is not None and close(got, c * expected, rtol, atol):
        return _named_factor(c, n, param)
    if got.ndim == 2 and got.shape[0] == got.shape[1] > 1 and close(got.T, expected, rtol, atol):
        return ["transposed"]
    return []


def _other_shape(got, expected, n, param, rtol, atol) -> list[str]:
    """Ids for an array of the wrong shape, each only when its shape says so."""
    e, g = expected.shape, got.shape
    if len(e) == 2 and g == e[::-1]:
        back = got.T
        inner = [] if close(back, expected, rtol, atol) else _same_shape(back, expected, n, param, rtol, atol)
        return ["transposed", *inner] if close(back, expected, rtol, atol) or inner else []
    if (len(e) == 2 and e[1] == 1 and g == e[:1]) or (len(e) == 1 and g == (e[0], 1)):
        return ["shape_n_not_n1", *_same_shape(got.reshape(e), expected, n, param, rtol, atol)]
    if len(g) == 2 and g[0] == g[1] == e[0] > 1 and expected.size == e[0]:
        return ["broadcast_nn"]
    if len(g) == len(e) + 1 and g[1:] == e and (n is None or g[0] == n):
        return ["batch_not_summed"]
    if len(g) == 0 and len(e) >= 1:
        return ["summed_all_axes"]
    if n and len(g) == 1 and g[0] == n and len(e) <= 1 and (len(e) == 0 or e[0] != n):
        return ["summed_wrong_axis"]
    return []


def explain(name: str, got, expected, *, candidates: Iterable[tuple[str, np.ndarray]] = (),
            n: int | None = None, rtol: float = 1e-3, atol: float = 1e-4) -> list[str]:
    """Every catalogue id that explains how `got` differs from `expected`, most specific first.

    Part-specific wrong answers (`candidates`) come first; then transformations of the
    reference: a factor (2, 1/2, n, 1/n, -1, any other constant), a transpose, a missing or
    wrong-axis reduction, an (n, n) broadcast, a lost unit axis, all zeros. Nothing matched:
    wrong_values when the shapes agree, wrong_shape when they do not (never a false "right shape")."""
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    for mistake_id, wrong in candidates:
        if close(got, wrong, rtol, atol):
            return [mistake_id]
    param = is_param(name)
    if got.shape == expected.shape:
        return _same_shape(got, expected, n, param, rtol, atol) or [FALLBACK_ID]
    return _other_shape(got, expected, n, param, rtol, atol) or [SHAPE_FALLBACK_ID]


def match(catalogue: Catalogue, name: str, got, expected, *,
          candidates: Iterable[tuple[str, np.ndarray]] = (), n: int | None = None,
          rtol: float = 1e-3, atol: float = 1e-4) -> str:
    """The one catalogue id that best explains `got` (the first of `explain`'s)."""
    ids = [i for i in explain(name, got, expected, candidates=candidates, n=n, rtol=rtol, atol=atol)
           if i in catalogue]
    return ids[0] if ids else (FALLBACK_ID if np.shape(got) == np.shape(expected) else SHAPE_FALLBACK_ID)


def missing(name: str, expected, returned: Mapping[str, np.ndarray], *,
            rtol: float = 1e-3, atol: float = 1e-4) -> str:
    """Why an output is missing: computed but only returned, or never computed."""
    if any(close(r, expected, rtol, atol) for r in returned.values()):
        return "g_only_returned"
    return "g_missing"


# --- several mistakes at once -------------------------------------------------------------

SEPARATOR = "+"  # joins the ids of one failed check that found several mistakes


def combine(found: list[Mistake], prefix: str = "") -> Mistake:
    """One Mistake reporting each of several (distinct ids, in order), one line per mistake."""
    seen: dict[str, Mistake] = {}
    for m in found:
        for mid in m.id.split(SEPARATOR):
            seen.setdefault(mid, m)
    unique = list(dict.fromkeys(seen.values()))
    if len(unique) == 1:
        return unique[0]
    lines = [unique[0].message] + [m.message.removeprefix(prefix) for m in unique[1:]]
    return Mistake(SEPARATOR.join(seen), "\n- ".join(lines))
