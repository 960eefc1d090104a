# grade_id: module_forward
# expect: all=full
# An abstract base class: forward and bwd must be written by every layer.
from abc import ABC, abstractmethod


class Module(ABC):
    def __call__(self, *args):
        self.args = args
        self.out = self.forward(*args)
        return self.out

    @abstractmethod
    def forward(self, *args):
        ...

    @abstractmethod
    def bwd(self, out, *args):
        ...

    def backward(self):
        self.bwd(self.out, *self.args)


class Relu(Module):
    def forward(self, inp):
        return inp.clamp_min(0.)

    def bwd(self, out, inp):
        inp.g = out.g * (inp > 0)


class Lin(Module):
    def __init__(self, w, b):
        super().__init__()
        self.w, self.b = w, b

    def forward(self, inp):
        return inp @ self.w + self.b

    def bwd(self, out, inp):
        inp.g = out.g @ self.w.T
        self.w.g = (inp.unsqueeze(-1) * out.g.unsqueeze(1)).sum(0)
        self.b.g = out.g.sum(0)


class Mse(Module):
    def forward(self, inp, targ):
        return mse(inp, targ)

    def bwd(self, out, inp, targ):
        inp.g = (2.0 / targ.shape[0]) * (inp[:, 0] - targ)[:, None]
# grade_id: lin_without_einsum
class Lin(Module):
    def __init__(self, w, b):
        super().__init__()
        self.w, self.b = w, b

    def forward(self, inp):
        return inp @ self.w + self.b

    def bwd(self, out, inp):
        inp.g = out.g @ self.w.T
        self.w.g = inp.T @ out.g
        self.b.g = out.g.sum(0)
