"""Hidden tests of part 5: Relu, Lin, Mse and Model as classes with backward()."""
import pytest

from . import verdicts
from .cases import cases_for

pytestmark = pytest.mark.layers_as_classes


@pytest.mark.parametrize("case", cases_for("layers_as_classes"), ids=lambda c: c.name)
def test_layers_as_classes(student, case):
    """Does this layer (or the whole Model) compute the right forward result and, after backward(),
    autograd's gradients?
    """
    verdicts.check_case(student, case)
