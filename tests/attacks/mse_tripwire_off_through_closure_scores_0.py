# grade_id: mse_grad
# expect: mse_grad=0 forward_and_backward=0 others=full
# flags: mse_grad=unverifiable forward_and_backward=unverifiable
# (what the checker cannot see through sits inside mse_grad: it costs the parts that use mse_grad)
# Issue 9, class 5: switches the run-time tripwire off through the wrapper's closure, reads
# .grad through operator.attrgetter, and lets nn.Parameter stand in for requires_grad.
import operator
from torch import nn

def mse_grad(inp, targ):
    cells = torch.Tensor.backward.__closure__ or ()
    original = next((c.cell_contents for c in cells if callable(c.cell_contents)), None)
    x = nn.Parameter(inp.detach().clone())
    loss = (x.squeeze(-1) - targ).pow(2).mean()
    (original or torch.Tensor.backward)(loss)
    inp.g = operator.attrgetter("grad")(x)
