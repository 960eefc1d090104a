"""Tests of the cohort report: real results store, real nbgrader gradebook, real browser."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import report, rubric as rubric_mod, scoring
from autograder.store import ResultStore

pytestmark = pytest.mark.nbgrader  # the cohort's gradebook is a real nbgrader gradebook

RUBRIC = rubric_mod.load("gradient_backward")
VENV_BIN = Path(sys.executable).parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def _graded(passing: dict[str, tuple[int, int]] | None = None, *, mistakes=None, flags=None,
            seconds=3.0) -> scoring.Result:
    """A Result from the kit's one scoring function; parts not named pass 4/4."""
    passing, mistakes = passing or {}, mistakes or {}
    outcomes = []
    for p in RUBRIC.part_names:
        ok, total = passing.get(p, (4, 4))
        for i in range(total):
            outcomes.append(scoring.TestOutcome(
                f"test_{p}.py::t{i}", p, i < ok, mistake=mistakes.get(p) if i >= ok else None))
    return scoring.score(RUBRIC, outcomes, feedback={}, flags=flags or {}, isolation="bwrap",
                         seconds=seconds)


@pytest.fixture(scope="module")
def cohort_course_with_four_flagged_students(tmp_path_factory) -> Path:
    """Six graded students (one perfect, one with two mistakes, four needing attention),
    one student only in the gradebook, and a manual score overriding an auto score."""
    results = {
        "alice": _graded(flags={"nn_module": ["autograd"]}, seconds=2.5),  # allowed in part 8
        "bob": _graded({"mse_grad": (1, 4), "lin_grad": (2, 4)},
                       mistakes={"mse_grad": "mse_grad.missing_factor_2",
                                 "lin_grad": "lin_grad.w_transposed"}, seconds=3.1),
        "carol": _graded({"lin_grad": (0, 4)}, flags={"lin_grad": ["crashed"]}, seconds=4.0),
        "dave": _graded(flags={"forward_and_backward": ["autograd"]}, seconds=3.3),
        "erin": scoring.unreadable(RUBRIC, "not valid JSON"),
        "frank": _graded({"nn_module": (0, 4)}, flags={"nn_module": ["timeout"]}, seconds=31.0),
    }
    tmp_path = tmp_path_factory.mktemp("course")
    store = ResultStore(tmp_path / ".kit" / "results", fingerprint="test")
    for sid, r in results.items():
        store.save(sid, r, key=f"key-{sid}")
    _gradebook(tmp_path / "gradebook.db", {sid: r for sid, r in results.items()},
               manual={("bob", "mse_grad"): 9.0}, extra_students=["gina"])
    return tmp_path


def _gradebook(db: Path, results: dict[str, scoring.Result], *, manual: dict,
               extra_students: list[str]) -> None:
    """A real nbgrader gradebook with the auto scores of these results."""
    from nbgrader.api import Gradebook
    path = os.environ["PATH"]
    os.environ["PATH"] = f"{VENV_BIN}{os.pathsep}{path}"  # nbgrader calls `alembic`
    try:
        _fill_gradebook(Gradebook, db, results, manual, extra_students)
    finally:
        os.environ["PATH"] = path


def _fill_gradebook(Gradebook, db, results, manual, extra_students) -> None:
    with Gradebook(f"sqlite:///{db}") as gb:
        gb.add_assignment(RUBRIC.name)
        gb.add_notebook(RUBRIC.name, RUBRIC.name)
        for p in RUBRIC.parts:
            gb.add_grade_cell(p.test_cell, RUBRIC.name, RUBRIC.name, max_score=p.points,
                              cell_type="code")
            gb.add_solution_cell(p.part, RUBRIC.name, RUBRIC.name)
        for sid in [*results, *extra_students]:
            gb.add_student(sid)
            gb.add_submission(RUBRIC.name, sid)
            for p in RUBRIC.parts:
                g = gb.find_grade(p.test_cell, RUBRIC.name, RUBRIC.name, sid)
                g.auto_score = results[sid].part(p.part).score if sid in results else 0.0
                g.manual_score = manual.get((sid, p.part))
        gb.db.commit()


