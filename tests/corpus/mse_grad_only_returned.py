# grade_id: mse_grad
# expect: mse_grad=0 others=full
# mistakes: mse_grad=g_only_returned
def mse_grad(inp, targ):
    return 2. * (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]
