# grade_id: lin_without_einsum
# expect: lin_without_einsum=0 nn_module=0 others=full
# flags: lin_without_einsum=unverifiable nn_module=unverifiable
# Issue 9, class 7: reserves address space in the cell and frees it in bwd, so that a limit on
# the address space lets the forbidden (n, in, out) outer product through. `mmap` is a
# finding, and the supervisor measures the memory a case really used (the kernel's peak RSS),
# not address space (tests/corpus/lin_outer_product_oom.py shows that measure).
import mmap
_reserve = mmap.mmap(-1, 700 * 2**20)

class Lin(Module):
    def __init__(self, w, b):
        self.w, self.b = w, b

    def forward(self, inp):
        return inp @ self.w + self.b

    def bwd(self, out, inp):
        global _reserve
        if _reserve is not None:
            _reserve.close()
            _reserve = None
        inp.g = out.g @ self.w.t()
        self.w.g = (inp.unsqueeze(-1) * out.g.unsqueeze(1)).sum(0)
        self.b.g = out.g.sum(0)
