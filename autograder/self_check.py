"""The student's self-check: runs a notebook's cells and its public test cells, prints pass/fail per part."""
from __future__ import annotations

import logging
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .notebook import SKIP_TAG, grade_id, is_grade_cell, is_solution_cell, skipped as _skipped

CELL_TIMEOUT = 120          # seconds per cell; the lesson's cells take a few seconds
MAX_MESSAGE_LINES = 30
_HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[^\n]*\n?",
                     re.MULTILINE | re.DOTALL)
_HEADING = re.compile(r"^#+\s*(.+)$", re.MULTILINE)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# nbclient logs timeouts and kernel deaths as ERROR; the summary below says it in plain words
_QUIET = logging.getLogger("autograder.self_check.kernel")
_QUIET.setLevel(logging.CRITICAL)


@dataclass
class Check:
    """One part's public check, as this run saw it."""
    part: str
    title: str
    solution_cell: int | None = None   # index in the notebook
    test_cell: int | None = None
    status: str = "not run"             # passed | failed | not run
    lines: list[str] = field(default_factory=list)


def public_source(cell) -> str:
    """A test cell's code without nbgrader's hidden-test regions (as `nbgrader generate_assignment`)."""
    return _HIDDEN.sub("", cell.source)


def plan(nb) -> tuple[list[int], list[int], dict[str, Check]]:
    """(code cells to run, cells skipped by tag, checks by part), read from the notebook itself.

    A part is a graded test cell `test_<part>`; its title is the heading above its solution cell.
    """
    run, skipped, checks = [], [], {}
    heading = ""
    by_grade_id = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            found = _HEADING.search(cell.source)
            heading = found.group(1).strip() if found else heading
            continue
        if cell.cell_type != "code":
            continue
        if _skipped(cell):
            skipped.append(i)
            continue
        run.append(i)
        gid = grade_id(cell)
        if gid:
            by_grade_id[gid] = (i, heading)
        if gid and is_grade_cell(cell) and gid.startswith("test_"):
            part = gid.removeprefix("test_")
            sol = by_grade_id.get(part)
            checks[part] = Check(part, sol[1] if sol else heading, sol[0] if sol else None, i)
    return run, skipped, checks


_CELL_FRAME = re.compile(r"Cell In\[(\d+)\], line (\d+)")


def _where(output, nb) -> str | None:
    """'line 3 of your cell `mse_grad` (notebook cell 14): <that line>' for the innermost notebook frame of a
    traceback (IPython and gbcheck name a cell's code `Cell In[<execution count>], line <n>`)."""
    frames = _CELL_FRAME.findall(_ANSI.sub("", "\n".join(output.get("traceback", []))))
    if nb is None or not frames:
        return None
    count, line = int(frames[-1][0]), int(frames[-1][1])
    index = next((i for i, c in enumerate(nb.cells)
                  if c.cell_type == "code" and c.get("execution_count") == count), None)
    if index is None:
        return None
    cell = nb.cells[index]
    gid = grade_id(cell)
    name = f"your cell `{gid}`" if is_solution_cell(cell) else f"cell `{gid}`" if gid else "a cell"
    lines = cell.source.splitlines()
    code = f": {lines[line - 1].strip()}" if 0 < line <= len(lines) else ""
    return f"at line {line} of {name} (notebook cell {index + 1}){code}"


def _error_lines(output, nb=None) -> list[str]:
    """The error as the notebook shows it last: `Type: message` (a check's verdict: its message alone),
    and for a raw error in the student's code, the cell and line it came from."""
    ename, evalue = output.get("ename", "Error"), output.get("evalue", "")
    if ename == "CheckFailed":
        return _ANSI.sub("", evalue).rstrip().splitlines()
    if ename == "NotImplementedError" and not evalue.strip():
        evalue = "not written yet (the cell still raises NotImplementedError)"
    lines = _ANSI.sub("", f"{ename}: {evalue}").rstrip().splitlines()
    where = None if ename == "NotImplementedError" else _where(output, nb)
    return lines + [f"  {where}"] if where else lines


def _cell_result(cell, nb=None) -> tuple[list[str], list[str] | None]:
    """(printed lines, error lines or None) of an executed cell."""
    printed, error = [], None
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            printed += _ANSI.sub("", out.text).rstrip("\n").splitlines()
        elif out.output_type == "error":
            error = _error_lines(out, nb)
    return printed, error


def _cap(lines: list[str]) -> list[str]:
    if len(lines) <= MAX_MESSAGE_LINES:
        return lines
    return lines[:MAX_MESSAGE_LINES] + [f"... ({len(lines) - MAX_MESSAGE_LINES} more lines)"]


