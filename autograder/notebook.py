"""Reads submissions (plain reasons for broken files) and restores them onto the source notebook."""
from __future__ import annotations

import ast
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

MAX_BYTES = 100 * 1024 * 1024
SKIP_TAG = "grader:skip"
_MAGIC = re.compile(r"^(\s*)([%!].*)$")


class NotebookError(Exception):
    """The file is not a notebook the grader can read; the message is the plain reason."""


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def grade_id(cell) -> str | None:
    gid = _meta(cell).get("grade_id")
    return gid if isinstance(gid, str) else None


def is_test_cell(cell) -> bool:
    m = _meta(cell)
    return bool(m.get("grade")) and not m.get("solution")


def is_solution_cell(cell) -> bool:
    return bool(_meta(cell).get("solution"))


def skipped(cell) -> bool:
    return SKIP_TAG in (cell.get("metadata", {}).get("tags") or [])


def read_submission(path: str | Path) -> nbformat.NotebookNode:
    """The submission as an nbformat-4 notebook, or NotebookError saying plainly what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise NotebookError(f"no file at {path.name}")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise NotebookError(f"the file is {size // 2**20} MB; notebooks over "
                            f"{MAX_BYTES // 2**20} MB are not graded (clear large outputs and resubmit)")
    return parse_submission(path.read_bytes())


def parse_submission(raw: bytes) -> nbformat.NotebookNode:
    """A submission's bytes as an nbformat-4 notebook (see read_submission)."""
    if len(raw) > MAX_BYTES:
        raise NotebookError(f"the file is {len(raw) // 2**20} MB; notebooks over "
                            f"{MAX_BYTES // 2**20} MB are not graded (clear large outputs and resubmit)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise NotebookError("the file is not text (is it really a .ipynb notebook?)") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise NotebookError(f"the file is not valid notebook JSON ({exc.msg} at line {exc.lineno}); "
                            "it may be truncated or edited by hand") from None
    if not isinstance(data, dict) or "nbformat" not in data:
        raise NotebookError("the file is JSON but not a Jupyter notebook (no 'nbformat' field)")
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds for bad structure
        raise NotebookError(f"the notebook's structure is broken ({type(exc).__name__})") from None
    if not isinstance(nb.get("cells"), list):
        raise NotebookError("the notebook has no list of cells")
    return nb


def strip_magics(source: str) -> str:
    """IPython magics and shell escapes are not Python: the grader skips those lines."""
    lines = source.splitlines()
    if lines and lines[0].startswith("%%"):
        lines = lines[1:]  # a cell magic such as %%time: the body is still Python
    return "\n".join(_MAGIC.sub(r"\1pass  # notebook magic skipped by the grader", line)
                     for line in lines)


@dataclass
class PlanCell:
    source: str
    label: str            # grade_id, or "added after <grade_id>" for the student's own cells
    origin: str           # "source" (locked, from the instructor) or "student"


@dataclass
class Plan:
    """The code the grader runs, in order, and where each part's cells end."""
    cells: list[PlanCell]
    part_after: dict[str, int]
    solutions: dict[str, str]                   # part -> the student's solution cell code
    added: dict[str, list[str]] = field(default_factory=dict)  # part -> code of cells added after it
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def part_code(self, part: str) -> str:
        """Everything the student wrote that belongs to this part (for static checks)."""
        return "\n\n".join([self.solutions.get(part, "")] + self.added.get(part, []))

    def wire(self) -> list[dict]:
        return [{"source": c.source, "grade_id": c.label} for c in self.cells]


def _student_cells(nb, source_ids: set[str]) -> tuple[dict[str, str], dict[str | None, list[str]]]:
    """The student's code by grade_id (first wins, as nbgrader's DeduplicateIds), and the
    unmarked code cells they added, keyed by the known cell they follow."""
    by_id: dict[str, str] = {}
    added: dict[str | None, list[str]] = {}
    anchor = None
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        gid = grade_id(cell)
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        if gid in source_ids and gid not in by_id:
            by_id[gid] = source
            anchor = gid
        else:
            added.setdefault(anchor, []).append(source)
    return by_id, added


def restore(student_nb, source_nb, parts: list[str]) -> Plan:
    """Locked cells from the source, solution cells from the student, added cells kept in place.

    Test cells and cells tagged grader:skip are not run: hidden suites run on the trusted side."""
    source_ids = {g for g in (grade_id(c) for c in source_nb.cells) if g}
    student, added = _student_cells(student_nb, source_ids)
    cells, part_after, solutions, part_added, missing = [], {}, {}, {}, []
    for extra in added.get(None, []):
        cells.append(PlanCell(strip_magics(extra), "added at the top", "student"))
    for cell in source_nb.cells:
        gid = grade_id(cell)
        if cell.cell_type != "code":
            continue
        runnable = not is_test_cell(cell) and not skipped(cell)
        if is_solution_cell(cell):
            if gid in student:
                code = student[gid]
            else:
                code = ""
                if gid in parts:
                    missing.append(gid)
            solutions[gid] = code
            cells.append(PlanCell(strip_magics(code), gid, "student"))
        elif runnable:
            cells.append(PlanCell(cell.source, gid or "locked", "source"))
        for extra in added.get(gid, []) if gid else []:
            cells.append(PlanCell(strip_magics(extra), f"added after {gid}", "student"))
            if is_solution_cell(cell):
                part_added.setdefault(gid, []).append(extra)
        if gid in parts and is_solution_cell(cell):
            part_after[gid] = len(cells) - 1
    notes = [f"Your notebook has no solution cell `{p}` (deleted, or its metadata changed): "
             "that part was graded on what your other cells defined." for p in missing]
    return Plan(cells=cells, part_after=part_after, solutions=solutions, added=part_added,
                missing=missing, notes=notes)


def submission_key(path_or_nb, assignment: str = "gradient_backward") -> str:
    """sha256 over what the grader would run for this submission, plus the kit's fingerprint:
    equal keys give equal results, so it is the cache key. Unreadable files key on their bytes."""
    from . import engine, rubric  # late: engine imports this module
    fp = engine.fingerprint(assignment)
    try:
        nb = path_or_nb if isinstance(path_or_nb, dict) else read_submission(path_or_nb)
    except NotebookError:
        data = Path(path_or_nb).read_bytes() if Path(path_or_nb).is_file() else b""
        return hashlib.sha256(fp.encode() + b"\0unreadable\0" + data).hexdigest()
    r = rubric.load(assignment)
    plan = restore(nb, engine.source_notebook(assignment), r.part_names)
    blob = json.dumps([plan.wire(), plan.part_after], sort_keys=True).encode()
    return hashlib.sha256(fp.encode() + b"\0" + blob).hexdigest()


def top_level_bindings(source: str) -> set[str] | None:
    """Names a cell binds in the notebook's namespace (def, class, assignment, import, for,
    with, del, or `global` in a function); None when it can't be told (a syntax error)."""
    if len(source) > 200_000:
        return None  # not parsed on the trusted side: treated as binding anything
    try:
        tree = ast.parse(strip_magics(source))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    names: set[str] = {n for node in ast.walk(tree) if isinstance(node, ast.Global) for n in node.names}

    def visit(node):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            return  # what a body binds is local to it (bar `global`, counted above)
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names
