# grade_id: mse_grad
# expect: mse_grad=partial others=full
# mistakes: mse_grad=broadcast_nn
# (a batch of one broadcasts to (1, 1), the right shape, so that case passes)
def mse_grad(inp, targ):
    inp.g = 2. * (inp - targ) / inp.shape[0]
