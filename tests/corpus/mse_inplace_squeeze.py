# grade_id: mse_grad
# expect: mse_grad=0 others=full
# mistakes: mse_grad=input_modified
def mse_grad(inp, targ):
    diff = inp.squeeze_(-1) - targ
    inp.g = 2. * diff.unsqueeze(-1) / inp.shape[0]
