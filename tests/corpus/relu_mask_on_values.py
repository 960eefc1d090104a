# grade_id: relu_grad
# expect: relu_grad=0 others=full
# mistakes: relu_grad=relu_mask_on_values
def relu_grad(inp, out):
    inp.g = inp.clamp_min(0.) * out.g
