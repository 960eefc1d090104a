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
