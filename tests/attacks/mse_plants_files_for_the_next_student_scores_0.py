# grade_id: mse_grad
# expect: mse_grad=0 others=full
# Leaves files in every writable place for the next submission graded by the same sandbox.
import os
for folder in ("/tmp", os.getcwd(), os.path.expanduser("~")):
    try:
        with open(os.path.join(folder, "planted_by_previous_student.txt"), "w") as f:
            f.write("answers")
    except OSError:
        pass

def mse_grad(inp, targ):
    inp.g = inp * 0
