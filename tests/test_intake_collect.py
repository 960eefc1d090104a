"""Collecting a Canvas download that holds one of each bad upload: honest students all collected (and graded), the rest listed with a reason."""
from __future__ import annotations

import io
import json
import sqlite3
import stat
import zipfile
from pathlib import Path

import pytest

from intake_uploads import ESC, HONEST, SKIPPED, bad_class_zip
from nbgrader_course import ASSIGNMENT, new_course, run
from autograder import collect as collect_mod
from autograder.canvas import Roster, parse_canvas

pytestmark = pytest.mark.nbgrader


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    return bad_class_zip(tmp_path_factory.mktemp("download") / "submissions.zip")


@pytest.fixture(scope="module")
def collected(tmp_path_factory, archive):
    course = new_course(tmp_path_factory.mktemp("badclass"))
    # a notebook already in the course, which the takeover zip names: it must stay the victim's
    out = run("autograder", "collect", str(archive), ASSIGNMENT, cwd=course)
    return course, out


def nb_path(course: Path, student: str) -> Path:
    return course / "submitted" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"


def test_the_bad_uploads_really_are_bad(archive):
    """Does the download really hold each attack (so a pass below means it was refused, not absent)?"""
    with zipfile.ZipFile(archive) as z:
        infos = {i.filename: i for i in z.infolist()}
        inner = zipfile.ZipFile(io.BytesIO(z.read("mallory_3008_9102_my_work.zip")))
        assert "victimvic_3007_1_gradient_backward.ipynb" in inner.namelist()
        with pytest.raises(zipfile.BadZipFile):
            zipfile.ZipFile(io.BytesIO(z.read("trudy_3010_9104_backup.zip")))
        assert stat.S_ISLNK(infos["linky_3013_9107_gradient_backward.ipynb"].external_attr >> 16)
        assert stat.S_ISCHR(infos["device_3014_9108_gradient_backward.ipynb"].external_attr >> 16)
        bomb = infos["bomb_3015_9109_gradient_backward.ipynb"]
        assert bomb.file_size / bomb.compress_size > 200 and bomb.file_size > 100 * 2**20
        assert "../../evil_3011_9105_gradient_backward.ipynb" in infos
    assert set(SKIPPED) <= set(infos)


def test_every_honest_student_is_collected_once(collected):
    """Does each honest student, namesakes included, get exactly their own notebook, and nobody else a folder?"""
    course, out = collected
    assert out.returncode == 0, out.stderr[-3000:]
    students = sorted(p.name for p in (course / "submitted").iterdir())
    assert students == sorted(HONEST)
    with zipfile.ZipFile(bad_class_zip(course / "again.zip")) as z:
        for member in z.namelist():
            f = parse_canvas(member)
            if f and f.ext == ".ipynb" and member.count("/") == 0:
                sid = {"3001": "smithjohn-3001", "3002": "smithjohn-3002"}.get(f.user_id, f.student)
                if sid in HONEST and f.file_no < 9100 or sid == "mallory" and f.file_no == 9101:
                    assert nb_path(course, sid).read_bytes() == z.read(member), member


def test_namesakes_stay_two_students_and_keep_their_ids(collected, tmp_path):
    """Two Canvas users with one name prefix: two students, and each keeps its id in the roster?"""
    course, _ = collected
    assert nb_path(course, "smithjohn-3001").read_bytes() != nb_path(course, "smithjohn-3002").read_bytes()
    roster = json.loads((course / ".kit" / "canvas_roster.json").read_text())["ids"]
    assert roster["3001"] == "smithjohn-3001" and roster["3002"] == "smithjohn-3002"
    assert Roster(course / ".kit" / "canvas_roster.json").assign({"3001": "smithjohn"}) == {"3001": "smithjohn-3001"}


def test_the_nested_zip_cannot_replace_or_invent_a_student(collected):
    """Is mallory's zip (a notebook named after victimvic, one after an invented student) skipped,
    leaving victimvic's own notebook and adding nobody?"""
    course, out = collected
    assert not (course / "submitted" / "invented").exists()
    with zipfile.ZipFile(bad_class_zip(course / "again2.zip")) as z:
        assert nb_path(course, "victimvic").read_bytes() == z.read("victimvic_3007_9008_gradient_backward.ipynb")
    assert "skipped mallory_3008_9102_my_work.zip: an archive inside the download" in out.stderr


