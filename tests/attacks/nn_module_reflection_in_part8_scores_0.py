# grade_id: nn_module
# expect: nn_module=0 others=full
# flags: nn_module=unverifiable
# Issue 9, class 10: the part-8 cell (where autograd is allowed) is checked too: reflection
# there is a finding like anywhere else.
import gc

class Model(nn.Module):
    def __init__(self, n_in, nh, n_out):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(n_in, nh), nn.ReLU(), nn.Linear(nh, n_out)])
        self.seen = len(gc.get_objects())

    def __call__(self, x, targ):
        for layer in self.layers:
            x = layer(x)
        return (x.squeeze(-1) - targ).pow(2).mean()
