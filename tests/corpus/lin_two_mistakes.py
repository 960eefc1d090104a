# grade_id: lin_grad
# expect: lin_grad=0 others=full
# mistakes: lin_grad=transposed,batch_not_summed
def lin_grad(inp, out, w, b):
    inp.g = out.g @ w.t()
    w.g = out.g.t() @ inp
    b.g = out.g
