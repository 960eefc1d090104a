# grade_id: relu_grad
# expect: relu_grad=0 others=full
import os

def relu_grad(inp, out):
    os._exit(0)
