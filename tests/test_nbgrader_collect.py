"""`python -m autograder collect`: a Canvas download into submitted/, odd cases included (attacks: test_intake_collect.py)."""
from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from nbgrader_course import ASSIGNMENT, KIT, new_course, run, samples_module

pytestmark = pytest.mark.nbgrader

SAMPLES = KIT / "samples" / "canvas_download.zip"


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    return new_course(tmp_path_factory.mktemp("collect"))


@pytest.fixture(scope="module")
def collected(course) -> tuple[Path, str]:
    out = run("autograder", "collect", str(SAMPLES), ASSIGNMENT, cwd=course)
    return course, out.stderr


def notebook_of(course: Path, student: str) -> Path:
    return course / "submitted" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"


def test_every_sample_student_gets_one_notebook(collected):
    """Does each of the twelve sample students end up with exactly gradient_backward.ipynb?"""
    course, _ = collected
    students = sorted(p.name for p in (course / "submitted").iterdir())
    assert students == sorted(["allenfrances", "curiemarie", "dijkstraedsger", "hammingrichard",
                               "hoppergrace", "knuthdonald", "liskovbarbara", "lovelaceada",
                               "müllerjörg", "noetheremmy", "ritchiedennis", "turingalan"])
    for s in students:
        files = sorted(p.name for p in (course / "submitted" / s / ASSIGNMENT).iterdir())
        assert files == [f"{ASSIGNMENT}.ipynb"], (s, files)


def test_resubmission_wins_and_renamed_notebook_is_renamed(collected):
    """Is Canvas' `-1` resubmission the one kept, and a renamed upload collected under the right name?"""
    course, log = collected
    with zipfile.ZipFile(SAMPLES) as z:
        latest = z.read("lovelaceada_1002_5010_gradient_backward-1.ipynb")
        renamed = z.read("liskovbarbara_late_1010_5012_Gradient Backward (Barbara).ipynb")
    assert notebook_of(course, "lovelaceada").read_bytes() == latest
    assert notebook_of(course, "liskovbarbara").read_bytes() == renamed
    assert ("skipped lovelaceada_1002_5003_gradient_backward.ipynb: lovelaceada also submitted "
            "lovelaceada_1002_5010_gradient_backward-1.ipynb, which is kept") in log
    assert "liskovbarbara submitted late" in log


def test_junk_files_are_ignored_with_a_log_line(collected):
    """Are notes, macOS resource forks and .DS_Store skipped, each with a line saying so?"""
    course, log = collected
    assert "skipped hoppergrace_1001_5002_notes.txt: from hoppergrace: not a notebook" in log
    assert "skipped .DS_Store: not a Canvas submission file name" in log
    assert "skipped __MACOSX/._hoppergrace_1001_5001_gradient_backward.ipynb: inside a folder" in log
    assert not list((course / "submitted").rglob("*.txt"))


def test_recollecting_replaces_a_students_earlier_files(collected, tmp_path):
    """Does a second download (a later resubmission) replace what was collected before?"""
    course, _ = collected
    newer = b'{"not": "the same notebook"}'
    archive = tmp_path / "second.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("turingalan_1003_6001_gradient_backward-2.ipynb", newer)
    run("autograder", "collect", str(archive), cwd=course)
    assert notebook_of(course, "turingalan").read_bytes() == newer
    assert notebook_of(course, "hoppergrace").exists()      # others are left alone


def test_a_non_zip_archive_is_refused(course, tmp_path):
    """Is a file that is not a zip refused with exit 2 and a plain reason?"""
    archive = tmp_path / "notazip.zip"
    archive.write_bytes(b"plain text")
    out = run("autograder", "collect", str(archive), cwd=course, check=False)
    assert out.returncode == 2 and "is not a zip archive" in out.stderr


def test_a_zip_slip_member_is_skipped_not_fatal(course, tmp_path):
    """Is a `..` member skipped with its reason (exit 1: nothing collected), never written outside?"""
    archive = tmp_path / "slip.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("../../evil_1_2_gradient_backward.ipynb", "{}")
    out = run("autograder", "collect", str(archive), cwd=course, check=False)
    assert out.returncode == 1 and "would land outside the course folder" in out.stderr
    assert not (course.parent / "evil_1_2_gradient_backward.ipynb").exists()
    assert not (course / "submitted" / "evil").exists()


def test_a_mistyped_assignment_is_refused(course):
    """Does `collect ZIP gradient_backwrd` say which assignments exist?"""
    out = run("autograder", "collect", str(SAMPLES), "gradient_backwrd", cwd=course, check=False)
    assert out.returncode == 2
    assert "unknown assignment 'gradient_backwrd'" in out.stderr and "gradient_backward" in out.stderr


def test_the_bundled_archive_is_what_build_samples_makes(course, tmp_path):
    """Is samples/canvas_download.zip up to date with samples/build_samples.py and the release?"""
    s = samples_module()
    s.RELEASE = KIT / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    if not s.RELEASE.exists():
        s.RELEASE = course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    fresh = s.build(tmp_path / "fresh.zip")
    with zipfile.ZipFile(fresh) as a, zipfile.ZipFile(SAMPLES) as b:
        assert a.namelist() == b.namelist()
        for name in a.namelist():
            assert a.read(name) == b.read(name), f"{name}: run `make samples` and commit the zip"


def test_hand_run_zip_collect_takes_only_top_level_canvas_files(tmp_path):
    """With `nbgrader zip_collect` run by hand (nbgrader unpacks nested zips), does the kit's plugin
    still refuse a notebook that came out of a student's zip, naming another student?"""
    import io
    course = new_course(tmp_path)
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("victim_2_1_gradient_backward.ipynb", b'{"from": "mallory"}')
    archive = course / "downloaded" / ASSIGNMENT / "archive" / "class.zip"
    archive.parent.mkdir(parents=True)
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("victim_2_7_gradient_backward.ipynb", b'{"from": "victim"}')
        z.writestr("mallory_1_8_work.zip", inner.getvalue())
    out = run("nbgrader", "zip_collect", ASSIGNMENT, "--force", cwd=course)
    assert any((course / "downloaded" / ASSIGNMENT / "extracted").rglob("victim_2_1_*"))   # nbgrader did unpack it
    assert notebook_of(course, "victim").read_bytes() == b'{"from": "victim"}'
    assert "not at the top of the download" in out.stderr
    assert sorted(p.name for p in (course / "submitted").iterdir()) == ["victim"]
