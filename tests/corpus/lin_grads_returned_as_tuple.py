# grade_id: lin_grad
# expect: lin_grad=0 others=full
# mistakes: lin_grad=g_only_returned
def lin_grad(inp, out, w, b):
    return out.g @ w.t(), inp.t() @ out.g, out.g.sum(0)
