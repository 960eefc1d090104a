"""Part-specific wrong answers and failure recognisers of gradient_backward (trusted side)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from autograder.assignment import constant

from .cases import Case

# The tag the probes put on an out-of-order backward call (read from probes.py's text: the
# probes import torch, which the trusted side never needs).
ORDER_TAG = constant(Path(__file__).parent, "probes", "ORDER_TAG")

# What each probe does with the student's code, as the feedback names it.
CALLS = {
    "mse_grad": "mse_grad(inp, targ)",
    "relu_grad": "relu_grad(inp, out)",
    "lin_grad": "lin_grad(inp, out, w, b)",
    "forward_and_backward": "forward_and_backward(inp, targ)",
    "class_relu": "Relu() called on inp, then .backward()",
    "class_lin": "Lin(w, b) called on inp, then .backward()",
    "class_mse": "Mse() called on (inp, targ), then .backward()",
    "class_model": "Model(w1, b1, w2, b2) called on (x, targ), then .backward()",
    "module_base": "A test layer TestLayer(Module) with forward(a, b) = 2*a + b, called on (a, b), "
                   "then .backward()",
    "module_relu": "Relu() called on inp, then .backward()",
    "module_lin": "Lin(w, b) called on inp, then .backward()",
    "module_mse": "Mse() called on (inp, targ), then .backward()",
    "module_model": "Lin, Relu, Lin and Mse chained forward, then backward in reverse",
    "lin_bwd": "Lin(w, b) called on inp, then .backward() (with the notebook's Module protocol)",
    "nn_model": "Model(n_in, nh, 1) called on (x, targ), then loss.backward()",
}

_RELU_PROBES = {"relu_grad", "class_relu", "module_relu"}
_LIN_PROBES = {"lin_grad", "class_lin", "module_lin", "lin_bwd"}
# Probes whose gradients carry the loss's 1/n (a global n there scales every gradient).
_LOSS_PROBES = {"mse_grad", "class_mse", "module_mse", "forward_and_backward", "class_model",
                "module_model", "nn_model"}
FORWARD_KEYS = {"out", "loss", "returned"}
_OOM_TEXT = ("can't allocate memory", "cannot allocate memory", "out of memory",
             "not enough memory", "memoryerror")


# Sizes a student's code can read from the notebook's globals instead of the batch's own:
# the training set's n (`n, m = x_train.shape`), for the bundled digits and for MNIST.
GLOBAL_SIZES = (1500, 50000)


def _f64(inputs, key) -> np.ndarray:
    return inputs[key].astype(np.float64)


def _relu_candidates(inputs) -> list[tuple[str, np.ndarray]]:
    inp, out_g = _f64(inputs, "inp"), _f64(inputs, "out_g")
    return [
        ("relu_no_mask", out_g),
        ("relu_mask_on_values", np.maximum(inp, 0.) * out_g),
        # The raw input as "mask" is the same mistake: values where a 0/1 mask belongs.
        ("relu_mask_on_values", inp * out_g),
        ("relu_mask_inverted", (inp < 0) * out_g),
        ("upstream_missing", (inp > 0).astype(np.float64)),
    ]


def _lin_candidates(key, inputs) -> list[tuple[str, np.ndarray]]:
    """The local derivatives of out = inp @ w + b without out.g (as if out.g were all ones)."""
    inp, w, out_g = _f64(inputs, "inp"), _f64(inputs, "w"), _f64(inputs, "out_g")
    ones = np.ones_like(out_g)
    local = {"inp.g": ones @ w.T, "w.g": inp.T @ ones, "b.g": ones.sum(0)}
    found = [("upstream_missing", local[key])] if key in local else []
    if key == "b.g":
        found.append(("summed_wrong_axis", out_g.sum(1)))
    return found


def _net_output(inputs, shift: float = 0.0) -> np.ndarray:
    f = {k: _f64(inputs, k) for k in ("x", "w1", "b1", "w2", "b2")}
    return (np.maximum(f["x"] @ f["w1"] + f["b1"], 0.) - shift) @ f["w2"] + f["b2"]


def _mse(out, targ) -> np.ndarray:
    return np.asarray(((out[:, 0] - targ) ** 2).mean())


def _loss_candidates(inputs) -> list[tuple[str, np.ndarray]]:
    out = _f64(inputs, "inp") if "inp" in inputs else _net_output(inputs)
    targ = _f64(inputs, "targ")
    found = [("broadcast_nn", np.asarray(((out - targ) ** 2).mean()))]  # (n, 1) - (n,) is (n, n)
    if "x" in inputs:
        found.append(("relu_shifted", _mse(_net_output(inputs, 0.5), targ)))
    return found


def _global_n_candidates(expected, n) -> list[tuple[str, np.ndarray]]:
    """A gradient divided by the training set's n instead of the batch's (the 1/n of the mean)."""
    return [("global_n", expected * n / size) for size in GLOBAL_SIZES if n and size != n]


def candidates(case: Case, key: str, inputs: dict[str, np.ndarray],
               expected: np.ndarray | None = None) -> list[tuple[str, np.ndarray]]:
    """Wrong answers specific to this case's output `key`, as (catalogue id, array) pairs."""
    found: list[tuple[str, np.ndarray]] = []
    if case.probe in _RELU_PROBES and key == "inp.g":
        found += _relu_candidates(inputs)
    if case.probe in _RELU_PROBES and key == "out":
        found.append(("relu_shifted", np.maximum(_f64(inputs, "inp"), 0.) - 0.5))
    if case.probe in _LIN_PROBES:
        found += _lin_candidates(key, inputs)
    if key == "loss":
        found += _loss_candidates(inputs)
    if expected is not None and key not in FORWARD_KEYS and case.probe in _LOSS_PROBES:
        found += _global_n_candidates(expected, case.shape.get("n"))
    return found


