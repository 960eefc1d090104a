"""Probes of the tiny assignment: run inside the sandbox (standard library, numpy and torch only)."""
import numpy as np
import torch


def _t(inputs, key):
    return torch.from_numpy(np.array(inputs[key]))


def mse_grad(ns, inputs):
    inp, targ = _t(inputs, "inp"), _t(inputs, "targ")
    ns["mse_grad"](inp, targ)
    return {"inp.g": getattr(inp, "g", None)}


def square_grad(ns, inputs):
    inp = _t(inputs, "inp")
    out = inp * inp
    out.g = _t(inputs, "out_g")
    ns["square_grad"](inp, out)
    return {"inp.g": getattr(inp, "g", None)}
