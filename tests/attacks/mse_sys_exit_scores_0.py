# grade_id: mse_grad
# expect: mse_grad=0 forward_and_backward=0 others=full
# flags: mse_grad=unverifiable forward_and_backward=unverifiable
# (what the checker cannot see through sits inside mse_grad: it costs the parts that use mse_grad)
import sys

def mse_grad(inp, targ):
    sys.exit(0)