def error_id(case: Case, status: str, err_type: str = "", message: str = "",
             memory: bool = False) -> str:
    """The catalogue id of a case that did not finish normally."""
    text = f"{err_type}: {message}".lower()
    memory_case = case.part == "lin_without_einsum" and case.shape.get("n", 0) > 1000
    # In the memory case, dying or stalling is how an (n, in, out) intermediate shows itself.
    if status in ("timeout", "crashed") and memory_case:
        return "outer_product_oom"
    if status == "timeout":
        return "timeout"
    if status == "crashed":
        return "crash"
    if status == "not_run":
        return "cell_failed"
    if ORDER_TAG.lower() in text:
        return "wrong_backward_order"
    if memory or err_type == "MemoryError" or any(t in text for t in _OOM_TEXT):
        return "outer_product_oom" if memory_case else "out_of_memory"
    if err_type == "NotImplementedError":
        return "not_implemented"
    if err_type == "NameError" and "is not defined" in text:
        return "name_missing"
    # The layers pass alone but the chain reads an output gradient that was never set.
    if case.probe == "class_model" and ("nonetype" in text or "attribute 'g'" in text):
        return "layers_not_reversed"
    if case.probe.startswith("module_") and err_type == "TypeError" and "positional argument" in text:
        return "module_args_not_kept"
    return "exception"


# --- what the probes recorded about the calls: plain data, read defensively ----------------

def _records(values: dict, key: str, limit: int = 64) -> list:
    """A JSON list the probe recorded, or [] when it is absent or not what a probe writes."""
    try:
        data = json.loads(values.get(key) or "[]")
    except (TypeError, ValueError):
        return []
    return data[:limit] if isinstance(data, list) else []


# Part 4. A record is [function, [label of each argument]]; labels name the tensors of the
# forward pass as the notebook does (x is the function's own `inp`), or "other".
_SHOWN = {"x": "inp"}
_STEPS = {  # the backward pass as the notebook writes it, keyed by the layer each step serves
    "loss": ("mse_grad", ("out", "targ")),
    "lin2": ("lin_grad", ("l2", "out", "w2", "b2")),
    "relu": ("relu_grad", ("l1", "l2")),
    "lin1": ("lin_grad", ("x", "l1", "w1", "b1")),
}
_ORDER = ["loss", "lin2", "relu", "lin1"]
_LAYER_NAME = {"loss": "the loss", "lin2": "the second linear layer", "relu": "the ReLU",
               "lin1": "the first linear layer"}
_ROLES = {"mse_grad": ("its input", "the targets"), "relu_grad": ("its input", "its output"),
          "lin_grad": ("its input", "its output", "its weights", "its bias")}
_GETS_G = {"mse_grad": (0,), "relu_grad": (0,), "lin_grad": (0, 2, 3)}
_READS_G = {"relu_grad": 1, "lin_grad": 1}  # the output whose .g the step reads


def _shown(label: str) -> str:
    return _SHOWN.get(label, label)


def _call_text(fn: str, labels) -> str:
    return f"{fn}({', '.join(_shown(a) for a in labels)})"


def _layer_of(fn: str, labels) -> str | None:
    """Which layer a recorded backward call serves, from its function and weights."""
    if fn == "mse_grad":
        return "loss"
    if fn == "relu_grad":
        return "relu"
    if fn == "lin_grad":
        # The layer whose step it resembles most (its tensors in their places).
        score = {layer: sum(a == b for a, b in zip(labels, _STEPS[layer][1]))
                 for layer in ("lin2", "lin1")}
        best = max(score, key=score.get)
        return best if score[best] and list(score.values()).count(score[best]) == 1 else None
    return None


def _clean_calls(values: dict) -> list[tuple[str, tuple[str, ...]]]:
    calls = []
    for item in _records(values, "calls"):
        if (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)
                and isinstance(item[1], list) and all(isinstance(a, str) for a in item[1])):
            calls.append((item[0][:40], tuple(a[:20] for a in item[1][:6])))
    return calls


