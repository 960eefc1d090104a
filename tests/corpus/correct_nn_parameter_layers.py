# grade_id: nn_module
# expect: all=full
# Hand-made layers holding nn.Parameter weights in the lesson's (in, out) layout.
class MyLinear(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.w = nn.Parameter(torch.randn(n_in, n_out) / math.sqrt(n_in))
        self.b = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        return x @ self.w + self.b


class Model(nn.Module):
    def __init__(self, n_in, nh, n_out):
        super().__init__()
        self.layers = nn.ModuleList([MyLinear(n_in, nh), nn.ReLU(), MyLinear(nh, n_out)])

    def __call__(self, x, targ):
        for layer in self.layers:
            x = layer(x)
        return mse(x, targ)
