# grade_id: mse_grad
# expect: mse_grad=0 forward_and_backward=0 others=full
# flags: mse_grad=unverifiable forward_and_backward=unverifiable
# (what the checker cannot see through sits inside mse_grad: it costs the parts that use mse_grad)
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
