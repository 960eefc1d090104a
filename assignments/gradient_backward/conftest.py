"""Hidden suites' pytest setup: sibling modules importable, one marker per graded part."""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The suites import their siblings (cases, reference, checks) whatever pytest's import mode.
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from autograder import rubric as rubric_mod  # noqa: E402


def pytest_configure(config):
    for part in rubric_mod.load(HERE.name).part_names:
        config.addinivalue_line("markers", f"{part}: hidden tests of the part '{part}'")
