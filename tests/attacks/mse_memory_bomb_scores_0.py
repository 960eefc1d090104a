# grade_id: mse_grad
# expect: mse_grad=0 others=full
import torch

def mse_grad(inp, targ):
    hog = [torch.ones(10 ** 8) for _ in range(100)]
    inp.g = hog[0][: inp.shape[0]].reshape(inp.shape)
