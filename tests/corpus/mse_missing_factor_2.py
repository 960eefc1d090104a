# grade_id: mse_grad
# expect: mse_grad=0 others=full
# mistakes: mse_grad=factor_half
def mse_grad(inp, targ):
    inp.g = (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]
