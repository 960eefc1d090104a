"""Hidden tests of part 8: Model built from nn.Linear and nn.ReLU in an nn.Module."""
import pytest

from . import verdicts
from .cases import cases_for

pytestmark = pytest.mark.nn_module


@pytest.mark.parametrize("case", cases_for("nn_module"), ids=lambda c: c.name)
def test_nn_module(student, case):
    """Does Model(n_in, nh, 1) register its four parameters and return the MSE loss whose gradients
    match autograd's?
    """
    verdicts.check_case(student, case)
