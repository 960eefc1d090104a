# grade_id: lin_without_einsum
# expect: lin_without_einsum=less others=full
# mistakes: lin_without_einsum=outer_product_oom
# Issue 9, class 7 without any trick: the (n, in, out) outer product in plain torch passes
# the checker, and the supervisor's measure of its peak memory fails the memory case.
class Lin(Module):
    def __init__(self, w, b):
        self.w, self.b = w, b

    def forward(self, inp):
        return inp @ self.w + self.b

    def bwd(self, out, inp):
        inp.g = out.g @ self.w.t()
        self.w.g = (inp.unsqueeze(-1) * out.g.unsqueeze(1)).sum(0)
        self.b.g = out.g.sum(0)
