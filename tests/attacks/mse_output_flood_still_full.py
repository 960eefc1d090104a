# grade_id: mse_grad
# expect: mse_grad=full others=full
# 20 MB of output from a correct answer: capped in the feedback, and no points lost. What it
# prints while the hidden checks run is never shown.
for _ in range(20000):
    print("x" * 1000)
print("warning: " * 1000, end="")

def mse_grad(inp, targ):
    print("y" * 100000)
    inp.g = 2. * (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]
