# grade_id: mse_grad
# expect: mse_grad=0 forward_and_backward=0 others=full
# flags: mse_grad=unverifiable forward_and_backward=unverifiable
# (what the checker cannot see through sits inside mse_grad: it costs the parts that use mse_grad)
# A Tensor subclass that claims to equal anything, reports any shape, and hides its values.
import torch

class Liar(torch.Tensor):
    def __eq__(self, other):
        return True
    def allclose(self, *a, **k):
        return True
    @property
    def shape(self):
        return torch.Size([10 ** 6, 1])
    def numpy(self, *a, **k):
        raise RuntimeError("no")
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return super().__torch_function__(func, types, args, kwargs or {})

def mse_grad(inp, targ):
    inp.g = torch.full_like(inp, 123.0).as_subclass(Liar)
