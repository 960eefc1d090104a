"""Shared test setup: one warm engine for every test that does not need a fresh one or its own Limits."""
from __future__ import annotations

import pytest

# The second assignment's hidden suites are graded by an engine, never collected as kit tests.
collect_ignore = ["assignments"]


@pytest.fixture(scope="session")
def shared_engine():
    """The default engine (default Limits), started once per test session: tests that only
    grade submissions share it; tests that kill its sandbox or change Limits start their own."""
    from autograder.engine import Engine
    with Engine("gradient_backward") as engine:
        yield engine


# Engine-starting tests of tests/test_startup.py, which is being written alongside this file
# and does not mark them yet: by name, so that `make test-fast` leaves them out.
STARTS_AN_ENGINE = {"test_cli_prints_the_phases_of_a_cold_start",
                    "test_sandbox_launched_without_inputs_waits_for_them"}


def pytest_collection_modifyitems(items):
    # A test that grades with the session's engine needs the sandbox, whichever module it is in.
    for item in items:
        if "shared_engine" in getattr(item, "fixturenames", ()) or item.name in STARTS_AN_ENGINE:
            item.add_marker(pytest.mark.sandbox)
