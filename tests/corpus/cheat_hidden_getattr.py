# grade_id: mse_grad
# expect: all=0
# (its computed getattr is code the checker cannot see through: every later part is unverifiable too)
# flags: mse_grad=autograd
# mistakes: mse_grad=autograd_used
# (the names are built at run time: the mistake id comes from the run-time tripwire)
def mse_grad(inp, targ):
    x = inp.detach().clone().requires_grad_(True)
    loss = mse(x, targ)
    getattr(loss, "back" + "ward")()
    inp.g = x.grad
