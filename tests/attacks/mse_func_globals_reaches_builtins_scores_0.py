# grade_id: mse_grad
# expect: all=0
# flags: mse_grad=unverifiable
# Red team, after issue 9: a Cython function's public `func_globals` leads to the builtins
# module, and from there anything: an import of torch.autograd and the C engine's
# run_backward called directly. The checker refuses func_* attributes; the tripwire also
# guards the engine itself.
B = np.random.default_rng.func_globals["__builtins__"]   # the builtins module, unseen
get = B.getattr


def mse_grad(inp, targ):
    """Store in inp.g the gradient of mse(inp, targ) with respect to inp, shape (n, 1)."""
    ag = get(B, "__imp" + "ort__")("torch.auto" + "grad", None, None, ["x"])
    engine = get(get(get(ag, "variable"), "Variable"), "_execution" + "_engine")
    x = inp.detach().clone()
    get(x, "requires" + "_grad_")()
    loss = (x.squeeze(-1) - targ).pow(2).mean()
    (g,) = get(engine, "run_" + "backward")((loss,), (torch.ones_like(loss),), False, False, (x,), False, False)
    inp.g = g
