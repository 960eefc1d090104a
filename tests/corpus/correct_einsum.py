# grade_id: lin_grad
# expect: all=full
# einsum is fine in part 3 (and in Lin.forward); part 7 asks for Lin.bwd without it.
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
        inp.g = out.g @ self.w.t()
        self.w.g = inp.t() @ out.g
        self.b.g = out.g.sum(0)
