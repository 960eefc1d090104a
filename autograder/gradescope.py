"""Gradescope: builds autograder.zip, and grades /autograder/submission into results.json inside it."""
from __future__ import annotations

import argparse
import io
import json
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from . import rubric as rubric_mod
from .notebook import NotebookError, grading_copy
from .rubric import KIT_ROOT
from .safe_files import atomic_write, read_regular, regular_files
from .scoring import Result, unreadable

log = logging.getLogger(__name__)

TEMPLATES = KIT_ROOT / "gradescope"
CONFIG = "gradescope.json"
# what the bundle carries besides the two scripts: the grading code and what it reads
KIT_FILES = ("requirements.txt", "constraints.txt", "pyproject.toml")
KIT_DIRS = ("autograder", "assignments")
DEFAULTS = {
    "assignment": "gradient_backward",
    "visibility": "visible",            # the whole result: visible | after_due_date | after_published | hidden
    "test_visibility": "visible",       # each part's line
    "stdout_visibility": "hidden",      # the grader's own logs
    "max_test_output": 6000,            # characters per part
    "max_output": 10000,                # characters of the top-level output
    "grade_timeout": 900,               # seconds for one `grade` run, far above a normal 30 s
}
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)       # fixed, so two builds of the same kit are the same bytes


# --- building the bundle -----------------------------------------------------------------
def _bundle_files(kit: Path, source_dir: Path) -> list[tuple[Path, str]]:
    """(file on disk, name in the zip) for everything the bundle holds, sorted."""
    files = [(TEMPLATES / "setup.sh", "setup.sh"), (TEMPLATES / "run_autograder", "run_autograder")]
    files += [(kit / f, f) for f in KIT_FILES]
    for folder in (*(kit / d for d in KIT_DIRS), source_dir):
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and ".ipynb_checkpoints" not in path.parts \
                    and path.suffix != ".pyc":
                files.append((path, path.relative_to(kit).as_posix()))
    return sorted(files, key=lambda f: f[1])


def build(out: Path, *, config: dict | None = None, kit: Path = KIT_ROOT) -> Path:
    """Write autograder.zip: setup.sh and run_autograder at its root, the kit beside them."""
    cfg = {**DEFAULTS, **(config or {})}
    source_dir = rubric_mod.load(cfg["assignment"]).source.parent
    out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        source_nb = rubric_mod.load(cfg["assignment"]).source.resolve()
        for path, name in _bundle_files(kit, source_dir):
            data = path.read_bytes()
            if path.resolve() == source_nb:
                # the instructor's notebook without its solutions and hidden tests: grading needs
                # only its locked cells and ids, and nothing a student could point a link at
                # may hold an answer
                data = grading_copy(data)
            elif path.suffix == ".ipynb":
                continue        # no other notebook (a scratch copy with answers) leaves the kit
            _add(z, name, data, executable=name in ("setup.sh", "run_autograder"))
        _add(z, CONFIG, (json.dumps(cfg, indent=1, sort_keys=True) + "\n").encode())
    atomic_write(out, buf.getvalue(), mode=0o644)
    return out


def _add(z: zipfile.ZipFile, name: str, data: bytes, *, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, _ZIP_TIME)
    info.external_attr = ((0o755 if executable else 0o644) | 0o100000) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    z.writestr(info, data)


def main(*, out: str = "build/autograder.zip", visibility: str | None = None,
         test_visibility: str | None = None) -> int:
    config = {k: v for k, v in (("visibility", visibility), ("test_visibility", test_visibility)) if v}
    path = build(Path(out), config=config)
    print(path)
    return 0


