# grade_id: layers_as_classes
# expect: all=full
# Everything computed in float64 inside the layers; gradients left in float64.
class Relu():
    def __call__(self, inp):
        self.inp = inp
        self.out = inp.double().clamp_min(0.)
        return self.out

    def backward(self):
        self.inp.g = (self.inp.double() > 0).double() * self.out.g.double()


class Lin():
    def __init__(self, w, b):
        self.w, self.b = w, b

    def __call__(self, inp):
        self.inp = inp
        self.out = inp.double() @ self.w.double() + self.b.double()
        return self.out

    def backward(self):
        g = self.out.g.double()
        self.inp.g = g @ self.w.double().t()
        self.w.g = self.inp.double().t() @ g
        self.b.g = g.sum(0)


class Mse():
    def __call__(self, inp, targ):
        self.inp, self.targ = inp, targ
        self.out = (inp.double().squeeze(-1) - targ.double()).pow(2).mean()
        return self.out

    def backward(self):
        n = self.targ.shape[0]
        self.inp.g = 2. * (self.inp.double().squeeze(-1) - self.targ.double()).unsqueeze(-1) / n


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
