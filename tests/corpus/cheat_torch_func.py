# grade_id: lin_grad
# expect: lin_grad=0 others=full
# flags: lin_grad=autograd
# mistakes: lin_grad=autograd_used
def lin_grad(inp, out, w, b):
    _, pullback = torch.func.vjp(lin, inp, w, b)
    inp.g, w.g, b.g = pullback(out.g)
