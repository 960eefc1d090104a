# grade_id: mse_grad
# expect: mse_grad=less others=full
# mistakes: mse_grad=global_n
def mse_grad(inp, targ):
    # n is the notebook's global: the training set's size, not this batch's
    inp.g = 2. * (inp.squeeze(-1) - targ).unsqueeze(-1) / n
