# grade_id: nn_module
# expect: all=full
class Model(nn.Module):
    def __init__(self, n_in, nh, n_out):
        super().__init__()
        self.hidden = nn.Linear(n_in, nh)
        self.act = nn.ReLU()
        self.output = nn.Linear(nh, n_out)

    def forward(self, x, targ):
        pred = self.output(self.act(self.hidden(x)))
        return nn.functional.mse_loss(pred.squeeze(-1), targ)
