# grade_id: mse_grad
# expect: mse_grad=0 forward_and_backward=0 others=full
# (its computed getattr, inside mse_grad, is code the checker cannot see through: it costs
# every part whose code uses mse_grad, and part 4 names it)
# flags: mse_grad=autograd forward_and_backward=unverifiable
# mistakes: mse_grad=autograd_used
# (the names are built at run time: the mistake id comes from the run-time tripwire)
def mse_grad(inp, targ):
    x = inp.detach().clone().requires_grad_(True)
    loss = mse(x, targ)
    getattr(loss, "back" + "ward")()
    inp.g = x.grad
