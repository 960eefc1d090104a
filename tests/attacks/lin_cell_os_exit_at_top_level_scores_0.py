# grade_id: lin_grad
# expect: lin_grad=0 others=full
# The cell itself dies before defining anything: the chain must go on from the state before it.
import os
os._exit(7)

def lin_grad(inp, out, w, b):
    pass
