"""JupyterHub path: release_assignment, a student's fetch_assignment and submit, collect, via a local exchange."""
from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest

from nbgrader_course import ASSIGNMENT, new_course, run

COURSE_ID = "gradient_backward_course"


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("hub")
    exchange = root / "exchange"
    exchange.mkdir()
    exchange.chmod(0o777)        # nbgrader wants a world-writable exchange, as on a real hub
    course = new_course(root)
    return {"course": course, "exchange": exchange, "root": root}


def as_student(hub: dict, user: str, *args: str, check: bool = True):
    """On a hub each student is an OS user; here the id is given explicitly (one OS user runs all)."""
    home = hub["root"] / "home" / user
    home.mkdir(parents=True, exist_ok=True)
    return run("nbgrader", *args, f"--course={COURSE_ID}", f"--Exchange.root={hub['exchange']}",
               f"--CourseDirectory.student_id={user}", cwd=home, check=check,
               extra_env={"HOME": str(home)})


def as_instructor(hub: dict, *args: str):
    return run("nbgrader", *args, f"--Exchange.root={hub['exchange']}", cwd=hub["course"],
               extra_env={"NBGRADER_EXCHANGE": str(hub["exchange"])})


def edit(notebook: Path, marker: str) -> None:
    nb = nbformat.read(str(notebook), 4)
    nb.cells.append(nbformat.v4.new_markdown_cell(marker))
    nbformat.write(nb, str(notebook))


def test_release_fetch_submit_collect(hub):
    """Does a notebook a student fetched, edited and submitted arrive in the instructor's submitted/?"""
    as_instructor(hub, "release_assignment", ASSIGNMENT, "--force")
    as_student(hub, "alice", "fetch_assignment", ASSIGNMENT)
    fetched = hub["root"] / "home" / "alice" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert fetched.is_file()
    edit(fetched, "alice was here")
    as_student(hub, "alice", "submit", ASSIGNMENT)
    as_instructor(hub, "collect", ASSIGNMENT)
    got = hub["course"] / "submitted" / "alice" / ASSIGNMENT
    assert "alice was here" in (got / f"{ASSIGNMENT}.ipynb").read_text()
    assert (got / "timestamp.txt").is_file()


def test_a_second_submit_replaces_the_first_on_collect_update(hub):
    """When a student submits twice, does `collect --update` bring in the later one?"""
    fetched = hub["root"] / "home" / "alice" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    edit(fetched, "second try")
    time.sleep(1.1)              # exchange timestamps have a resolution of a second or so
    as_student(hub, "alice", "submit", ASSIGNMENT)
    as_instructor(hub, "collect", ASSIGNMENT, "--update")
    text = (hub["course"] / "submitted" / "alice" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()
    assert "second try" in text


def test_a_student_cannot_fetch_a_course_that_was_not_released(hub):
    """Does fetching from an unknown course fail instead of silently returning nothing?"""
    out = run("nbgrader", "fetch_assignment", ASSIGNMENT, "--course=no_such_course",
              f"--Exchange.root={hub['exchange']}", cwd=hub["root"], check=False,
              extra_env={"USER": "bob", "LOGNAME": "bob"})
    assert out.returncode != 0
