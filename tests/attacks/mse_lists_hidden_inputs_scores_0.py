# grade_id: mse_grad
# expect: all=0
# Issue 9, class 9: lists the hidden inputs and prints what the hidden checks feed in, hoping
# to see them in the feedback. /io is empty in a job, and nothing printed while hidden inputs
# are out reaches the student.
import os
try:
    seen = len(os.listdir("/io/inputs"))
except OSError:
    seen = 0
print("ATTACK RAN: hidden input files seen:", seen)

def mse_grad(inp, targ):
    print("PROBE SAW", inp.flatten()[:3].tolist())
    inp.g = inp * 0
