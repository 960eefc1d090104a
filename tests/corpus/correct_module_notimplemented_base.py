# grade_id: module_forward
# expect: all=full
# A base whose forward and bwd raise NotImplementedError, and an __init__ the layers call.
class Module:
    def __init__(self):
        self.args, self.out = (), None

    def __call__(self, *args):
        self.args = args
        self.out = self.forward(*args)
        return self.out

    def forward(self, *args):
        raise NotImplementedError

    def bwd(self, out, *args):
        raise NotImplementedError

    def backward(self):
        return self.bwd(self.out, *self.args)


class Relu(Module):
    def forward(self, x):
        return torch.where(x > 0, x, torch.zeros_like(x))

    def bwd(self, out, x):
        x.g = torch.where(x > 0, out.g, torch.zeros_like(out.g))


class Lin(Module):
    def __init__(self, w, b):
        super().__init__()
        self.w, self.b = w, b

    def forward(self, x):
        return x @ self.w + self.b

    def bwd(self, out, x):
        x.g = out.g @ self.w.t()
        self.w.g = x.t() @ out.g
        self.b.g = out.g.sum(dim=0)


class Mse(Module):
    def forward(self, out, targ):
        return (out.squeeze(-1) - targ).pow(2).mean()

    def bwd(self, loss, out, targ):
        out.g = 2. * (out.squeeze(-1) - targ).unsqueeze(-1) / out.shape[0]
