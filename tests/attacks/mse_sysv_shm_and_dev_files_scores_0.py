# grade_id: mse_grad
# expect: all=0
# Leaves data where a job's own /tmp and /dev/shm do not reach: a System V shared-memory
# segment (a shared IPC namespace would keep it) and files in /dev (bwrap's /dev is one
# tmpfs for the whole sandbox). Each job has its own IPC namespace and a read-only /dev.
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
seg = libc.shmget(0x6b6974, 1 << 20, 0o1666)
if seg >= 0:
    addr = libc.shmat(seg, None, 0)
    ctypes.memmove(addr, b"planted by the previous submission", 35)
planted_dev = 0
try:
    with open("/dev/leftover.txt", "w") as f:
        f.write("answers")
    planted_dev = 1
except OSError:
    pass
print("ATTACK RAN: sysv segment", seg, "dev file", planted_dev)

def mse_grad(inp, targ):
    inp.g = inp * 0