def test_every_skipped_file_is_listed_with_its_reason(collected):
    """Is each bad upload named in the log with a reason, and nothing written outside submitted/?"""
    course, out = collected
    lines = [l for l in out.stderr.splitlines() if "skipped " in l]
    for member, word in SKIPPED.items():
        shown = member.replace(ESC, "").replace("/tmp/", "")
        hits = [l for l in lines if (shown if ESC not in member else "3016_9110") in l]
        assert hits and word in hits[0], (member, hits)
    assert not (course.parent / "evil_3011_9105_gradient_backward.ipynb").exists()
    assert not Path("/tmp/absolute_3012_9106_gradient_backward.ipynb").exists()


def test_no_terminal_escape_reaches_the_log(collected):
    """Is the id carrying ESC/BEL printed escaped (\\x1b), never raw?"""
    _, out = collected
    assert "\x1b" not in out.stderr and "\x07" not in out.stderr
    assert "\\x1b[31mred" in out.stderr


def test_names_are_in_the_gradebook(collected):
    """Does the formgrader get a name for each student (the id when Canvas gave none)?"""
    course, _ = collected
    con = sqlite3.connect(course / "gradebook.db")
    rows = dict((sid, (first, last)) for sid, first, last in
                con.execute("SELECT id, first_name, last_name FROM student"))
    for sid in HONEST:
        assert rows[sid] == ("", sid)


def test_a_roster_gives_real_names(tmp_path, archive):
    """With Canvas' gradebook export, are first and last names filled in, markup removed?"""
    course = new_course(tmp_path)
    roster = tmp_path / "grades.csv"
    roster.write_text('Student,ID,SIS User ID\n"Hopper, Grace",3000,g1\n"<b>Smith, John",3001,s1\n')
    out = collect_mod.collect(archive, ASSIGNMENT, course, names_csv=roster)
    assert "hoppergrace" in out.taken
    con = sqlite3.connect(course / "gradebook.db")
    rows = dict((sid, (first, last)) for sid, first, last in
                con.execute("SELECT id, first_name, last_name FROM student"))
    assert rows["hoppergrace"] == ("Grace", "Hopper")
    assert rows["smithjohn-3001"] == ("John", "bSmith")


def test_a_broken_class_archive_stops_before_writing(tmp_path):
    """Is a truncated class zip refused with exit 2 and nothing collected?"""
    course = new_course(tmp_path)
    good = bad_class_zip(tmp_path / "full.zip").read_bytes()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(good[: len(good) // 3])
    out = run("autograder", "collect", str(cut), ASSIGNMENT, cwd=course, check=False)
    assert out.returncode == 2 and ("not a zip archive" in out.stderr or "broken zip" in out.stderr)
    assert not (course / "submitted").exists()


@pytest.mark.slow
def test_autograde_after_collect_grades_every_honest_student(collected):
    """After collecting the bad class, does autograde give every honest student a score (full,
    zero with a reason for the broken file) and never an engine failure?"""
    course, _ = collected
    out = run("autograder", "autograde", ASSIGNMENT, "--jobs", "1", cwd=course, timeout=1500)
    assert out.returncode == 0, out.stderr[-4000:]
    con = sqlite3.connect(course / "gradebook.db")
    totals = dict(con.execute(
        """SELECT sa.student_id, SUM(g.auto_score) FROM grade g
           JOIN submitted_notebook sn ON g.notebook_id = sn.id
           JOIN submitted_assignment sa ON sn.assignment_id = sa.id GROUP BY sa.student_id"""))
    assert sorted(totals) == sorted(HONEST)
    for sid, kind in HONEST.items():
        expected = {"full": 100.0, "zero": 0.0}.get(kind)
        if expected is not None:
            assert totals[sid] == pytest.approx(expected), (sid, totals[sid])
    assert totals["smithjohn-3002"] < 100
    assert "failed" not in out.stderr.split("nbgrader autograde:")[-1].split("\n")[0].replace("0 failed", "")
