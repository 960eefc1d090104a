# grade_id: forward_and_backward
# expect: all=full
# (every gradient written inline instead of calling parts 1-3)
def forward_and_backward(inp, targ):
    l1 = inp @ w1 + b1
    l2 = l1.clamp_min(0.)
    out = l2 @ w2 + b2
    out_g = 2. * (out.squeeze(-1) - targ).unsqueeze(-1) / out.shape[0]
    w2.g, b2.g = l2.t() @ out_g, out_g.sum(0)
    l1_g = (out_g @ w2.t()) * (l1 > 0)
    w1.g, b1.g = inp.t() @ l1_g, l1_g.sum(0)
    inp.g = l1_g @ w1.t()
