# grade_id: lin_without_einsum
# expect: lin_without_einsum=0 others=full
# mistakes: lin_without_einsum=uses_einsum
# Right values, but Lin.bwd uses einsum, which part 7's text (and its public check) rule out.
class Lin(Module):
    def __init__(self, w, b):
        self.w, self.b = w, b

    def forward(self, inp):
        return inp @ self.w + self.b

    def bwd(self, out, inp):
        inp.g = torch.einsum("bj,ij->bi", out.g, self.w)
        self.w.g = torch.einsum("bi,bj->ij", inp, out.g)
        self.b.g = out.g.sum(0)
