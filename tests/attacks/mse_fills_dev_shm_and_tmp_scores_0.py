# grade_id: mse_grad
# expect: all=0
# Issue 9, class 6: fills /dev/shm and /tmp (charged to the sandbox's memory cgroup) so that
# the next submission's start is killed. Each job has its own capped ones, gone with it.
import os
written = {}
for folder in ("/dev/shm", "/tmp"):
    n = 0
    try:
        with open(os.path.join(folder, "filler"), "wb") as f:
            for _ in range(1024):
                f.write(b"\0" * (1 << 20))
                n += 1
    except OSError:
        pass
    written[folder] = n
print("ATTACK RAN: MB written", written)

def mse_grad(inp, targ):
    inp.g = inp * 0
