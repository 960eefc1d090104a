# grade_id: relu_grad
# expect: relu_grad=0 others=full
# mistakes: relu_grad=upstream_missing
def relu_grad(inp, out):
    inp.g = (inp > 0).float()
