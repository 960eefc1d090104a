"""Stored XSS: a student's markup is inert in every page rendered for someone else (feedback, formgrader, report)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from nbconvert.exporters import HTMLExporter
from traitlets.config import Config

from intake_uploads import correct
from nbgrader_course import ASSIGNMENT, new_course, run, submit
from autograder import report
from autograder import rubric as rubric_mod
from autograder.nbgrader_integration.clean_submission import CleanSubmission

pytestmark = pytest.mark.nbgrader

PAYLOAD = "document.title='pwned'"
ATTACKS = {
    "markdown": f'<img src=x onerror="{PAYLOAD}"> my notes',
    "raw": f"<script>{PAYLOAD}</script>",
    "svg": f'<svg><animate onbegin="{PAYLOAD}" attributeName=x dur=1s>',
}


def hostile_notebook() -> dict:
    """A correct notebook plus markup in a markdown cell, a raw cell, an HTML output and a tag."""
    nb = json.loads(nbformat.writes(correct()))
    nb["cells"].append({"cell_type": "markdown", "id": "xss-md", "metadata": {},
                        "source": ATTACKS["markdown"] + "\n\n" + ATTACKS["svg"]})
    nb["cells"].append({"cell_type": "raw", "id": "xss-raw", "metadata": {"format": "text/html"},
                        "source": ATTACKS["raw"]})
    nb["cells"].append({"cell_type": "code", "id": "xss-out", "execution_count": 1,
                        "metadata": {"tags": [f'x"><img src=y onerror="{PAYLOAD}">']},
                        "source": "1", "outputs": [{"output_type": "display_data", "metadata": {},
                                                    "data": {"text/html": ATTACKS["markdown"],
                                                             "application/javascript": PAYLOAD}}]})
    return nb


class _Active(HTMLParser):
    """Collects what a browser would run: on* handlers, scripts holding the payload, js: URLs."""

    def __init__(self):
        super().__init__()
        self.found, self._in_script = [], False

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name.startswith("on") or (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value!r}>")
        self._in_script = tag == "script"

    def handle_data(self, data):
        if self._in_script and "pwned" in data:
            self.found.append(f"<script>{data[:80]}")

    def handle_endtag(self, tag):
        self._in_script = False


def active_payloads(page: str) -> list[str]:
    parser = _Active()
    parser.feed(page)
    return [f for f in parser.found if "pwned" in f]


def formgrade_page(notebook: Path) -> str:
    """The formgrader's submission view as its handler renders it (same exporter, template, resources)."""
    from nbgrader.server_extensions.formgrader import handlers
    c = Config()
    c.HTMLExporter.template_name = "formgrade"
    c.HTMLExporter.extra_template_basedirs = [handlers.template_path]
    resources = {"assignment_id": ASSIGNMENT, "notebook_id": ASSIGNMENT, "submission_id": "s1",
                 "index": 0, "total": 1, "base_url": "", "student": "htmlhazel",
                 "last_name": None, "first_name": None, "notebook_path": "x"}
    return HTMLExporter(config=c).from_filename(str(notebook), resources=resources)[0]


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory) -> Path:
    course = new_course(tmp_path_factory.mktemp("xss"))
    submit(course, "htmlhazel", json.dumps(hostile_notebook()))
    run("autograder", "autograde", ASSIGNMENT, "--jobs", "1", cwd=course, timeout=900)
    run("nbgrader", "generate_feedback", ASSIGNMENT, "--force", cwd=course)
    return course


def test_the_unsanitized_pages_would_run_the_payload(graded_course):
    """Is the attack real: rendered as submitted, does the formgrader page carry live handlers?"""
    raw = graded_course / "submitted" / "htmlhazel" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    found = active_payloads(formgrade_page(raw))
    assert any("onerror" in f for f in found) and any("<script>" in f for f in found), found


def test_feedback_page_is_inert(graded_course):
    """Does nbgrader's feedback HTML show the student's markup as text, with no live handler or script?"""
    page = (graded_course / "feedback" / "htmlhazel" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    assert active_payloads(page) == []
    assert "&lt;img src=x onerror=" in page          # still there for the reader, as text
    assert "100.0 / 100.0" in page or "100 / 100" in page


def test_formgrader_view_is_inert(graded_course):
    """Is the autograded notebook, as the formgrader renders it, free of live student markup?"""
    page = formgrade_page(graded_course / "autograded" / "htmlhazel" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    assert active_payloads(page) == []
    assert "my notes" in page


def test_sanitizer_leaves_honest_markdown_readable():
    """Do headings, emphasis, math, quotes and links survive the bleach?"""
    md = "# Notes\n\n> a quote with $\\frac{\\partial L}{\\partial x}$\n\n**bold** [fast.ai](https://fast.ai)"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(md)])
    out = CleanSubmission().preprocess(nb, {})[0]
    assert out.cells[0].source == md


def test_report_escapes_student_ids_and_reasons():
    """Does the cohort report print a hostile id and reason as text?"""
    rubric = rubric_mod.load(ASSIGNMENT)
    evil = f'<img src=x onerror="{PAYLOAD}">'
    s = report.Student(id=evil, scores={p.part: 0.0 for p in rubric.parts}, error=evil)
    page = report.render(rubric, [s], {}, sources="test")
    assert active_payloads(page) == [] and "&lt;img src=x" in page


@pytest.mark.skipif(not (shutil.which("chromium") and shutil.which("chromedriver")),
                    reason="no Chromium with chromedriver")
def test_in_a_real_browser_the_payload_runs_only_unsanitized(graded_course, tmp_path):
    """In headless Chromium, does the raw render set document.title to 'pwned' and the feedback page not?"""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    raw = tmp_path / "raw.html"
    raw.write_text(formgrade_page(graded_course / "submitted" / "htmlhazel" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"))
    feedback = graded_course / "feedback" / "htmlhazel" / ASSIGNMENT / f"{ASSIGNMENT}.html"
    formgrade = tmp_path / "formgrade.html"
    formgrade.write_text(formgrade_page(graded_course / "autograded" / "htmlhazel" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"))
    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(arg)
    opts.page_load_strategy = "eager"
    opts.binary_location = shutil.which("chromium")
    driver = webdriver.Chrome(options=opts, service=Service(shutil.which("chromedriver")))
    try:
        driver.set_page_load_timeout(30)
        titles = {}
        for name, page in (("raw", raw), ("feedback", feedback), ("formgrade", formgrade)):
            driver.get(page.as_uri())
            driver.execute_script("return new Promise(r => setTimeout(r, 1500))")
            titles[name] = driver.title
    finally:
        driver.quit()
    assert titles["raw"] == "pwned", titles
    assert titles["feedback"] != "pwned" and titles["formgrade"] != "pwned", titles
