# grade_id: lin_grad
# expect: lin_grad=0 others=full
# mistakes: lin_grad=summed_all_axes
def lin_grad(inp, out, w, b):
    inp.g = out.g @ w.t()
    w.g = inp.t() @ out.g
    b.g = out.g.sum()
