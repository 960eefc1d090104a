# grade_id: module_forward
# expect: module_forward=partial others=full
# mistakes: module_forward=module_out_not_kept
# (__call__ returns a second, separate forward result: a gradient set on it never reaches bwd)
class Module():
    def __call__(self, *args):
        self.args = args
        self.out = self.forward(*args)
        return self.forward(*args)

    def forward(self, *args):
        raise NotImplementedError

    def backward(self):
        self.bwd(self.out, *self.args)


class Relu(Module):
    def forward(self, inp):
        return inp.clamp_min(0.)

    def bwd(self, out, inp):
        inp.g = (inp > 0).float() * out.g


class Lin(Module):
    def __init__(self, w, b):
        self.w, self.b = w, b

    def forward(self, inp):
        return inp @ self.w + self.b

    def bwd(self, out, inp):
        inp.g = out.g @ self.w.t()
        self.w.g = inp.t() @ out.g
        self.b.g = out.g.sum(0)


class Mse(Module):
    def forward(self, inp, targ):
        return mse(inp, targ)

    def bwd(self, out, inp, targ):
        inp.g = 2. * (inp.squeeze(-1) - targ).unsqueeze(-1) / targ.shape[0]
