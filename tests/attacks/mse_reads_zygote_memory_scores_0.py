# grade_id: mse_grad
# expect: all=0
# flags: mse_grad=unverifiable relu_grad=unverifiable nn_module=unverifiable
# Tries to reach into the harness's parent processes through /proc.
import os
for pid in (1, 2, os.getppid()):
    for what in ("mem", "environ", "fd/0", "fd/1"):
        print(f"TRIED /proc/{pid}/{what}")  # evidence the attack ran
        try:
            with open(f"/proc/{pid}/{what}", "rb") as f:
                f.read(16)
            print("READ", pid, what)
        except OSError as exc:
            print("denied", pid, what, type(exc).__name__)

def mse_grad(inp, targ):
    inp.g = inp * 0
