"""JupyterLab as students and instructors use it: real Chromium (Selenium) against a real `jupyter lab`."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
ASSIGNMENT = "gradient_backward"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None)
TOKEN = "kit-browser-test"
# The sample class, cut to three students: all right, one part wrong, and a truncated notebook.
STUDENTS = {"hoppergrace": "1001_5001", "turingalan": "1003_5004", "ritchiedennis": "1008_5009"}
WRONG_MSE = "def mse_grad(inp, targ): inp.g = 4. * (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]"
RAISING_MSE = "def mse_grad(inp, targ): inp.g = undefined_name"
RIGHT_MSE = "def mse_grad(inp, targ): inp.g = 2. * (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]"

pytestmark = [pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="chromium and chromedriver are not installed"),
              pytest.mark.browser, pytest.mark.nbgrader]


def _env(home: Path) -> dict:
    env = dict(os.environ, HOME=str(home), PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env.pop("NBGRADER_EXCHANGE", None)
    return env


def _run(args, cwd: Path, env: dict, timeout=300):
    out = subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, f"{args}: {out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A served folder with a student's copy of the release, and a small course that a background job takes
    through the demo's steps (release, collect, autograde, feedback) on three students of the sample class,
    while the student's test runs."""
    top = tmp_path_factory.mktemp("lab")
    home = top / "home"
    home.mkdir()
    env = _env(home)
    student = top / "student" / ASSIGNMENT
    shutil.copytree(ROOT / "release" / ASSIGNMENT, student)
    course = top / "course"
    course.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "source", course / "source", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    small = top / "canvas.zip"
    with zipfile.ZipFile(ROOT / "samples" / "canvas_download.zip") as src, zipfile.ZipFile(small, "w") as dst:
        for name in src.namelist():
            if any(name.startswith(f"{s}_{ids}_") for s, ids in STUDENTS.items()):
                dst.writestr(name, src.read(name))
    py = f'"{sys.executable}" -m'
    steps = " && ".join([
        f"{py} nbgrader generate_assignment {ASSIGNMENT} --force --log-level=WARN",
        f'{py} autograder collect "{small}" {ASSIGNMENT} --course .',
        f"{py} autograder autograde {ASSIGNMENT} --course . --jobs 1",
        f"{py} nbgrader generate_feedback {ASSIGNMENT} --force --log-level=WARN"])
    log = open(top / "course.log", "w")
    job = subprocess.Popen(["bash", "-c", steps], cwd=course, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield {"top": top, "home": home, "env": env, "student": student, "course": course, "job": job}
    finally:
        if job.poll() is None:
            job.kill()
        job.wait()
        log.close()


@pytest.fixture(scope="module")
def graded_course(workspace) -> dict:
    """The course once the background job is done, with each student's total from the kit's gradebook."""
    assert workspace["job"].wait(timeout=300) == 0, (workspace["top"] / "course.log").read_text()[-3000:]
    from autograder.gradebook import scores as gradebook_scores
    course = workspace["course"]
    scores = {s: sum(v or 0 for v in cells.values()) for s, cells in gradebook_scores(course / "gradebook.db", ASSIGNMENT).items()}
    return {"course": course, "scores": scores}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(workspace):
    """`jupyter lab` serving the workspace, started from the course folder (where the formgrader finds its
    nbgrader_config.py), with the app exposed to the page so the test can wait on kernels and cells."""
    port = _free_port()
    args = [str(ROOT / ".venv" / "bin" / "jupyter"), "lab", "--no-browser", f"--port={port}",
            "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={workspace['top']}", "--LabApp.expose_app_in_browser=True",
            f"--LabApp.workspaces_dir={workspace['home'] / 'workspaces'}",
            f"--LabApp.user_settings_dir={workspace['home'] / 'settings'}"]
    if os.geteuid() == 0:
        args.append("--allow-root")
    # No "get notified about Jupyter news?" toast over the screenshots.
    notification = workspace["home"] / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True, exist_ok=True)
    notification.write_text(json.dumps({"fetchNews": "false"}))
    log = open(workspace["top"] / "lab.log", "w")
    proc = subprocess.Popen(args, cwd=workspace["course"], env=workspace["env"], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("jupyter lab did not start: " + (workspace["top"] / "lab.log").read_text()[-3000:])
                time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(workspace):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1000",
                f"--user-data-dir={workspace['top'] / 'chrome'}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    BUILD.mkdir(exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, script: str, timeout: float = 60, what: str = ""):
    """Polls a JavaScript expression until it is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(f"try {{ return ({script}); }} catch (e) {{ return null; }}")
        if value:
            return value
        if time.monotonic() > deadline:
            shot = BUILD / "lab_timeout.png"
            driver.save_screenshot(str(shot))
            raise AssertionError(f"timed out waiting for {what or script} (see {shot})")
        time.sleep(0.25)


NB = "window.jupyterapp.shell.currentWidget"
IDLE = f"{NB}.sessionContext.session.kernel.status === 'idle'"


def cells_where(driver, test: str) -> list[int]:
    return driver.execute_script(
        f"return {NB}.content.widgets.map((c, i) => [c, i]).filter(([c]) => {test}).map(([c, i]) => i)")


CHECK_CELL = "c.model.sharedModel.getSource().startsWith('from gbcheck import')"


def open_notebook(driver, lab: str, path: str) -> list[int]:
    """Opens `path` in Lab and waits until it is the current document, its eight check cells are loaded
    and its kernel is idle (Lab may first restore the workspace's previous notebook, and a busy machine
    shows the cells before their text); returns the check cells' indexes."""
    driver.get(f"{lab}/lab/tree/{path}?token={TOKEN}")
    wait_for(driver, f"{NB}.context.path === {json.dumps(path)} && "
             f"{NB}.content.widgets.filter(c => {CHECK_CELL}).length === 8 && {IDLE}", 120,
             f"{path}, its eight check cells and its kernel")
    return cells_where(driver, CHECK_CELL)


def output_lines(driver, index: int) -> list[str]:
    """The lines of a cell's output as the page shows them (not as the file stores them)."""
    until = time.monotonic() + 10
    while True:  # scrolled into view, an output may be drawn a moment later on a busy machine
        text = driver.execute_script(
            f"const c = {NB}.content.widgets[{index}]; c.node.scrollIntoView({{block: 'center'}});"
            "return [...c.node.querySelectorAll('.jp-OutputArea-output')].map(n => n.innerText || n.textContent)"
            ".join('\\n')")
        if text.strip() or time.monotonic() > until:
            return [line for line in text.splitlines() if line.strip()]
        time.sleep(0.25)


def run_cell_typed(driver, index: int, code: str) -> None:
    """Type `code` into cell `index` as a student would, then Shift+Enter it and the check cell after it."""
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.common.action_chains import ActionChains
    editor = driver.execute_script(
        f"const c = {NB}.content.widgets[{index}]; c.node.scrollIntoView(); return c.node.querySelector('.cm-content')")
    editor.click()
    ActionChains(driver).key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL).perform()
    editor.send_keys(code)
    typed = driver.execute_script(f"return {NB}.content.widgets[{index}].model.sharedModel.getSource()")
    assert typed == code, typed
    before = driver.execute_script(f"return {NB}.content.widgets[{index + 1}].model.executionCount")
    ActionChains(driver).key_down(Keys.SHIFT).send_keys(Keys.ENTER).send_keys(Keys.ENTER).key_up(Keys.SHIFT).perform()
    wait_for(driver, f"{NB}.content.widgets[{index + 1}].model.executionCount > {before or 0} && {IDLE}",
             30, "the part-1 check to run")
    driver.execute_script(f"{NB}.content.widgets[{index + 1}].node.scrollIntoView({{block: 'center'}})")


