# grade_id: nn_module
# expect: nn_module=0 others=full
# mistakes: nn_module=nn_wrong_layer_sizes
# (only the first layer is registered: the second hides in a plain list)
class Model(nn.Module):
    def __init__(self, n_in, nh, n_out):
        super().__init__()
        self.first = nn.Linear(n_in, nh)
        self.rest = [nn.ReLU(), nn.Linear(nh, n_out)]

    def forward(self, x, targ):
        x = self.first(x)
        for layer in self.rest:
            x = layer(x)
        return mse(x, targ)
