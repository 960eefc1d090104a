"""Hidden tests of part 3: lin_grad stores the gradients of a linear layer."""
import pytest

from . import verdicts
from .cases import cases_for

pytestmark = pytest.mark.lin_grad


@pytest.mark.parametrize("case", cases_for("lin_grad"), ids=lambda c: c.name)
def test_lin_grad(student, case):
    """Does lin_grad(inp, out, w, b) store autograd's inp.g, w.g and b.g (shapes of inp, w, b),
    leaving the inputs unchanged?
    """
    verdicts.check_case(student, case)
