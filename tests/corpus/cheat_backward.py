# grade_id: mse_grad
# expect: mse_grad=0 others=full
# flags: mse_grad=autograd
# mistakes: mse_grad=autograd_used
def mse_grad(inp, targ):
    x = inp.detach().clone().requires_grad_(True)
    mse(x, targ).backward()
    inp.g = x.grad