def test_student_runs_all_types_part_1_checks_validates_and_saves(browser, lab, workspace):
    """In JupyterLab, does Run All reach every part, does a wrong part 1 get a verdict of at most 3 lines
    naming the mistake, an error in it show only the student's own line, a right one pass, Validate answer
    in a short dialog, and the notebook save?"""
    d = browser
    test_cells = open_notebook(d, lab, f"student/{ASSIGNMENT}/{ASSIGNMENT}.ipynb")

    d.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    ran = f"[{','.join(map(str, test_cells))}].every(i => {NB}.content.widgets[i].model.executionCount)"
    wait_for(d, f"{ran} && {IDLE}", 90, "Run All to reach every part's check")
    # An output is drawn after its cell's count is set: on a busy machine, wait for each box.
    drawn = (f"[{','.join(map(str, test_cells))}].every(i => [...{NB}.content.widgets[i].node"
             ".querySelectorAll('.jp-OutputArea-output')].some(n => (n.innerText || n.textContent).trim()))")
    wait_for(d, drawn, 30, "every check's output to be drawn")
    boxes = {i: output_lines(d, i) for i in test_cells}
    d.execute_script(f"{NB}.content.widgets[{test_cells[0]}].node.scrollIntoView({{block: 'center'}})")
    d.save_screenshot(str(BUILD / "lab_student_run_all.png"))
    # Every unfinished part: one line naming the part and what to write, no traceback.
    assert all(len(lines) == 1 and "NotImplementedError: Part" in lines[0] for lines in boxes.values()), boxes

    part1 = cells_where(d, "c.model.sharedModel.getSource().includes('def mse_grad(')")[0]
    assert part1 + 1 == test_cells[0]
    run_cell_typed(d, part1, WRONG_MSE)
    wrong = output_lines(d, test_cells[0])
    d.save_screenshot(str(BUILD / "lab_student_wrong_part1.png"))
    assert 1 <= len(wrong) <= 3, wrong
    assert "Part 1 (mse_grad) failed" in wrong[0] and "twice the expected value" in " ".join(wrong), wrong
    assert not any("gbcheck" in line or "Traceback" in line for line in wrong), wrong

    run_cell_typed(d, part1, RAISING_MSE)
    raised = output_lines(d, test_cells[0])
    d.save_screenshot(str(BUILD / "lab_student_error_part1.png"))
    # The student's own error: their cell and line, then the error; no gbcheck frame.
    assert len(raised) <= 3 and raised[0].startswith("Cell In[") and ", line 1, in mse_grad" in raised[0], raised
    assert raised[-1] == "NameError: name 'undefined_name' is not defined", raised
    assert not any("gbcheck" in line for line in raised), raised

    run_cell_typed(d, part1, RIGHT_MSE)
    right = output_lines(d, test_cells[0])
    d.save_screenshot(str(BUILD / "lab_student_right_part1.png"))
    assert right == ["Part 1 (mse_grad): inp.g matches autograd on a batch of 7."], right

    d.execute_script("return window.jupyterapp.commands.execute('docmanager:save')")
    wait_for(d, f"!{NB}.context.model.dirty", 20, "the save")
    d.find_element("css selector", ".validate-button").click()
    dialog = wait_for(d, "document.querySelector('.jp-Dialog .validation-failed, .jp-Dialog .validation-success')",
                      90, "the Validate dialog")
    text = dialog.text
    d.save_screenshot(str(BUILD / "lab_student_validate.png"))
    lines = [line for line in text.splitlines() if line.strip()]
    (BUILD / "lab_student_validate.txt").write_text(text)
    # Seven unfinished parts, each: "The following cell failed:", its one-line check, its one-line verdict.
    assert len(lines) <= 7 * 3 + 2, text
    assert "check_mse_grad" not in text and all(f"Part {k}: write" in text for k in range(2, 9)), text
    d.execute_script("document.querySelector('.jp-Dialog button.jp-mod-accept, .jp-Dialog button').click()")

    saved = nbformat.read(str(workspace["student"] / f"{ASSIGNMENT}.ipynb"), as_version=4)
    cell = next(c for c in saved.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "mse_grad")
    assert cell.source == RIGHT_MSE