# --- grading one submission folder (also used by the CI template) ------------------------
def pick_notebook(folder: Path, expected: str) -> tuple[Path | None, str]:
    """(the notebook to grade or None, a note for the student).

    Only regular files inside the submission count: a symbolic link (to the kit's notebook, to
    another file) is never followed, and said so. Several notebooks: the one named like the
    assignment wins; otherwise nothing is guessed.
    """
    # dot folders hold checkpoints, .git, or (in CI) the grading kit's own notebook: never the answer
    files, skipped = regular_files(folder)
    found = [p for p in files if p.suffix.lower() == ".ipynb"]
    links = [s for s in skipped if s.what.lower().endswith(".ipynb")]
    refused = " ".join(f"{s.line()}." for s in links)
    if not found:
        return None, " ".join(x for x in (f"No notebook found in your submission: upload {expected}.",
                                          refused) if x)
    if len(found) == 1:
        return found[0], refused
    named = [p for p in found if p.name.lower() == expected.lower()]
    names = ", ".join(p.relative_to(folder).as_posix() for p in found)
    if len(named) == 1:
        return named[0], " ".join(x for x in (f"Several notebooks were submitted ({names}); graded "
                                              f"{expected}, ignored the rest.", refused) if x)
    return None, f"Several notebooks were submitted ({names}) and none is unambiguously {expected}: submit only {expected}."


def grade_via_cli(notebook: Path, assignment: str, *, timeout: float,
                  python: str = sys.executable) -> tuple[Result | None, str]:
    """The contract's command on one notebook: (Result, "") or (None, why it failed)."""
    cmd = [python, "-m", "autograder", "grade", str(notebook), "--json", "--assignment", assignment]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=KIT_ROOT)
    except subprocess.TimeoutExpired:
        return None, f"the grader did not finish within {timeout:g} s"
    sys.stderr.write(proc.stderr[-20000:])  # the grader's logs: stdout_visibility decides who sees them
    try:
        return Result.from_json(json.loads(proc.stdout)), ""
    except (ValueError, KeyError, TypeError):
        return None, f"the grader exited with code {proc.returncode} without a result"


def grade_folder(folder: Path, assignment: str, *, timeout: float) -> Result:
    """A Result for whatever a student put in `folder`: never raises for what they submitted."""
    rubric = rubric_mod.load(assignment)
    expected = rubric.source.name
    notebook, note = pick_notebook(folder, expected)
    if notebook is None:
        return unreadable(rubric, note)
    # The grader reads a private copy taken through an O_NOFOLLOW descriptor: a file swapped for
    # a link after the pick, or reached through a linked folder, is refused, not followed.
    try:
        data = read_regular(notebook, folder)
    except NotebookError as exc:
        return unreadable(rubric, " ".join(x for x in (note, str(exc)) if x))
    with tempfile.TemporaryDirectory(prefix="gb-submission-") as private:
        copy = Path(private) / expected
        copy.write_bytes(data)
        result, failure = grade_via_cli(copy, assignment, timeout=timeout)
    if result is None:
        failed = unreadable(rubric, f"the autograder failed ({failure}); this is not a judgement "
                                    "of your work: please tell your instructor")
        return failed.replace(error=f"grader_failure: {failure}")
    return result.replace(output="\n".join(x for x in (note, result.output) if x))


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n... (output cut at {limit} characters)"


def to_gradescope(result: Result, cfg: dict) -> dict:
    """Gradescope's results.json: the contract's JSON plus visibility, numbering and capped output."""
    data = result.to_json()
    data["output"] = _cap(data["output"], cfg["max_output"])
    data["visibility"] = cfg["visibility"]
    data["stdout_visibility"] = cfg["stdout_visibility"]
    for number, (test, part) in enumerate(zip(data["tests"], result.parts), start=1):
        test["number"] = str(number)
        test["visibility"] = cfg["test_visibility"]
        test["output"] = _cap(f"{part.title}\n{test['output']}".rstrip(), cfg["max_test_output"])
    return data


def run(root: Path) -> Path:
    """Grade `root`/submission and write `root`/results/results.json (Gradescope's layout)."""
    cfg = {**DEFAULTS, **_read_config(root / "source" / CONFIG)}
    result = grade_folder(root / "submission", cfg["assignment"], timeout=cfg["grade_timeout"])
    out = root / "results" / "results.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(to_gradescope(result, cfg), indent=1) + "\n", encoding="utf-8")
    log.info("gradescope: %s/%s -> %s", result.score, result.max_score, out)
    return out


def _read_config(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


if __name__ == "__main__":  # `python -m autograder.gradescope run --root /autograder` (run_autograder)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(prog="python -m autograder.gradescope")
    p.add_argument("action", choices=["run"])
    p.add_argument("--root", default=os.environ.get("AUTOGRADER_ROOT", "/autograder"))
    run(Path(p.parse_args().root))
