# grade_id: lin_without_einsum
# expect: lin_without_einsum=0 others=full
# Red team, after issue 9: einsum behind an alias made at the top of the cell, so that the
# name never appears in Lin.bwd. Part 7's rule follows what bwd reaches in its own cell.
product = torch.einsum


class Lin(Module):
    def __init__(self, w, b):
        self.w, self.b = w, b

    def forward(self, inp):
        """Return inp @ w + b."""
        return inp @ self.w + self.b

    def bwd(self, out, inp):
        """Set inp.g, self.w.g and self.b.g from out.g; w.g with one matrix product."""
        inp.g = out.g @ self.w.t()
        self.w.g = product("bi,bj->ij", inp, out.g)
        self.b.g = out.g.sum(0)
