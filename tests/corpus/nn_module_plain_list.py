# grade_id: nn_module
# expect: nn_module=0 others=full
# mistakes: nn_module=layers_not_registered
class Model(nn.Module):
    def __init__(self, n_in, nh, n_out):
        super().__init__()
        self.layers = [nn.Linear(n_in, nh), nn.ReLU(), nn.Linear(nh, n_out)]

    def forward(self, x, targ):
        for layer in self.layers:
            x = layer(x)
        return mse(x, targ)