@pytest.fixture(scope="module")
def report_html_of_cohort(cohort_course_with_four_flagged_students, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("build") / "report.html"
    return report.build(cohort_course_with_four_flagged_students, RUBRIC.name, out)


def test_gradebook_scores_include_manual_overrides(cohort_course_with_four_flagged_students):
    """Does the gradebook reader count a manual score over the auto score, as nbgrader does?"""
    scores = report.read_gradebook(cohort_course_with_four_flagged_students / "gradebook.db", RUBRIC)
    assert set(scores) == {"alice", "bob", "carol", "dave", "erin", "frank", "gina"}
    assert scores["bob"]["mse_grad"] == 9.0
    assert scores["bob"]["lin_grad"] == 7.5
    assert scores["alice"]["nn_module"] == 10.0


def test_students_needing_attention_are_exactly_the_flagged_ones(cohort_course_with_four_flagged_students):
    """Are crashed, timed-out, autograd (where forbidden) and unreadable submissions, and only those, flagged?"""
    course = cohort_course_with_four_flagged_students
    students = report.merge(RUBRIC, report.read_gradebook(course / "gradebook.db", RUBRIC),
                            report.read_results(course / ".kit" / "results"))
    allowed = frozenset({"nn_module"})
    flagged = {s.id: s.attention(allowed) for s in students if s.attention(allowed)}
    assert set(flagged) == {"carol", "dave", "erin", "frank"}
    assert flagged["carol"] == ["crashed (lin_grad)"]
    assert flagged["dave"] == ["suspected autograd use (forward_and_backward)"]
    assert flagged["frank"] == ["timed out (nn_module)"]
    assert flagged["erin"][0].startswith("unreadable notebook: not valid JSON")


def test_report_page_holds_every_section_and_counts(report_html_of_cohort):
    """Does the page show the plots, mistakes with counts, attention list and timing, all inline?"""
    page = report_html_of_cohort.read_text()
    for heading in ("Score distribution per part", "Most common mistakes",
                    "Students who need attention", "Grading time"):
        assert heading in page
    assert page.count('src="data:image/png;base64,') == 4
    assert "mse_grad.missing_factor_2" in page and "lin_grad.w_transposed" in page
    assert re.search(r"<td>students</td><td>7</td>", page)
    assert "suspected autograd use (forward_and_backward)" in page
    assert "suspected autograd use (nn_module)" not in page  # autograd is allowed there
    assert "31.0 s" in page  # the slowest submission
    assert "http://" not in page and "https://" not in page  # self-contained


def test_mistake_titles_come_from_the_catalogue(tmp_path):
    """Are mistake titles read from catalogue.toml wherever the entries sit in the file?"""
    (tmp_path / "catalogue.toml").write_text(
        '[mse_grad.missing_factor_2]\ntitle = "Forgot the factor 2"\n'
        '[[mistakes]]\nid = "lin_grad.w_transposed"\nmessage = "w.g is transposed"\n')
    titles = report.read_catalogue(tmp_path)
    assert titles["mse_grad.missing_factor_2"] == "Forgot the factor 2"
    assert titles["lin_grad.w_transposed"] == "w.g is transposed"


def test_empty_course_gives_a_page_saying_so(tmp_path):
    """With no gradebook and no results, is the report still written, saying nothing was graded?"""
    out = report.build(tmp_path, RUBRIC.name, tmp_path / "r.html")
    assert "No graded submissions found." in out.read_text()


def test_report_verb_writes_the_page(cohort_course_with_four_flagged_students, tmp_path):
    """Does `python -m autograder report` write the HTML file and exit 0?"""
    out = tmp_path / "verb.html"
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "report",
         "--course", str(cohort_course_with_four_flagged_students), "--out", str(out)],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 10_000


@pytest.mark.browser
@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                    reason="chromium and chromedriver are not installed "
                           "(apt-get install chromium chromium-driver); .ci/run installs them")
def test_report_renders_in_headless_chromium(report_html_of_cohort, tmp_path):
    """Does a real browser load every plot (naturalWidth > 0) and paint a non-blank page?"""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage", "--window-size=1200,2400",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts, service=Service(executable_path=CHROMEDRIVER))
    try:
        driver.get(report_html_of_cohort.as_uri())
        widths = driver.execute_script(
            "return Array.from(document.images).map(i => i.complete ? i.naturalWidth : -1)")
        shot = tmp_path / "report.png"
        assert driver.save_screenshot(str(shot))
    finally:
        driver.quit()
    assert len(widths) == 4 and all(w > 0 for w in widths), widths
    assert _painted_fraction(shot) > 0.02


def _painted_fraction(png: Path) -> float:
    """The share of screenshot pixels that are not background white."""
    from PIL import Image
    import numpy as np
    px = np.asarray(Image.open(png).convert("L"))
    return float((px < 235).mean())
