"""How a computed gradient differs from the expected one, in words: shared by the notebook's checks (gbcheck.py) and the hidden grader, so both name a mistake alike. Needs numpy only."""
from __future__ import annotations

import re
import sys

import numpy as np

RTOL = 1e-4


def _as_array(x):
    torch = sys.modules.get("torch")   # not imported here: the hidden grader passes numpy arrays
    if torch is not None and isinstance(x, torch.Tensor):
        return x.detach().cpu().to(torch.float64).numpy()
    if isinstance(x, (np.ndarray, np.generic, int, float)) and not isinstance(x, bool):
        return np.asarray(x, dtype=np.float64)
    return None


def _close(got, expected) -> bool:
    if got is None or got.shape != expected.shape or not np.all(np.isfinite(got)):
        return False
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    return bool(np.allclose(got, expected, rtol=RTOL, atol=1e-5 * scale))


def _shape(a) -> str:
    return str(tuple(a.shape))


def _is_param_grad(name: str) -> bool:
    """Is `name` the gradient of a weight or bias (summed over the batch), as opposed to an activation's?"""
    base = re.sub(r"\.g(rad)?$", "", name.strip())
    token = re.split(r"[^A-Za-z0-9_]+", base)[-1].lower()
    return bool(re.fullmatch(r"(w|b|weight|bias)\d*", token))


def _first_differences(got, expected, limit=3) -> str:
    bad = np.argwhere(~np.isclose(got, expected, rtol=RTOL, atol=1e-5))
    parts = [f"at {list(map(int, idx))} got {got[tuple(idx)]:.6g}, expected {expected[tuple(idx)]:.6g}"
             for idx in bad[:limit]]
    more = f" (and {len(bad) - limit} more)" if len(bad) > limit else ""
    return "; ".join(parts) + more


def _value_mistake(name, g, e, n):
    """Same shape, wrong values: a known factor, a sign, a transpose, or the fallback."""
    candidates = [("sign_flipped", -1.0, "has the right size but the opposite sign"),
                  ("factor_2", 2.0, "is twice the expected value: is there a factor 2 too many?"),
                  ("factor_half", 0.5, "is half the expected value: the derivative of a square x**2 is 2*x")]
    if n and n > 2:
        candidates.append(("factor_n", float(n), f"is n={n} times too big: the loss is a mean over the "
                           "batch, so its gradient carries a 1/n"))
        if _is_param_grad(name):
            candidates.append(("mean_not_sum", 1.0 / n, f"is n={n} times too small: it averages over the "
                               "batch where it should sum (the 1/n of the loss is already in out.g)"))
        else:
            candidates.append(("factor_1_over_n", 1.0 / n, f"is n={n} times too small: is it divided "
                               "by n twice?"))
    for mistake, factor, text in candidates:
        if _close(g, e * factor):
            return mistake, f"{name} {text}" + ("" if text.endswith("?") else ".")
    if g.ndim == 2 and g.shape[0] == g.shape[1] > 1 and _close(g.T, e):
        return "transposed", f"{name} is the transpose of the expected value."
    if not np.all(np.isfinite(g)):
        return "wrong_values", f"{name} contains nan or inf."
    if not g.any() and e.any():
        return "wrong_values", f"{name} is all zeros."
    return "wrong_values", (f"{name} has the right shape {_shape(e)} but wrong values: "
                            f"{_first_differences(g, e)}.")


def _shape_mistake(name, g, e, n):
    """Wrong shape: a transpose, a missing or extra unit axis, an (n, n) broadcast, a batch left over."""
    shapes = f"expected shape {_shape(e)}, got {_shape(g)}"
    if e.ndim == 2 and g.shape == e.shape[::-1]:
        right = " (its transpose has the right values)" if _close(g.T, e) else ""
        return "transposed", f"{name} looks transposed: {shapes}{right}."
    if e.ndim == 2 and e.shape[1] == 1 and g.shape == e.shape[:1]:
        right = " (the values are right)" if _close(g.reshape(e.shape), e) else ""
        return "shape_n_not_n1", (f"{name} has shape {_shape(g)} but must have the shape of its tensor, "
                                  f"{_shape(e)}{right}: keep the trailing axis of size 1.")
    if e.ndim == 1 and g.shape == (e.shape[0], 1):
        right = " (the values are right)" if _close(g.reshape(e.shape), e) else ""
        return "shape_n_not_n1", f"{name}: {shapes}{right}: drop the trailing axis of size 1."
    if g.ndim == 2 and g.shape[0] == g.shape[1] == e.shape[0] > 1 and e.size == e.shape[0]:
        return "broadcast_nn", (f"{name}: {shapes}. An (n, 1) tensor was combined with an (n,) one and "
                                "broadcast to (n, n): squeeze the (n, 1) one first.")
    if g.ndim == e.ndim + 1 and g.shape[1:] == e.shape and (n is None or g.shape[0] == n):
        right = " (summing it over the batch axis gives the right answer)" if _close(g.sum(0), e) else ""
        return "batch_not_summed", (f"{name}: {shapes}. It keeps one gradient per image: the batch "
                                    f"must be summed away{right}.")
    if n and g.ndim >= 1 and g.shape[0] == n and (e.ndim == 0 or e.shape[0] != n) and g.ndim <= max(e.ndim, 1):
        return "summed_wrong_axis", f"{name}: {shapes}. It looks summed over the wrong axis (not the batch)."
    return "wrong_values", f"{name}: {shapes}."


def explain(name, got, expected, *, n=None, returned=None, autograd_used=False):
    """How `got` differs from `expected`: (mistake id or None when they match, a message for the student).

    `name` is what the student computed (e.g. "w1.g"); `n` the batch size; `returned` what their function
    returned (to recognise a gradient returned instead of stored); `autograd_used` whether autograd ran.
    """
    if autograd_used:
        return "autograd_used", (f"{name}: autograd was used (.backward(), torch.autograd or torch.func). "
                                 "This part asks for the gradient by hand, with the chain rule.")
    e = _as_array(expected)
    if got is None:
        r = _as_array(returned)
        if r is not None and (_close(r, e) or (r.size == e.size and _close(r.reshape(e.shape), e))):
            return "g_only_returned", (f"{name} was never set: your code returns the gradient instead of "
                                       f"storing it. Assign it: {name} = ...")
        return "g_missing", f"{name} was never set: store the gradient on the tensor ({name} = ...)."
    g = _as_array(got)
    if g is None:
        return "wrong_values", f"{name} should be a tensor, got {type(got).__name__}."
    if g.shape != e.shape:
        return _shape_mistake(name, g, e, n)
    if _close(g, e):
        return None, f"{name} matches autograd."
    return _value_mistake(name, g, e, n)
