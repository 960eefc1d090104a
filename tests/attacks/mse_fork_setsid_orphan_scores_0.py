# grade_id: mse_grad
# expect: all=0
# flags: mse_grad=unverifiable relu_grad=unverifiable nn_module=unverifiable
# Leaves processes behind in their own sessions; the grader must kill them all.
import os, time

def _escape():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            while True:
                time.sleep(0.05)
        os._exit(0)

_escape()

def mse_grad(inp, targ):
    _escape()
    inp.g = inp * 0