def _table_rows(d, url: str, what: str) -> list[str]:
    d.get(url)
    wait_for(d, "document.querySelectorAll('table tbody tr td').length > 3", 30, what)
    time.sleep(0.5)  # the rows are filled in one batch: let it finish
    return [r.text for r in d.find_elements("css selector", "table tbody tr") if r.text.strip()]


def test_instructor_formgrader_lists_students_with_the_kits_scores(browser, lab, graded_course):
    """After collect and autograde, does the formgrader list each student by name with the kit's score, the
    unreadable notebook as 0 (autograded, not "needs autograding"), and no exchange warning?"""
    d = browser
    scores = graded_course["scores"]
    assert set(scores) == set(STUDENTS) and scores["ritchiedennis"] == 0 and scores["hoppergrace"] == 100
    rows = _table_rows(d, f"{lab}/formgrader/manage_submissions/{ASSIGNMENT}?token={TOKEN}", "the submissions")
    d.save_screenshot(str(BUILD / "lab_formgrader_submissions.png"))
    assert len(rows) == len(STUDENTS), rows
    for student, score in scores.items():
        row = next(r for r in rows if student in r)
        assert "needs autograding" not in row and f"{score:g} / 100" in row, row
        assert "None, None" not in row, row

    # nbgrader's yellow "exchange ... does not exist" banner sits on the assignments page.
    rows = _table_rows(d, f"{lab}/formgrader/manage_assignments?token={TOKEN}", "the assignments")
    assert any(ASSIGNMENT in r for r in rows), rows
    assert "does not exist" not in d.find_element("tag name", "body").text
    assert (graded_course["course"] / "exchange").is_dir()

    rows = _table_rows(d, f"{lab}/formgrader/manage_students?token={TOKEN}", "the students")
    d.save_screenshot(str(BUILD / "lab_formgrader_students.png"))
    for student, score in scores.items():
        assert any(student in r and f"{score:g} / 100" in r for r in rows), (student, rows)


def _submission_id(course: Path, student: str) -> str:
    import sqlite3
    con = sqlite3.connect(str(course / "gradebook.db"))
    try:
        return con.execute("""SELECT sn.id FROM submitted_notebook sn
                              JOIN submitted_assignment sa ON sn.assignment_id = sa.id
                              WHERE sa.student_id = ?""", (student,)).fetchone()[0]
    finally:
        con.close()


