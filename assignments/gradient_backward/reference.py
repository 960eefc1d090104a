"""Every case's inputs and expected outputs (PyTorch autograd in float64, autograd_reference.py), kept in the kit's cache so that a warm worker neither draws the inputs again nor imports torch on the trusted side."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from autograder.assignment import cached_arrays

from .cases import Case, all_cases

_SEP = "|"   # between a case's id and an output's name in the cache's keys


@lru_cache(maxsize=None)
def inputs(case: Case) -> dict[str, np.ndarray]:
    """The case's inputs, made once (the memory case's are 6 MB: drawing every case's took
    0.3-0.6 s of each engine's start, reading them from the cache takes a few milliseconds)."""
    return _kept("inputs", case)


def expected(case: Case) -> dict[str, np.ndarray]:
    """Expected outputs of the case's probe, float64, keyed like the probe's outputs."""
    return _kept("expected", case)


def _computed(case: Case) -> dict[str, np.ndarray]:
    from .autograd_reference import compute   # torch, only when the cache cannot serve
    from .probes import BIG_BATCH, SHIP_ROWS
    ref = compute(case.probe, inputs(case))
    if case.shape.get("n", 0) > BIG_BATCH:
        ref = {k: v[:SHIP_ROWS] if k in ("inp.g", "out") else v for k, v in ref.items()}
    return ref


# what each cache file holds, per case
_MAKE = {"inputs": lambda case: case.make_inputs(), "expected": _computed}


def _kept(name: str, case: Case) -> dict[str, np.ndarray]:
    """The case's arrays from the cache file `name`, read-only; a case made outside the
    assignment's list (a test's own) is made on the spot."""
    found = _by_case(name).get(case.id)
    if found is None:
        found = _MAKE[name](case)
        for value in found.values():
            value.setflags(write=False)
    return found


@lru_cache(maxsize=None)
def _by_case(name: str) -> dict[str, dict[str, np.ndarray]]:
    """One cache file (`cached_arrays`: every case's arrays, keyed `<case id>|<name>`) split
    back into each case's arrays."""
    def every_case():
        return {f"{case.id}{_SEP}{key}": value for case in all_cases()
                for key, value in _MAKE[name](case).items()}
    by_case: dict[str, dict[str, np.ndarray]] = {}
    for key, value in cached_arrays(Path(__file__).parent, name, every_case).items():
        case_id, _, part = key.rpartition(_SEP)
        value.setflags(write=False)
        by_case.setdefault(case_id, {})[part] = value
    return by_case
