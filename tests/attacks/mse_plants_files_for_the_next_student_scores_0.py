# grade_id: mse_grad
# expect: all=0
# flags: mse_grad=unverifiable relu_grad=unverifiable nn_module=unverifiable
# Leaves files in every writable place for the next submission graded by the same sandbox.
import os
planted = 0
for folder in ("/tmp", "/dev/shm", os.getcwd(), os.path.expanduser("~")):
    try:
        with open(os.path.join(folder, "planted_by_previous_student.txt"), "w") as f:
            f.write("answers")
        planted += 1
    except OSError:
        pass
print("ATTACK RAN: files planted:", planted)

def mse_grad(inp, targ):
    inp.g = inp * 0
