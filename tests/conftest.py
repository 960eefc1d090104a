"""Shared test setup: one warm engine for every test that does not need a fresh one or its own Limits,
and the split of the suite over pytest-xdist workers (`make test` runs `-n 2 --dist loadgroup`)."""
from __future__ import annotations

import pytest

# The second assignment's hidden suites are graded by an engine, never collected as kit tests.
collect_ignore = ["assignments"]


@pytest.fixture(scope="session")
def shared_engine():
    """The default engine (default Limits), started once per test session (once per xdist worker):
    tests that only grade submissions share it; tests that kill its sandbox or change Limits start
    their own."""
    from autograder.engine import Engine
    with Engine("gradient_backward") as engine:
        yield engine


@pytest.fixture(scope="session")
def cli_grade_of_source():
    """`python -m autograder grade SOURCE --json` (a cold start with its own engine), run once:
    the CLI's output contract (test_engine.py) and its start-up phases (test_startup.py) are read
    off the same run."""
    import subprocess
    import sys

    from autograder import rubric
    source = rubric.KIT_ROOT / "source" / "gradient_backward" / "gradient_backward.ipynb"
    return subprocess.run([sys.executable, "-m", "autograder", "grade", str(source), "--json"],
                          capture_output=True, text=True, timeout=600, cwd=rubric.KIT_ROOT)


# --- the split over xdist workers --------------------------------------------------------------
# `make test` runs on two pytest-xdist workers with `--dist loadgroup`, scheduled by the GROUPS
# below (pytest 9 ignores the node-id suffix by which xdist's own loadgroup reads xdist_group marks,
# so this file says which tests go together, by node id). A group runs whole, in file order, on one
# worker. By default a module is one group: its module-scoped fixtures (a course, an engine with
# its own Limits, a browser) are built once, and tests that build on the state an earlier test left
# (the nbgrader exchange, a re-collect) keep their order. These modules' tests are independent of
# each other (no module-scoped fixture, no shared state), so each is scheduled on its own:
INDEPENDENT = {"test_engine", "test_startup", "test_cohort_attacks", "test_diagnosis",
               "test_suites_reference", "test_probes_in_process", "test_autograd_scan", "test_wire",
               "test_gbcheck", "test_intake_units", "test_architecture", "test_cli"}
# and these tests form a group apart from the rest of their module (which then builds its own copy
# of the module fixtures it uses), so that a long module runs on both workers at once:
SPLIT = {
    "test_self_check": {"troubled_check": ["test_wrong_part_fails_with_the_notebook_message",
                                      "test_raw_error_names_the_students_cell_and_line",
                                      "test_endless_cell_is_interrupted_and_reported",
                                      "test_hidden_tests_and_skipped_cells_never_run",
                                      "test_dead_kernel_is_reported_and_later_checks_marked_not_run"]},
    "test_batch": {"cohort": ["test_parallel_scores_equal_one_at_a_time",
                              "test_rerun_after_kill_9_grades_only_the_rest_and_matches",
                              "test_shard_processes_merge_into_the_single_run",
                              "test_progress_is_a_bar_only_when_asked_or_on_a_terminal"],
                   "hang": ["test_a_worker_that_stops_answering_is_replaced_and_the_submission_recorded_failed"]},
    "test_attacks": {"gains_nothing": ["test_attack_gains_nothing"]},
}
# and these tests of different modules share a session fixture, so they go together:
TOGETHER = {"cli_grade_of_source": ["test_engine.py::test_cli_grades_source_full_and_release_zero",
                                    "test_startup.py::test_cli_prints_the_phases_of_a_cold_start"]}
# The order in which groups are handed out: the scheduler deals them out in collection order, so
# the longest come first and the short ones fill in at the end. Rough seconds of a group (or, for
# an INDEPENDENT module, of each of its tests) measured with `--durations=0` on a busy machine;
# unlisted: short.
WEIGHT = {
    "test_lab_browser": 62, "test_nbgrader_exchange": 42, "test_nbgrader_autograde": 39,
    "test_attacks": 26, "test_attacks::gains_nothing": 24, "test_batch::cohort": 22,
    "test_intake_html": 19, "test_corpus": 17, "test_batch::hang": 16, "test_self_check::troubled_check": 16,
    "test_intake_collect": 15, "test_nbgrader_collect": 15, "test_gradescope": 13, "test_report": 11,
    "test_intake_grading": 10, "test_notebook_source": 10, "test_self_check": 9, "test_ci_template": 8,
    "test_nbgrader_one_pass": 7, "test_cohort_attacks": 5, "test_release": 4, "test_second_assignment": 3,
    "test_store": 3, "cli_grade_of_source": 3, "test_engine": 2, "test_startup": 1,
}


def group_of(nodeid: str) -> str:
    """The unit of scheduling a test belongs to: its module, a SPLIT group, or (in an
    INDEPENDENT module) the test alone."""
    path, _, name = nodeid.partition("::")
    for group, tests in TOGETHER.items():
        if f"{path.rpartition('/')[2]}::{name}" in tests:
            return group
    module = path.rpartition("/")[2].removesuffix(".py")
    if module in INDEPENDENT:
        return nodeid
    function = name.partition("[")[0]
    for group, names in SPLIT.get(module, {}).items():
        if function in names:
            return f"{module}::{group}"
    return module


def _weight(nodeid: str) -> int:
    group = group_of(nodeid)
    return WEIGHT.get(group if group != nodeid else nodeid.partition("::")[0].rpartition("/")[2][:-3], 0)


def pytest_configure(config):
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:     # an xdist worker: the run's folder, shared with the other worker
        import os
        from pathlib import Path

        from nbgrader_course import SHARED_TMP
        os.environ[SHARED_TMP] = str(Path(config.option.basetemp).parent)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    # A test that grades with the session's engine needs the sandbox, whichever module it is in.
    for item in items:
        if {"shared_engine", "cli_grade_of_source"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.sandbox)
    if getattr(config.option, "loadgroup", False):    # in each worker of `--dist loadgroup`
        # Longest groups first, each group's tests together and in file order.
        first = {}
        for i, item in enumerate(items):
            first.setdefault(group_of(item.nodeid), i)
        items.sort(key=lambda it: (-_weight(it.nodeid), first[group_of(it.nodeid)]))


def pytest_xdist_make_scheduler(config, log):
    """`--dist loadgroup` with this file's GROUPS, taken in collection order (longest first)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

    config.option.loadscopereorder = False
    return GroupScheduling(config, log)
