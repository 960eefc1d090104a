"""Hidden tests of part 6: the Module base class and its Relu, Lin, Mse subclasses."""
import pytest

from . import verdicts
from .cases import cases_for

pytestmark = pytest.mark.module_forward


@pytest.mark.parametrize("case", cases_for("module_forward"), ids=lambda c: c.name)
def test_module_forward(student, case):
    """Does Module pass its call's arguments to forward and bwd, and do the layers (alone and
    chained) give autograd's results?
    """
    verdicts.check_case(student, case)
