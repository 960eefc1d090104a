"""The probes follow the notebook's protocol: the corpus run in this process, without a sandbox,
so that every correct style passes and every wrong one is named in seconds (the engine run of
the same corpus, in test_corpus.py, adds the sandbox, the autograd scan and the tripwire)."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from autograder import rubric
from autograder.synth import read_variant
from inprocess import probes, verdicts

CORPUS = Path(__file__).parent / "corpus"
RUBRIC = rubric.load("gradient_backward")
# Mistakes only the sandbox sees (its tripwire, its limits) or that would end this process.
NEEDS_SANDBOX = {"autograd_used", "crash", "timeout", "outer_product_oom", "name_missing"}


def _solutions() -> dict[str, str]:
    nb = nbformat.read(str(RUBRIC.source), as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("solution")}


SOLUTIONS = _solutions()
PARTS = RUBRIC.part_names


def _runs():
    """(variant, part) for each part a variant changes (part 7 too when part 6 changed)."""
    for path in sorted(CORPUS.glob("*.py")):
        v = read_variant(path)
        if v.pending or any(ids & NEEDS_SANDBOX for ids in v.mistakes.values()):
            continue
        touched = set(v.overrides) | ({"lin_without_einsum"} if "module_forward" in v.overrides else set())
        for part in PARTS:
            if part in touched:
                yield pytest.param(v, part, id=f"{v.name}-{part}")


def _cells(variant, part) -> list[str]:
    """The solution cells up to `part`, as the notebook runs them (the variant's where it has one)."""
    return [variant.overrides.get(p, SOLUTIONS[p]) for p in PARTS[:PARTS.index(part) + 1]]


@pytest.mark.parametrize("variant,part", list(_runs()))
def test_variant_gets_full_marks_or_its_mistake(variant, part):
    """Does a correct style pass every case, and a wrong one get (at least) its declared mistakes?"""
    # `n` is the notebook's training-set size, which a wrong mse_grad may read.
    found = verdicts(part, *_cells(variant, part),
                     stand_ins={"n": 1500, "Module": probes.ReferenceModule})
    ids = {i for m in found.values() if m for i in m.id.split("+")}
    want = variant.mistakes.get(part, set())
    if variant.expected_score(part) == "full":
        failed = {name: m.message for name, m in found.items() if m}
        assert not failed, failed
    else:
        assert want and want <= ids, {name: m.message for name, m in found.items() if m}


FWD_BWD = [pytest.param(v, id=v.name) for v in map(read_variant, sorted(CORPUS.glob("*.py")))
           if "forward_and_backward" in v.overrides
           and not any(ids & NEEDS_SANDBOX for ids in v.mistakes.values())]


@pytest.mark.parametrize("variant", FWD_BWD)
def test_part4_call_records_name_each_wiring_mistake(variant):
    """With part 4's calls recorded by its probe, is every part-4 variant right or told its
    wiring mistake in its own terms?"""
    part = "forward_and_backward"
    found = verdicts(part, *_cells(variant, part))
    ids = {i for m in found.values() if m for i in m.id.split("+")}
    messages = {name: m.message for name, m in found.items() if m}
    if variant.expected_score(part) == "full":
        assert not messages, messages
    else:
        assert variant.mistakes[part] <= ids, messages
        assert not any("no attribute" in m for m in messages.values()), messages
