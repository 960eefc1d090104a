# grade_id: mse_grad
# expect: all=0
# Issue 9, class 9: lists the hidden inputs and prints what the hidden checks feed in, hoping
# to see them in the feedback, and raises them in an error message. /io is empty in a job,
# nothing printed while hidden inputs are out reaches the student, and the numbers in an
# error message raised then are hidden.
import os
try:
    seen = len(os.listdir("/io/inputs"))
except OSError:
    seen = 0
print("ATTACK RAN: hidden input files seen:", seen)

def mse_grad(inp, targ):
    print("PROBE SAW", inp.flatten()[:3].tolist())
    raise ValueError(f"LEAK {inp.flatten()[:4].tolist()}")
