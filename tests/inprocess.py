"""Runs the probes and hidden checks of one part in this process, no sandbox: fast feedback tests."""
from __future__ import annotations

import base64
import math

import torch
from torch import nn

from autograder import rubric
from autograder.feedback import Mistake
from autograder.sandbox.inside import _error_info, _record_outputs
from autograder.suite import PartRun, Student, ensure_importable, parse_case

ensure_importable(rubric.load("gradient_backward").folder)
import cases  # noqa: E402
import checks  # noqa: E402
import probes  # noqa: E402
import reference  # noqa: E402

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
    record, files = {"index": 0, "status": "ok"}, {}
    probe = probe or getattr(probes, case.probe)
    try:
        record.update(_record_outputs(probe(dict(ns), dict(reference.inputs(case))), "case_0", files))
    except Exception as exc:  # noqa: BLE001
        record["status"], record["error"] = "error", _error_info(exc)
    payload = {"record": record, "files": {k: base64.b64encode(v).decode() for k, v in files.items()}}
    return parse_case(payload)[1]


def verdicts(part: str, *cells: str, stand_ins: dict | None = None,
             probe=None) -> dict[str, Mistake | None]:
    """case name -> the Mistake its hidden check raised, or None when it passed."""
    out = {}
    for case in cases.cases_for(part):
        if case.shape.get("n", 0) > probes.BIG_BATCH:
            continue  # the memory case: the sandbox's limits are what it tests
        result = run_case(namespace(*cells, stand_ins=stand_ins), case, probe)
        student = Student({case.id: result}, {part: PartRun(part=part, cell_status="ok")})
        try:
            checks.check_case(student, case)
            out[case.name] = None
        except Mistake as exc:
            out[case.name] = exc
    return out


def ids(part: str, *cells: str, **kw) -> set[str]:
    """Every mistake id found in the part's cases (empty: full marks)."""
    return {i for m in verdicts(part, *cells, **kw).values() if m for i in m.id.split("+")}


def recording_forward_and_backward(ns, inputs):
    """Part 4's probe as issue 9 will ship it, played here: the reference building blocks,
    each backward call recorded as [function, [labels of its arguments]] before it runs, and
    an error of the student's code returned as values so the record reaches the trusted side."""
    import json
    fab = ns["forward_and_backward"]
    t = probes._net(inputs)
    blocks, labels, keep, calls = probes._oracles(ns), {}, [], []
    for k in ("x", "targ", "w1", "b1", "w2", "b2"):
        labels[id(t[k])] = k

    def name(value, label):
        keep.append(value)  # ids stay unique while the record is made
        labels[id(value)] = label
        return value

    def lin(x, w, b):
        made = blocks["lin"](x, w, b)
        return name(made, {"w1": "l1", "w2": "out"}.get(labels.get(id(w)), "other"))

    def relu(x):
        return name(blocks["relu"](x), "l2" if labels.get(id(x)) == "l1" else "other")

    def recorded(fn):
        def step(*args):
            calls.append([fn, [labels.get(id(a), "other") for a in args]])
            return blocks[fn](*args)
        return step

    ns.update({"lin": lin, "relu": relu, "mse": blocks["mse"],
               **{fn: recorded(fn) for fn in ("mse_grad", "relu_grad", "lin_grad")},
               **{k: t[k] for k in ("w1", "b1", "w2", "b2")}})
    getattr(fab, "__globals__", ns).update({k: ns[k] for k in (
        "lin", "relu", "mse", "mse_grad", "relu_grad", "lin_grad", "w1", "b1", "w2", "b2")})
    res = {}
    probes._attempt(res, lambda: fab(t["x"], t["targ"]))
    return {**probes._net_outputs(t), **res, "calls": json.dumps(calls)}
