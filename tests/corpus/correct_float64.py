# grade_id: mse_grad
# expect: all=full
def mse_grad(inp, targ):
    inp.g = 2. * (inp.double().squeeze(-1) - targ.double()).unsqueeze(-1) / inp.shape[0]
# grade_id: lin_grad
def lin_grad(inp, out, w, b):
    g = out.g.double()
    inp.g = g @ w.double().t()
    w.g = inp.double().t() @ g
    b.g = g.sum(0)
