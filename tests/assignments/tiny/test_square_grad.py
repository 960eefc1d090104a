"""Hidden tests of the tiny assignment's part 2."""
import pytest

from . import verdicts
from .cases import cases_for

pytestmark = pytest.mark.square_grad


@pytest.mark.parametrize("case", cases_for("square_grad"), ids=lambda c: c.name)
def test_square_grad(student, case):
    """Does square_grad(inp, out) store out.g times the derivative of inp**2 in inp.g?"""
    verdicts.check_inp_g(student, case)
