"""Runs the probes and hidden checks of one part in this process, no sandbox: fast feedback tests."""
from __future__ import annotations

import math

import torch
from torch import nn

from autograder import assignment, rubric
from autograder.feedback import Mistake
from autograder.sandbox import wire
from autograder.sandbox.inside import _error_info, _record_outputs
from autograder.suite import PartRun, Student, parse_case

FOLDER = rubric.load("gradient_backward").folder
cases = assignment.load(FOLDER, "cases")
rules = assignment.load(FOLDER, "verdicts")
probes = assignment.load(FOLDER, "probes")
reference = assignment.load(FOLDER, "reference")

_ORACLES = {}
exec(compile((rubric.load("gradient_backward").folder / "oracles.py").read_text(), "<oracles>", "exec"),
     _ORACLES)  # noqa: S102 - the assignment's trusted reference steps


def _ask(name, *tensors):
    """What the sandbox's supervisor answers part 4's reference steps with."""
    return _ORACLES[name](*[t.detach().clone() for t in tensors])

# What the notebook's locked cells define before the student's cells run.
PRELUDE = '''
def lin(x, w, b):
    return x @ w + b


def relu(x):
    return x.clamp_min(0.)


def mse(out, targ):
    return (out.squeeze(-1) - targ).pow(2).mean()
'''


def namespace(*cells: str, stand_ins: dict | None = None) -> dict:
    """The globals after the prelude and the given cells, run in order."""
    ns = {"torch": torch, "nn": nn, "math": math, "__name__": "__main__"}
    exec(PRELUDE, ns)  # noqa: S102 - test code
    ns.update(stand_ins or {})
    for i, cell in enumerate(cells):
        exec(compile(cell, f"<cell {i}>", "exec"), ns)  # noqa: S102 - test code
    return ns


def run_case(ns: dict, case, probe=None):
    """One case's record as the trusted side reads it (through the real wire parsing)."""
    record, blobs = {"index": 0, "status": "ok"}, []
    probe = probe or getattr(probes, case.probe)
    probes.ask = _ask
    try:
        record.update(_record_outputs(probe(dict(ns), dict(reference.inputs(case))), blobs))
    except Exception as exc:  # noqa: BLE001
        record["status"], record["error"] = "error", _error_info(exc)
    finally:
        probes.ask = None
    payload = {"record": record, "files": {f"case_0__{i}.npy": b for i, b in enumerate(blobs)}}
    return parse_case(payload)[1]


def verdicts(part: str, *cells: str, stand_ins: dict | None = None,
             probe=None) -> dict[str, Mistake | None]:
    """case name -> the Mistake its hidden check raised, or None when it passed."""
    out = {}
    for case in cases.cases_for(part):
        if case.shape.get("n", 0) > probes.BIG_BATCH:
            continue  # the memory case: the sandbox's limits are what it tests
        result = run_case(namespace(*cells, stand_ins=stand_ins), case, probe)
        # The part's own cell, for the rules on code (part 7: no einsum in Lin.bwd).
        student = Student({case.id: result}, {part: PartRun(part=part, cell_status="ok",
                                                            source=cells[-1] if cells else "")})
        try:
            rules.check_case(student, case)
            out[case.name] = None
        except Mistake as exc:
            out[case.name] = exc
    return out


def ids(part: str, *cells: str, **kw) -> set[str]:
    """Every mistake id found in the part's cases (empty: full marks)."""
    return {i for m in verdicts(part, *cells, **kw).values() if m for i in m.id.split("+")}
