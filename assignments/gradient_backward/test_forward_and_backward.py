"""Hidden tests of part 4: forward_and_backward chains parts 1-3 (given as references)."""
import pytest

from . import verdicts
from .cases import cases_for

pytestmark = pytest.mark.forward_and_backward


@pytest.mark.parametrize("case", cases_for("forward_and_backward"), ids=lambda c: c.name)
def test_forward_and_backward(student, case):
    """Does forward_and_backward(inp, targ), using reference mse_grad, relu_grad and lin_grad,
    leave autograd's gradients on inp, w1, b1, w2 and b2?
    """
    verdicts.check_case(student, case)
