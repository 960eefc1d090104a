# grade_id: layers_as_classes
# expect: all=full
# Gradients computed in numpy (float64) and turned back into tensors of the input's dtype.
import numpy as np


class Relu():
    def __call__(self, inp):
        self.inp = inp
        self.out = torch.from_numpy(np.maximum(inp.numpy(), 0))
        return self.out

    def backward(self):
        mask = (self.inp.numpy() > 0).astype(np.float64)
        self.inp.g = torch.from_numpy(mask * self.out.g.numpy()).to(self.inp.dtype)


class Lin():
    def __init__(self, w, b):
        self.w, self.b = w, b

    def __call__(self, inp):
        self.inp = inp
        self.out = torch.from_numpy(inp.numpy() @ self.w.numpy() + self.b.numpy())
        return self.out

    def backward(self):
        g = self.out.g.numpy().astype(np.float64)
        x, w = self.inp.numpy().astype(np.float64), self.w.numpy().astype(np.float64)
        self.inp.g = torch.from_numpy(g @ w.T).to(self.inp.dtype)
        self.w.g = torch.from_numpy(x.T @ g).to(self.w.dtype)
        self.b.g = torch.from_numpy(g.sum(axis=0)).to(self.b.dtype)


class Mse():
    def __call__(self, inp, targ):
        self.inp, self.targ = inp, targ
        self.out = torch.tensor(((inp.numpy()[:, 0] - targ.numpy()) ** 2).mean())
        return self.out

    def backward(self):
        x, t = self.inp.numpy(), self.targ.numpy()
        self.inp.g = torch.from_numpy(2 * (x[:, 0] - t)[:, None] / len(t)).to(self.inp.dtype)


class Model():
    def __init__(self, w1, b1, w2, b2):
        self.layers = [Lin(w1, b1), Relu(), Lin(w2, b2)]
        self.loss = Mse()

    def __call__(self, x, targ):
        for l in self.layers:
            x = l(x)
        return self.loss(x, targ)

    def backward(self):
        self.loss.backward()
        for l in reversed(self.layers):
            l.backward()
