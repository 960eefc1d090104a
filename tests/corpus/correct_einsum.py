# grade_id: lin_grad
# expect: all=full
def lin_grad(inp, out, w, b):
    inp.g = torch.einsum("bj,ij->bi", out.g, w)
    w.g = torch.einsum("bi,bj->ij", inp, out.g)
    b.g = torch.einsum("bj->j", out.g)
# grade_id: lin_without_einsum
class Lin(Module):
    def __init__(self, w, b):
        self.w, self.b = w, b

    def forward(self, inp):
        return torch.einsum("bi,ij->bj", inp, self.w) + self.b

    def bwd(self, out, inp):
        inp.g = torch.einsum("bj,ij->bi", out.g, self.w)
        self.w.g = torch.einsum("bi,bj->ij", inp, out.g)
        self.b.g = out.g.sum(0)