def _wrong_tensors(fn: str, labels, layer: str) -> tuple[str, str] | None:
    """(mistake id, what went wrong) when a step got other tensors than its layer's."""
    want = _STEPS[layer][1]
    if tuple(labels) == want:
        return None
    if fn == "relu_grad" and labels[:1] == ("l2",):
        return "relu_args_swapped", f"relu_grad was called as {_call_text(fn, labels)}"
    diffs = [f"{_shown(got)} as {role} where {_shown(right)} belongs"
             for got, right, role in zip(labels, want, _ROLES[fn]) if got != right]
    if len(labels) != len(want):
        diffs.append(f"{len(labels)} arguments instead of {len(want)}")
    hint = " (l1 is the ReLU's input, l2 its output)" if {"l1", "l2"} & set(labels) else ""
    return "backward_wrong_tensors", (f"{_call_text(fn, labels)}, the step of "
                                      f"{_LAYER_NAME[layer]}, got {'; '.join(diffs)}{hint}")


def _order_problem(calls, complete: bool, miswired: set) -> str | None:
    """The first right step that ran before the step that sets the .g it reads. When the pass
    stopped at an error (`complete` false), the calls it never reached are unknown. A step
    whose source layer got the wrong tensors (`miswired`) is that mistake's consequence."""
    producer = {_STEPS[layer][1][0]: layer for layer in _ORDER}  # tensor -> layer setting its .g
    has_g: set[str] = set()
    for i, (fn, labels) in enumerate(calls):
        layer = _layer_of(fn, labels)
        if layer and labels == _STEPS[layer][1] and fn in _READS_G:
            read = labels[_READS_G[fn]]
            source = producer.get(read)
            later = any(_layer_of(f, a) == source for f, a in calls[i + 1:])
            if read not in has_g and source not in miswired and source and (later or not complete):
                step = _STEPS[source]
                return (f"{_call_text(fn, labels)} ran before {_call_text(*step)} set "
                        f"{_shown(read)}.g")
        has_g.update(labels[k] for k in _GETS_G.get(fn, ()) if k < len(labels))
    return None


def _missing_steps(calls) -> list[str]:
    served = {_layer_of(fn, labels) for fn, labels in calls}
    sets = {"lin2": "w2.g and b2.g", "lin1": "inp.g, w1.g and b1.g", "relu": "l1.g",
            "loss": "out.g"}
    return [f"{_call_text(*_STEPS[layer])} for {_LAYER_NAME[layer]}, so {sets[layer]} "
            f"{'is' if layer in ('relu', 'loss') else 'are'} never set"
            for layer in _ORDER if layer not in served]


def backward_wiring(values: dict, complete: bool = True) -> list[tuple[str, str]]:
    """Part 4: what the recorded calls of the backward pass did wrong, in the student's terms,
    as (catalogue id, text) pairs, one per id; [] when nothing was recorded or all is right.
    `complete`: the pass ran to its end (not stopped by an error after the last record)."""
    calls = _clean_calls(values)
    if not calls:
        return []
    found: dict[str, list[str]] = {}
    miswired = set()
    for fn, labels in calls:
        layer = _layer_of(fn, labels)
        problem = _wrong_tensors(fn, labels, layer) if layer else None
        if problem:
            found.setdefault(problem[0], []).append(problem[1])
            miswired.add(layer)
    order = _order_problem(calls, complete, miswired)
    if order:
        found.setdefault("wrong_backward_order", []).append(order)
    missing = _missing_steps(calls) if complete else []
    if missing:
        found.setdefault("backward_step_missing", []).append("; nor ".join(missing))
    return [(mid, "; ".join(dict.fromkeys(texts))) for mid, texts in found.items()]


# Part 5. The probe records each layer's backward() as [layer, whether its output had .g].
def layer_order(values: dict) -> list[tuple[str, str]]:
    """Part 5: a layer whose backward() ran before its output had a gradient."""
    calls = [c for c in _records(values, "calls") if isinstance(c, list) and len(c) == 2]
    early = next((str(label)[:40] for label, ready in calls if ready is False), None)
    if early is None:
        return []
    order = ", ".join(str(label)[:40] for label, _ in calls)
    return [("layers_not_reversed", f"{early}.backward() ran before its output had a .g "
                                    f"(backward() was called on: {order})")]


def reversed_in_place(values: dict) -> bool:
    """Part 5: did the first backward() leave the model's layer list in the opposite order?"""
    before, after = _records(values, "layers_before"), _records(values, "layers_after")
    return len(before) > 1 and before != after and after == before[::-1]


def bwd_got_tuple(values: dict) -> str | None:
    """Part 6: what bwd received after the output when it was a tuple, in words."""
    for args in _records(values, "bwd_args"):
        kind = str(args[1])[:40] if isinstance(args, list) and len(args) > 1 else ""
        if kind.startswith("tuple of "):
            return f"a tuple holding the {kind.removeprefix('tuple of ')} argument(s)"
    return None


def bwd_got_other_output(values: dict) -> bool:
    """Part 6: did bwd receive, as its output, something other than what the call returned?"""
    return any(isinstance(args, list) and args and args[0] != "returned"
               for args in _records(values, "bwd_args"))