def judge(nb, checks: dict[str, Check], executed: set[int], timeout: int = CELL_TIMEOUT) -> None:
    """Fill each check's status and message from the executed cells' outputs."""
    for c in checks.values():
        if c.test_cell not in executed:
            c.lines = ["did not run: the notebook stopped before this check (see above)."]
            continue
        sol_error = _cell_result(nb.cells[c.solution_cell], nb)[1] if c.solution_cell is not None else None
        printed, error = _cell_result(nb.cells[c.test_cell], nb)
        if error is None:
            c.status, c.lines = "passed", printed
            continue
        c.status = "failed"
        c.lines = printed + error
        if sol_error and sol_error[0].startswith("KeyboardInterrupt"):
            c.lines = [f"your cell `{c.part}` ran past the {timeout} s limit per cell and was interrupted.",
                       *c.lines]
        elif sol_error:
            c.lines = [f"your cell `{c.part}` itself raised an error:", *sol_error, *c.lines]


def execute(nb, run: list[int], folder: Path, timeout: int) -> tuple[set[int], str | None]:
    """Run the chosen cells in order in a fresh python3 kernel started in `folder`.

    Returns the indices that ran and, when the kernel died, why. Errors do not stop the run:
    each part's check should still report, as it would in the notebook.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    for i in run:  # the saved outputs are the student's, not this run's
        nb.cells[i].outputs = []
        nb.cells[i].execution_count = None
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                            interrupt_on_timeout=True, startup_timeout=120,
                            extra_arguments=["--IPKernelApp.log_level=ERROR"], log=_QUIET,
                            resources={"metadata": {"path": str(folder)}})
    done: set[int] = set()
    with client.setup_kernel():
        for i in run:
            try:
                client.execute_cell(nb.cells[i], i)
            except (DeadKernelError, CellTimeoutError) as exc:
                return done, f"cell {i + 1} stopped the Python kernel ({type(exc).__name__}: {exc})"
            done.add(i)
    return done, None


def _prepare(path: Path):
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and is_grade_cell(cell):
            cell.source = public_source(cell)
    return nb


def render(name: str, checks: dict[str, Check], ran: int, skipped: int, died: str | None,
           setup_errors: list[str]) -> str:
    out = [f"Self-check of {name}: public checks only; the grader runs more tests.",
           f"Ran {ran} code cells; skipped {skipped} cells tagged {SKIP_TAG}.", ""]
    for line in setup_errors:
        out.append(f"NOTE  {line}")
    if died:
        out.append(f"NOTE  {died}")
    if setup_errors or died:
        out.append("")
    for c in checks.values():
        out.append(f"{'PASS' if c.status == 'passed' else 'FAIL'}  {c.title}")
        out += [f"      {line}" for line in _cap(c.lines)]
    passed = sum(c.status == "passed" for c in checks.values())
    out += ["", f"{passed} of {len(checks)} public checks pass."]
    if passed == len(checks):
        out.append("Passing them does not guarantee full marks: the grader's hidden tests are stricter.")
    return "\n".join(out)


def _setup_errors(nb, run: list[int], executed: set[int], checks: dict[str, Check]) -> list[str]:
    """Errors in cells that are not a part's (the setup cells): they break every later part."""
    own = {i for c in checks.values() for i in (c.solution_cell, c.test_cell) if i is not None}
    found = []
    for i in run:
        if i in executed and i not in own:
            error = _cell_result(nb.cells[i], nb)[1]
            if error:
                gid = grade_id(nb.cells[i])
                found.append(f"cell {i + 1}{f' ({gid})' if gid else ''} raised {error[0]}")
    if any("digits.npz" in e or "gbcheck" in e or "gbexplain" in e for e in found):
        found.append("run the check from the folder that holds the notebook, gbcheck.py, gbexplain.py and digits.npz.")
    return found


def run_check(path: Path, *, timeout: int = CELL_TIMEOUT) -> tuple[int, str]:
    """(exit code, text to print): 0 whenever the notebook ran, whatever passed; 1 when it could not."""
    path = Path(path).resolve()
    try:
        nb = _prepare(path)
    except Exception as exc:  # any unreadable file gets one plain sentence
        return 1, f"Cannot read {path.name} as a notebook: {type(exc).__name__}: {exc}"
    run, skipped, checks = plan(nb)
    if not checks:
        return 1, f"{path.name} has no graded test cells: is it the homework notebook?"
    try:
        executed, died = execute(nb, run, path.parent, timeout)
    except Exception as exc:  # the kernel could not start: say so, with what to install
        return 1, (f"Could not start a python3 Jupyter kernel ({type(exc).__name__}: {exc}). "
                   f"Install ipykernel in the environment of {sys.executable}.")
    judge(nb, checks, executed, timeout)
    text = render(path.name, checks, len(executed), len(skipped), died,
                  _setup_errors(nb, run, executed, checks))
    return 0, text


def main(*, notebook: str, timeout: int = CELL_TIMEOUT) -> int:
    code, text = run_check(Path(notebook), timeout=timeout)
    print(text, file=sys.stdout if code == 0 else sys.stderr)
    return code
