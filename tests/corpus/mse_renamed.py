# grade_id: mse_grad
# expect: mse_grad=0 others=full
# mistakes: mse_grad=name_missing
def mse_gradient(inp, targ):
    inp.g = 2. * (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]
