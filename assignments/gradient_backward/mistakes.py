"""Part-specific wrong answers and failure recognisers of gradient_backward (trusted side)."""
from __future__ import annotations

import numpy as np

from cases import Case
from probes import ORDER_TAG

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
    "module_base": "Module's __call__ and backward() on a test subclass",
    "module_relu": "Relu() called on inp, then .backward()",
    "module_lin": "Lin(w, b) called on inp, then .backward()",
    "module_mse": "Mse() called on (inp, targ), then .backward()",
    "module_model": "Lin, Relu, Lin and Mse chained forward, then backward in reverse",
    "lin_bwd": "Lin(w, b).forward(inp), then .bwd(out, inp)",
    "nn_model": "Model(n_in, nh, 1) called on (x, targ), then loss.backward()",
}

_RELU_PROBES = {"relu_grad", "class_relu", "module_relu"}
_OOM_TEXT = ("can't allocate memory", "cannot allocate memory", "out of memory",
             "not enough memory", "memoryerror")


def _relu_candidates(inputs) -> list[tuple[str, np.ndarray]]:
    inp = inputs["inp"].astype(np.float64)
    out_g = inputs["out_g"].astype(np.float64)
    return [
        ("relu_no_mask", out_g),
        ("relu_mask_on_values", np.maximum(inp, 0.) * out_g),
        # The raw input as "mask" is the same mistake: values where a 0/1 mask belongs.
        ("relu_mask_on_values", inp * out_g),
        ("relu_mask_inverted", (inp < 0) * out_g),
    ]


def _net_output(inputs) -> np.ndarray:
    f = {k: inputs[k].astype(np.float64) for k in ("x", "w1", "b1", "w2", "b2")}
    return np.maximum(f["x"] @ f["w1"] + f["b1"], 0.) @ f["w2"] + f["b2"]


def _loss_candidates(inputs) -> list[tuple[str, np.ndarray]]:
    out = inputs["inp"].astype(np.float64) if "inp" in inputs else _net_output(inputs)
    targ = inputs["targ"].astype(np.float64)
    # (n, 1) minus (n,) broadcasts to (n, n): the loss then averages every pair.
    return [("broadcast_nn", np.asarray(((out - targ) ** 2).mean()))]


def candidates(case: Case, key: str, inputs: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    """Wrong answers specific to this case's output `key`, as (catalogue id, array) pairs."""
    if case.probe in _RELU_PROBES and key == "inp.g":
        return _relu_candidates(inputs)
    if key == "loss":
        return _loss_candidates(inputs)
    return []


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
