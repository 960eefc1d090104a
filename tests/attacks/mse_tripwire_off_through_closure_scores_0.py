# grade_id: mse_grad
# expect: all=0
# flags: mse_grad=unverifiable
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
