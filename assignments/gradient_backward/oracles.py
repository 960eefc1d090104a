"""Reference steps for part 4, computed by the sandbox's supervisor with autograd, out of student reach (stdlib, numpy and torch only).

Part 4's probe gives the student's `forward_and_backward` stand-ins for `mse_grad`,
`relu_grad` and `lin_grad` that send their tensors here and get the gradients back: so one
mistake in parts 1-3 costs points there only, and no student process ever holds an oracle.
"""
import torch


def grad_along(out, leaves, grad_out, **kw):
    """`torch.autograd.grad(out, leaves, grad_outputs=grad_out)`, bit for bit, taken as the
    gradient of the scalar `(out * grad_out).sum()`: autograd imports sympy (about half a
    second, once per process) to check a tensor `grad_outputs`, and never for a scalar."""
    if grad_out.shape != out.shape:
        raise RuntimeError(f"Mismatch in shape: grad_output[0] has a shape of {grad_out.shape} "
                           f"and output[0] has a shape of {out.shape}.")
    return torch.autograd.grad((out * grad_out.to(out.dtype)).sum(), leaves, **kw)


def _vjp(f, inputs, grad_out):
    with torch.enable_grad():
        leaves = [x.detach().clone().requires_grad_(True) for x in inputs]
        out = f(*leaves)
        grads = grad_along(out, leaves, grad_out, allow_unused=True)
    return [g if g is not None else torch.zeros_like(x) for g, x in zip(grads, inputs)]


def mse_grad(inp, targ):
    return _vjp(lambda x: (x.squeeze(-1) - targ).pow(2).mean(), [inp],
                torch.ones((), dtype=inp.dtype))


def relu_grad(inp, out_g):
    return _vjp(lambda x: x.clamp_min(0.), [inp], out_g)


def lin_grad(inp, w, b, out_g):
    return _vjp(lambda x, w_, b_: x @ w_ + b_, [inp, w, b], out_g)
