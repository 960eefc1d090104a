# grade_id: mse_grad
# expect: mse_grad=0 others=full
# flags: mse_grad=autograd
# Issue 9, class 3: a cell magic on the first line used to make the checker fail to parse the
# cell (and pass it), while the sandbox ran the text without the magic. The checker now reads
# exactly the text the sandbox runs.
%%time
def mse_grad(inp, targ):
    x = inp.detach().clone().requires_grad_(True)
    (x.squeeze(-1) - targ).pow(2).mean().backward()
    inp.g = x.grad
