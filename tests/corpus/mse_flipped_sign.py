# grade_id: mse_grad
# expect: mse_grad=0 others=full
# mistakes: mse_grad=sign_flipped
def mse_grad(inp, targ):
    inp.g = 2. * (targ - inp.squeeze(-1)).unsqueeze(-1) / inp.shape[0]
