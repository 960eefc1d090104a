# grade_id: mse_grad
# expect: mse_grad=0 others=full
# mistakes: mse_grad=not_implemented
def mse_grad(inp, targ):
    """Store in inp.g the gradient of mse(inp, targ) with respect to inp, shape (n, 1)."""
    raise NotImplementedError()
