"""JupyterHub path: release_assignment, a student's fetch_assignment and submit, collect, via a local exchange."""
from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest

from nbgrader_course import ASSIGNMENT, new_course, run

pytestmark = pytest.mark.nbgrader

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


# --- the inbound folder is student-writable: what collect does with what a student puts there ---
def _submit_then_tamper(hub: dict, user: str):
    """`user` fetches and submits; returns their inbound folder (as the student could reach it)."""
    as_student(hub, user, "fetch_assignment", ASSIGNMENT)
    as_student(hub, user, "submit", ASSIGNMENT)
    inbound = hub["exchange"] / COURSE_ID / "inbound"
    return next(p for p in inbound.iterdir() if p.name.startswith(f"{user}+{ASSIGNMENT}+"))


def solution(hub: dict) -> Path:
    return hub["course"] / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"


def test_a_symlink_in_the_inbound_folder_is_never_followed(hub):
    """A student replaces their submitted notebook with a link to the instructor's solution
    after `submit`: does collect skip the link (no solution in submitted/, a warning), not copy it?"""
    folder = _submit_then_tamper(hub, "mallet")
    nb = folder / f"{ASSIGNMENT}.ipynb"
    nb.unlink()
    nb.symlink_to(solution(hub))
    assert "BEGIN SOLUTION" in nb.read_text()              # the link does lead to the answers
    out = as_instructor(hub, "collect", ASSIGNMENT)
    got = hub["course"] / "submitted" / "mallet" / ASSIGNMENT
    assert got.is_dir() and not (got / f"{ASSIGNMENT}.ipynb").exists()
    assert not any("BEGIN SOLUTION" in p.read_text(errors="replace") for p in got.rglob("*") if p.is_file())
    assert "a symbolic link, not a file" in out.stderr


def test_an_inbound_entry_that_is_a_link_to_a_folder_is_skipped(hub):
    """Is an inbound entry that is itself a link (to the instructor's source folder) skipped whole?"""
    folder = _submit_then_tamper(hub, "linda")
    ts = folder.name.split("+")[2]
    import shutil
    shutil.rmtree(folder)
    folder.symlink_to(solution(hub).parent, target_is_directory=True)
    assert (folder / f"{ASSIGNMENT}.ipynb").is_file()       # the link does lead to the answers
    out = as_instructor(hub, "collect", ASSIGNMENT)
    assert not (hub["course"] / "submitted" / "linda").exists()
    assert f"linda+{ASSIGNMENT}+{ts}" in out.stderr and "never followed" in out.stderr


def test_an_unsafe_student_id_in_inbound_is_skipped(hub):
    """Is an inbound folder whose id carries markup skipped, never made a student?"""
    inbound = hub["exchange"] / COURSE_ID / "inbound"
    bad = inbound / f"<img src=x onerror=alert(1)>+{ASSIGNMENT}+2026-12-01 10:00:00.000000 UTC+abc"
    bad.mkdir()
    (bad / f"{ASSIGNMENT}.ipynb").write_text("{}")
    out = as_instructor(hub, "collect", ASSIGNMENT)
    assert not any("<img" in p.name for p in (hub["course"] / "submitted").iterdir())
    assert "not a safe id" in out.stderr
