# grade_id: mse_grad
# expect: mse_grad=0 others=any
# Kills every process it can see, the zygote included: the grader must survive and recover.
import os, signal
for name in os.listdir("/proc"):
    if name.isdigit() and int(name) != os.getpid():
        try:
            os.kill(int(name), signal.SIGKILL)
        except OSError:
            pass

def mse_grad(inp, targ):
    inp.g = inp
