# grade_id: mse_grad
# expect: mse_grad=0 others=full
import sys

def mse_grad(inp, targ):
    sys.exit(0)
