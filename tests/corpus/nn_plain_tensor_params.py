# grade_id: nn_module
# expect: nn_module=0 others=full
# mistakes: nn_module=params_not_parameters
class MyLinear(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.w = torch.randn(n_in, n_out) / math.sqrt(n_in)
        self.b = torch.zeros(n_out)

    def forward(self, x):
        return x @ self.w + self.b


class Model(nn.Module):
    def __init__(self, n_in, nh, n_out):
        super().__init__()
        self.l1, self.relu, self.l2 = MyLinear(n_in, nh), nn.ReLU(), MyLinear(nh, n_out)

    def forward(self, x, targ):
        return mse(self.l2(self.relu(self.l1(x))), targ)
