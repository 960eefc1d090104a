"""Hidden tests of part 7: Lin.bwd computes w.g with one matrix product."""
import pytest

from . import verdicts
from .cases import cases_for

pytestmark = pytest.mark.lin_without_einsum


@pytest.mark.parametrize("case", cases_for("lin_without_einsum"), ids=lambda c: c.name)
def test_lin_without_einsum(student, case):
    """Do Lin(w, b).forward and .bwd give autograd's results, even for a batch whose (n, in, out)
    outer product cannot fit in memory?
    """
    verdicts.check_case(student, case)

