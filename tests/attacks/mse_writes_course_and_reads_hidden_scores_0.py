# grade_id: mse_grad
# expect: all=0
# flags: mse_grad=unverifiable relu_grad=unverifiable nn_module=unverifiable
# Tries to write into the course folder, the gradebook and home, and to read the hidden suites.
import os
COURSE = "__COURSE__"  # the test puts the real course path here
# Looked for first: the writes below may create files in the sandbox's own private /tmp.
found = [p for p in (COURSE + "/assignments", COURSE + "/gradebook.db", COURSE + "/submitted",
                     COURSE + "/source", COURSE + "/autograder") if os.path.exists(p)]
report = [f"HIDDEN FILES SEEN: {len(found)} {found[:5]}"]
for target in (COURSE + "/gradebook.db", COURSE + "/pwned.txt",
               COURSE + "/assignments/gradient_backward/test_mse_grad.py",
               "/home/student/pwned.txt", "/root/pwned.txt", "/etc/pwned", "pwned.txt"):
    try:
        with open(target, "a") as f:
            f.write("pwned")
        report.append(f"WROTE {target}")
    except OSError as exc:
        report.append(f"denied {target}: {type(exc).__name__}")
print("\n".join(report))

def mse_grad(inp, targ):
    inp.g = inp * 3
