"""Autograd's answers for the tiny assignment's cases (trusted side)."""
from __future__ import annotations

import numpy as np
import torch

from .cases import Case


def expected(case: Case) -> np.ndarray:
    inputs = {k: torch.from_numpy(v.astype(np.float64)) for k, v in case.make_inputs().items()}
    inp = inputs["inp"].requires_grad_(True)
    if case.probe == "mse_grad":
        loss = (inp - inputs["targ"]).pow(2).mean()
        (grad,) = torch.autograd.grad(loss, [inp])
    else:
        (grad,) = torch.autograd.grad(inp * inp, [inp], grad_outputs=inputs["out_g"])
    return grad.numpy()
