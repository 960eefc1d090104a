# grade_id: relu_grad
# expect: relu_grad=0 others=full
# mistakes: relu_grad=relu_no_mask
def relu_grad(inp, out):
    inp.g = out.g.clone()
