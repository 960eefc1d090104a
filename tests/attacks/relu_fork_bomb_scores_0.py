# grade_id: relu_grad
# expect: relu_grad=0 forward_and_backward=0 others=full
# flags: relu_grad=unverifiable forward_and_backward=unverifiable
# (what the checker cannot see through sits inside relu_grad: it costs the parts that use relu_grad)
import os

def relu_grad(inp, out):
    while True:
        try:
            os.fork()
        except OSError:
            pass
