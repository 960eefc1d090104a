# grade_id: lin_grad
# expect: mse_grad=full relu_grad=full others=0
# flags: lin_grad=unverifiable forward_and_backward=unverifiable
# The cell itself dies before defining anything: the chain must go on from the state before it.
import os
os._exit(7)

def lin_grad(inp, out, w, b):
    pass
