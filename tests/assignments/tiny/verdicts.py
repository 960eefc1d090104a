"""What the tiny assignment's hidden tests check: inp.g against autograd."""
from __future__ import annotations

import numpy as np

from .reference import expected


def check_inp_g(student, case) -> None:
    got = student.require_ok(case).outputs.get("inp.g")
    assert got is not None, f"{case.probe} did not store a gradient in inp.g"
    assert np.shape(got) == (case.n,), f"inp.g has shape {np.shape(got)}, expected ({case.n},)"
    assert np.allclose(got, expected(case), rtol=1e-4, atol=1e-6), \
        f"inp.g differs from autograd's gradient on the {case.name} input"
