"""The autograd side of the references: PyTorch computes every case's expected outputs in float64 (imported only when the kit's cache of them is missing or stale)."""
from __future__ import annotations

import numpy as np
import torch

from .oracles import grad_along


def _leaves(inputs, keys):
    return [torch.from_numpy(np.array(inputs[k], dtype=np.float64)).requires_grad_(True)
            for k in keys]


def _f64(inputs, key):
    return torch.from_numpy(np.array(inputs[key], dtype=np.float64))


def _np(t) -> np.ndarray:
    return t.detach().numpy().copy()


def _vjp(out, leaves, grad_out=None):
    grads = torch.autograd.grad(out, leaves) if grad_out is None else grad_along(out, leaves, grad_out)
    return [_np(g) for g in grads]


def _mse(out, targ):
    return (out.squeeze(-1) - targ).pow(2).mean()


def _mse_ref(inputs):
    inp, = _leaves(inputs, ["inp"])
    loss = _mse(inp, _f64(inputs, "targ"))
    g, = _vjp(loss, [inp])
    return {"inp.g": g, "loss": _np(loss)}


def _relu_ref(inputs):
    inp, = _leaves(inputs, ["inp"])
    out = inp.clamp_min(0.)
    g, = _vjp(out, [inp], _f64(inputs, "out_g"))
    return {"inp.g": g, "out": _np(out)}


def _lin_ref(inputs):
    inp, w, b = _leaves(inputs, ["inp", "w", "b"])
    out = inp @ w + b
    gi, gw, gb = _vjp(out, [inp, w, b], _f64(inputs, "out_g"))
    return {"inp.g": gi, "w.g": gw, "b.g": gb, "out": _np(out)}


def _net_ref(inputs):
    x, w1, b1, w2, b2 = _leaves(inputs, ["x", "w1", "b1", "w2", "b2"])
    loss = _mse((x @ w1 + b1).clamp_min(0.) @ w2 + b2, _f64(inputs, "targ"))
    grads = _vjp(loss, [x, w1, b1, w2, b2])
    return {"loss": _np(loss), **dict(zip(["x.g", "w1.g", "b1.g", "w2.g", "b2.g"], grads))}


def _nn_ref(inputs):
    """nn.Linear keeps weights as (out, in): the grads are those of the transposed weights."""
    ref = _net_ref(inputs)
    return {"loss": ref["loss"], "w1.grad": ref["w1.g"].T.copy(), "b1.grad": ref["b1.g"],
            "w2.grad": ref["w2.g"].T.copy(), "b2.grad": ref["b2.g"]}


def _module_base_ref(inputs):
    return {"returned": inputs["a"].astype(np.float64) * 2.0 + inputs["b"]}


_BY_PROBE = {
    "mse_grad": _mse_ref, "class_mse": _mse_ref, "module_mse": _mse_ref,
    "relu_grad": _relu_ref, "class_relu": _relu_ref, "module_relu": _relu_ref,
    "lin_grad": _lin_ref, "class_lin": _lin_ref, "module_lin": _lin_ref, "lin_bwd": _lin_ref,
    "forward_and_backward": _net_ref, "class_model": _net_ref, "module_model": _net_ref,
    "nn_model": _nn_ref, "module_base": _module_base_ref,
}


def compute(probe: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """On one thread: a product split over threads is summed in an order that depends on how
    many there are, so its last bits would depend on the machine (and the cached references
    on which process made them). One thread gives the same bits everywhere."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.enable_grad():
            return _BY_PROBE[probe](inputs)
    finally:
        torch.set_num_threads(threads)