def test_grading_view_and_feedback_render_math_offline_and_wrap(browser, lab, graded_course):
    """Do the grading view and a feedback page typeset the math with no CDN, wrap long output lines, show
    the unreadable notebook's reason, and keep the answers free of solution markers?"""
    d = browser
    d.get(f"{lab}/formgrader/submissions/{_submission_id(graded_course['course'], 'turingalan')}/?token={TOKEN}")
    wait_for(d, "document.querySelectorAll('mjx-container svg').length > 5", 30, "MathJax in the grading view")
    body = d.find_element("tag name", "body").text
    assert "### END SOLUTION" not in body and "### BEGIN SOLUTION" not in body
    # formgrade.js finishes its setup: it sets MathJax.loaded once MathJax reports the end of its startup.
    wait_for(d, "window.MathJax && window.MathJax.loaded === true", 15, "formgrade.js setup")
    d.execute_script("document.querySelector('mjx-container').scrollIntoView({block: 'center'})")
    d.save_screenshot(str(BUILD / "lab_formgrader_grading.png"))

    d.get(f"{lab}/formgrader/submissions/{_submission_id(graded_course['course'], 'ritchiedennis')}/?token={TOKEN}")
    wait_for(d, "document.body.innerText.includes('Not graded, scored 0')", 20, "the unreadable notebook's reason")
    assert "not valid notebook JSON" in d.find_element("tag name", "body").text
    d.save_screenshot(str(BUILD / "lab_formgrader_unreadable.png"))

    page = graded_course["course"] / "feedback" / "turingalan" / ASSIGNMENT / f"{ASSIGNMENT}.html"
    assert "cdnjs" not in page.read_text(encoding="utf-8")
    d.get(page.as_uri())
    wait_for(d, "document.querySelectorAll('mjx-container svg').length > 5", 30, "MathJax in the feedback page")
    wraps = d.execute_script("return [...document.querySelectorAll('div.output_area pre')]"
                             ".map(p => getComputedStyle(p).whiteSpace)")
    assert wraps and set(wraps) == {"pre-wrap"}, wraps
    widest = d.execute_script("return Math.max(...[...document.querySelectorAll('div.output_area pre')]"
                              ".map(p => p.scrollWidth - p.clientWidth))")
    assert widest <= 1, widest
    d.execute_script("const pres = [...document.querySelectorAll('div.output_area pre')];"
                     "pres.sort((a, b) => b.innerText.length - a.innerText.length);"
                     "pres[0].scrollIntoView({block: 'center'})")  # the longest message, wrapped
    d.save_screenshot(str(BUILD / "lab_feedback.png"))


def test_source_notebook_opened_run_and_saved_in_lab_still_releases(browser, lab, workspace, graded_course):
    """Instructor: after opening, running and saving the source notebook in JupyterLab (which adds
    language_info, outputs and execution counts), does `nbgrader generate_assignment` still work and give
    the same cells as the committed release?"""
    d = browser
    test_cells = open_notebook(d, lab, f"course/source/{ASSIGNMENT}/{ASSIGNMENT}.ipynb")
    # Up to part 2's check (the training at the end takes long and proves nothing more here).
    d.execute_script(f"{NB}.content.activeCellIndex = {test_cells[1] + 1};"
                     "window.jupyterapp.commands.execute('notebook:run-all-above')")
    wait_for(d, f"{NB}.content.widgets[{test_cells[1]}].model.executionCount && {IDLE}", 60,
             "the source notebook's first parts to run")
    assert output_lines(d, test_cells[0])[0].startswith("Part 1 (mse_grad): inp.g matches autograd")
    d.execute_script("return window.jupyterapp.commands.execute('docmanager:save')")
    wait_for(d, f"!{NB}.context.model.dirty", 20, "the save")
    d.save_screenshot(str(BUILD / "lab_instructor_source.png"))
    source = workspace["course"] / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    # Lab reports the save before the file is rewritten on a busy machine: wait for the file.
    until = time.monotonic() + 30
    while True:
        saved = json.loads(source.read_text())
        if any(c.get("outputs") for c in saved["cells"] if c["cell_type"] == "code") \
                or time.monotonic() > until:
            break
        time.sleep(0.5)
    # Lab did save its run: outputs and execution counts are in the source notebook now.
    assert any(c.get("outputs") for c in saved["cells"] if c["cell_type"] == "code")
    assert saved["metadata"]["language_info"].get("version") or saved["metadata"]["language_info"].get("mimetype")
    _run(["nbgrader", "generate_assignment", ASSIGNMENT, "--force", "--log-level=WARN"], workspace["course"],
         workspace["env"])
    fresh = nbformat.read(str(workspace["course"] / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"), as_version=4)
    committed = nbformat.read(str(ROOT / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"), as_version=4)
    assert [c.source for c in fresh.cells] == [c.source for c in committed.cells]
    assert not any(c.get("outputs") for c in fresh.cells if c.cell_type == "code")
