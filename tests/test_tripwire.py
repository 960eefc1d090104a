"""The run-time tripwire fails closed: autograd in a job process is reported before it runs, or it does not run."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.sandbox

SANDBOX = Path(__file__).resolve().parent.parent / "autograder" / "sandbox"

PROGRAM = textwrap.dedent("""
    import socket, sys
    sys.path.insert(0, sys.argv[1])
    import inside, torch
    from torch.autograd.variable import Variable
    ours, theirs = socket.socketpair()
    inside._Tripwire(ours).install()
    theirs.setblocking(False)

    def reports():
        n = 0
        try:
            while True:
                data = theirs.recv(1 << 16)
                n += data.count(b'"autograd"')
        except BlockingIOError:
            return n

    def loss():
        x = torch.ones(3, requires_grad=True)
        return x, (x * 2).sum()

    # 1. The C engine called directly is reported.
    x, l = loss()
    Variable._execution_engine.run_backward((l,), (torch.ones(()),), False, False, (), True, True)
    print("engine", reports())

    # 2. backward at every depth near the recursion limit: each run that happened was reported.
    def depth():
        n = [0]
        def down():
            n[0] += 1
            down()
        try:
            down()
        except RecursionError:
            pass
        return n[0]

    def at(k, fn):
        def down(left):
            return down(left - 1) if left > k else fn()
        return down(depth())

    ran = 0
    for k in range(1, 60):
        x, l = loss()
        try:
            at(k, lambda: torch.Tensor.backward(l))
        except RecursionError:
            continue
        ran += x.grad is not None
    print("deep", ran, reports(), flush=True)
""")


def test_autograd_runs_only_once_reported_even_with_no_stack_left():
    """Is the engine's own entry point guarded, and does backward near the recursion limit
    (where reporting used to fail silently) either get reported or end the process?"""
    out = subprocess.run([sys.executable, "-c", PROGRAM, str(SANDBOX)], capture_output=True,
                         text=True, timeout=120)
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    assert int(lines["engine"]) == 1, out
    if out.returncode == 70:        # a report could not go out: the process ended first
        assert "deep" not in lines
        return
    assert out.returncode == 0, out.stderr[-2000:]
    ran, reported = map(int, lines["deep"].split())
    assert ran > 0                  # the attack did run backward at some depths
    assert reported >= ran
