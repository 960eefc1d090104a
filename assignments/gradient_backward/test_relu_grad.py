"""Hidden tests of part 2: relu_grad turns out.g into inp.g through ReLU's 0/1 mask."""
import pytest

from . import verdicts
from .cases import cases_for

pytestmark = pytest.mark.relu_grad


@pytest.mark.parametrize("case", cases_for("relu_grad"), ids=lambda c: c.name)
def test_relu_grad(student, case):
    """Does relu_grad(inp, out) store in inp.g the incoming out.g masked where inp is negative,
    leaving inp unchanged?
    """
    verdicts.check_case(student, case)
