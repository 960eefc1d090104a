# grade_id: relu_grad
# expect: all=full
def relu_grad(inp, out):
    inp.g = torch.where(inp > 0, out.g, torch.zeros_like(out.g))
# grade_id: layers_as_classes
class Relu():
    def __call__(self, inp):
        self.inp = inp
        self.out = torch.where(inp > 0, inp, torch.zeros_like(inp))
        return self.out

    def backward(self):
        self.inp.g = self.out.g.masked_fill(self.inp <= 0, 0.)


class Lin():
    def __init__(self, w, b):
        self.w, self.b = w, b

    def __call__(self, inp):
        self.inp = inp
        self.out = inp @ self.w + self.b
        return self.out

    def backward(self):
        self.inp.g = self.out.g @ self.w.T
        self.w.g = self.inp.T @ self.out.g
        self.b.g = self.out.g.sum(dim=0)


class Mse():
    def __call__(self, inp, targ):
        self.inp, self.targ = inp, targ
        self.out = ((inp[:, 0] - targ) ** 2).mean()
        return self.out

    def backward(self):
        n = self.targ.shape[0]
        self.inp.g = (2 / n) * (self.inp - self.targ[:, None])


class Model():
    def __init__(self, w1, b1, w2, b2):
        self.layers = [Lin(w1, b1), Relu(), Lin(w2, b2)]
        self.loss = Mse()

    def __call__(self, x, targ):
        for layer in self.layers:
            x = layer(x)
        return self.loss(x, targ)

    def backward(self):
        self.loss.backward()
        for layer in self.layers[::-1]:
            layer.backward()
