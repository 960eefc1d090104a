# grade_id: mse_grad
# expect: mse_grad=0 others=full
# flags: mse_grad=autograd
# Red team, after issue 9: autograd at a stack depth where reporting it to the supervisor
# overflows (the tripwire used to swallow that error and let backward run), reached through
# torch.Tensor.__dict__, tracking asked by keyword, .grad read by an optimizer's step. The
# checker reads `__dict__['backward']` as `.backward` (autograd, in part 1 only: part 4 is
# graded with reference steps); the tripwire sends a pre-encoded frame and ends the process
# when even that fails (tests/test_tripwire.py).
def _frames_left():
    n = [0]
    def down():
        n[0] += 1
        down()
    try:
        down()
    except RecursionError:
        pass
    return n[0]


def _run_at(k, fn):
    """Call fn() with only k frames of recursion left."""
    def down(left):
        if left > k:
            return down(left - 1)
        return fn()
    return down(_frames_left())


def _autograd(loss_of, *tensors):
    """Gradients of loss_of(*tensors) w.r.t. tensors, by autograd, read back through SGD."""
    zs = [torch.zeros_like(t, requires_grad=True) for t in tensors]
    loss = loss_of(*[t + z for t, z in zip(tensors, zs)])
    run = torch.Tensor.__dict__["backward"]
    for k in range(1, 60):
        try:
            _run_at(k, lambda: run(loss))
            break
        except RecursionError:
            continue
    torch.optim.SGD(zs, lr=1.0).step()
    return [-z.detach() for z in zs]


def mse_grad(inp, targ):
    """Store in inp.g the gradient of mse(inp, targ) with respect to inp, shape (n, 1)."""
    inp.g = _autograd(lambda i: (i.squeeze(-1) - targ).pow(2).mean(), inp)[0]
