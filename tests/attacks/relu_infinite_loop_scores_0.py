# grade_id: relu_grad
# expect: relu_grad=0 others=full
def relu_grad(inp, out):
    while True:
        pass
