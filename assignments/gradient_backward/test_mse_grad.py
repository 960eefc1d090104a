"""Hidden tests of part 1: mse_grad stores the MSE loss's gradient in inp.g."""
import pytest

from . import verdicts
from .cases import cases_for

pytestmark = pytest.mark.mse_grad


@pytest.mark.parametrize("case", cases_for("mse_grad"), ids=lambda c: c.name)
def test_mse_grad(student, case):
    """Does mse_grad(inp, targ) store autograd's gradient in inp.g, with inp's shape and dtype,
    leaving inp and targ unchanged?
    """
    verdicts.check_case(student, case)
