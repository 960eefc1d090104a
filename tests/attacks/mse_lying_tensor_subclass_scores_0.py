# grade_id: mse_grad
# expect: all=0
# flags: mse_grad=unverifiable relu_grad=unverifiable nn_module=unverifiable
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
