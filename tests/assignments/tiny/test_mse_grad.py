"""Hidden tests of the tiny assignment's part 1 (the same file name as gradient_backward's part 1)."""
import pytest

from . import verdicts
from .cases import cases_for

pytestmark = pytest.mark.mse_grad


@pytest.mark.parametrize("case", cases_for("mse_grad"), ids=lambda c: c.name)
def test_mse_grad(student, case):
    """Does mse_grad(inp, targ) store autograd's gradient of the mean squared error in inp.g?"""
    verdicts.check_inp_g(student, case)
