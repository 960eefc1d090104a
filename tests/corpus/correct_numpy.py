# grade_id: mse_grad
# expect: all=full
import numpy as np


def mse_grad(inp, targ):
    x, t = inp.numpy(), targ.numpy()
    inp.g = torch.from_numpy(2 * (x[:, 0] - t)[:, None] / x.shape[0])
# grade_id: relu_grad
def relu_grad(inp, out):
    inp.g = torch.from_numpy(np.where(inp.numpy() > 0, out.g.numpy(), 0).astype(out.g.numpy().dtype))
# grade_id: lin_grad
def lin_grad(inp, out, w, b):
    x, g, wn = inp.numpy(), out.g.numpy(), w.numpy()
    inp.g = torch.from_numpy(g @ wn.T)
    w.g = torch.from_numpy(x.T @ g)
    b.g = torch.from_numpy(g.sum(axis=0))
