# grade_id: relu_grad
# expect: relu_grad=0 others=full
# flags: relu_grad=autograd
# mistakes: relu_grad=autograd_used
def relu_grad(inp, out):
    x = inp.detach().clone().requires_grad_(True)
    inp.g, = torch.autograd.grad(relu(x), x, grad_outputs=out.g)
