"""Hidden suites' pytest setup: one marker per graded part (the suites import their helpers relatively)."""
from pathlib import Path

from autograder import rubric as rubric_mod

HERE = Path(__file__).resolve().parent


def pytest_configure(config):
    for part in rubric_mod.load(HERE.name).part_names:
        config.addinivalue_line("markers", f"{part}: hidden tests of the part '{part}'")
