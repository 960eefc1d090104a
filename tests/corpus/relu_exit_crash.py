# grade_id: relu_grad
# expect: mse_grad=full others=0
# (`os` is code the checker cannot see through: every later part is unverifiable too)
# mistakes: relu_grad=crash
import os


def relu_grad(inp, out):
    os._exit(3)
