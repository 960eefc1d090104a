# grade_id: module_forward
# expect: module_forward=0 others=full
# mistakes: module_forward=module_args_not_unpacked
class Module():
    def __call__(self, *args):
        self.args = args
        self.out = self.forward(*args)
        return self.out

    def forward(self):
        raise Exception('not implemented')

    def backward(self):
        self.bwd(self.out, self.args)


class Relu(Module):
    def forward(self, inp):
        return inp.clamp_min(0.)

    def bwd(self, out, inp):
        inp.g = (inp > 0).float() * self.out.g


class Lin(Module):
    def __init__(self, w, b):
        self.w, self.b = w, b

    def forward(self, inp):
        return inp @ self.w + self.b

    def bwd(self, out, inp):
        inp.g = self.out.g @ self.w.t()
        self.w.g = torch.einsum("bi,bj->ij", inp, self.out.g)
        self.b.g = self.out.g.sum(0)


class Mse(Module):
    def forward(self, inp, targ):
        return (inp.squeeze() - targ).pow(2).mean()

    def bwd(self, out, inp, targ):
        inp.g = 2 * (inp.squeeze(-1) - targ).unsqueeze(-1) / targ.shape[0]
