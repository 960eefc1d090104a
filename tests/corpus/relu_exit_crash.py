# grade_id: relu_grad
# expect: relu_grad=0 others=full
# mistakes: relu_grad=crash
import os


def relu_grad(inp, out):
    os._exit(3)
