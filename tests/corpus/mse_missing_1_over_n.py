# grade_id: mse_grad
# expect: mse_grad=partial others=full
# mistakes: mse_grad=factor_n
# (a batch of one cannot tell the difference, so that case passes)
def mse_grad(inp, targ):
    inp.g = 2. * (inp.squeeze(-1) - targ).unsqueeze(-1)
