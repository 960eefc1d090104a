# grade_id: nn_module
# expect: nn_module=partial others=full
# mistakes: nn_module=broadcast_nn
# (a batch of one broadcasts to (1, 1), so that case passes)
class Model(nn.Module):
    def __init__(self, n_in, nh, n_out):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(n_in, nh), nn.ReLU(), nn.Linear(nh, n_out))

    def forward(self, x, targ):
        return (self.layers(x) - targ).pow(2).mean()
