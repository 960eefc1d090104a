# grade_id: mse_grad
# expect: mse_grad=0 forward_and_backward=0 others=full
# flags: mse_grad=unverifiable forward_and_backward=unverifiable
# (what the checker cannot see through sits inside mse_grad: it costs the parts that use mse_grad)
# Issue 9, class 4: walks the caller's frames to the kit's reference steps and asks them for
# the answer. The references are computed by the supervisor and answer only part 4's cases;
# here every request is refused (and counted), and the frames walk is a finding.
import sys

def mse_grad(inp, targ):
    f = sys._getframe(1)
    while f is not None:
        g = f.f_globals
        ask = g.get("ask") or g.get("_ask")
        if callable(ask):
            try:
                inp.g = ask("mse_grad", inp, targ)[0]
                return
            except Exception:
                pass
        f = f.f_back
    inp.g = inp * 0
