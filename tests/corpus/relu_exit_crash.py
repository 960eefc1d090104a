# grade_id: relu_grad
# expect: relu_grad=0 forward_and_backward=0 others=full
# (`os._exit` inside relu_grad is code the checker cannot see through: it costs every part
# whose code uses relu_grad, and part 4 names it)
# flags: forward_and_backward=unverifiable
# mistakes: relu_grad=crash
import os


def relu_grad(inp, out):
    os._exit(3)
