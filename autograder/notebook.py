"""Reads submissions (plain reasons for broken files) and restores them onto the source notebook."""
from __future__ import annotations

import ast
import codecs
import errno
import json
import os
import re
import stat
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import nbformat

# Bounded cost on the trusted side (issue 9): far above any real submission of this lesson.
MAX_BYTES = 64 * 1024 * 1024      # outputs make notebooks big (a 50 MB print is real); cells are capped apart
MAX_CELLS = 2000
MAX_CELL_CHARS = 200_000
SKIP_TAG = "grader:skip"
SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
_MAGIC = re.compile(r"^(\s*)([%!].*)$")
_HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
_BEGIN_LINE = re.compile(r"[ \t]*### BEGIN HIDDEN TESTS")
_END_LINE = re.compile(r"[ \t]*### END HIDDEN TESTS[ \t]*")
_FLAGS = ("grade", "solution", "locked", "task")


class NotebookError(Exception):
    """The file is not a notebook the grader can read; the message is the plain reason."""


def nbgrader_meta(cell) -> dict | None:
    """The cell's nbgrader metadata when it is well formed, else None (treated as absent).

    Well formed: a dict with schema_version 3 (or none), a string grade_id, boolean flags and
    numeric points. Anything else (schema_version 1, a list as grade_id, null, a string) is
    what an old tool or a hand edit left: never a crash, never trusted."""
    md = cell.get("metadata") if isinstance(cell, dict) else None
    meta = md.get("nbgrader") if isinstance(md, dict) else None
    if not isinstance(meta, dict):
        return None
    gid = meta.get("grade_id")
    if not isinstance(gid, str) or not gid or len(gid) > 200:
        return None
    if meta.get("schema_version", 3) != 3 or isinstance(meta.get("schema_version"), bool):
        return None
    if any(k in meta and not isinstance(meta[k], bool) for k in _FLAGS):
        return None
    if "points" in meta and (isinstance(meta["points"], bool)
                             or not isinstance(meta["points"], (int, float))):
        return None
    return meta


def _meta(cell) -> dict:
    return nbgrader_meta(cell) or {}


# --- cell predicates: the one place that reads a cell's nbgrader role -------------------------
def grade_id(cell) -> str | None:
    """The cell's grade_id when its nbgrader metadata is well formed (nbgrader_meta), else None."""
    return _meta(cell).get("grade_id")


def declared_grade_id(cell) -> str | None:
    """The grade_id written in the cell's nbgrader metadata, well formed or not: for code that
    repairs or rewrites that metadata (the nbgrader step), not for deciding what a cell is."""
    md = cell.get("metadata") if isinstance(cell, dict) else None
    meta = md.get("nbgrader") if isinstance(md, dict) else None
    gid = meta.get("grade_id") if isinstance(meta, dict) else None
    return gid if isinstance(gid, str) else None


def declared_cell_index(nb, grade_id: str) -> int | None:
    """Index of the first cell whose declared grade_id (declared_grade_id) is `grade_id`, else None."""
    for i, cell in enumerate(nb.cells):
        if declared_grade_id(cell) == grade_id:
            return i
    return None


def is_grade_cell(cell) -> bool:
    """Graded (nbgrader `grade: true`): a test cell, or a solution cell graded by hand."""
    return bool(_meta(cell).get("grade"))


def is_test_cell(cell) -> bool:
    m = _meta(cell)
    return bool(m.get("grade")) and not m.get("solution")


def is_solution_cell(cell) -> bool:
    return bool(_meta(cell).get("solution"))


def is_locked_cell(cell) -> bool:
    return bool(_meta(cell).get("locked"))


def skipped(cell) -> bool:
    tags = cell.get("metadata", {}).get("tags") if isinstance(cell.get("metadata"), dict) else None
    return isinstance(tags, list) and SKIP_TAG in tags


def deduplicated_ids(cells) -> list[str | None]:
    """Each cell's grade_id after nbgrader's DeduplicateIds rule, shared by the engine and the
    nbgrader step: among the cells that are grade, solution or locked cells, the LAST one with
    a grade_id keeps it; the earlier ones lose their nbgrader metadata (None here) and become
    ordinary cells. So the engine grades exactly the cell the instructor sees in autograded/."""
    out: list[str | None] = [None] * len(cells)
    seen: set[str] = set()
    for i in range(len(cells) - 1, -1, -1):
        meta = nbgrader_meta(cells[i])
        if meta is None:
            continue
        gid = meta["grade_id"]
        if not any(meta.get(f) for f in ("grade", "solution", "locked")):
            out[i] = gid          # nbgrader's DeduplicateIds leaves these alone, so do we
            continue
        if gid not in seen:
            seen.add(gid)
            out[i] = gid
    return out


def read_submission_bytes(path: str | Path, *, max_bytes: int = MAX_BYTES) -> bytes:
    """The bytes of a submission that is a regular file, read without following a symlink.

    O_NOFOLLOW refuses a symlink as the last path component; fstat on the open descriptor
    refuses a FIFO, device or directory (no race between the check and the read)."""
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) \
        | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise NotebookError(f"no file at {path.name}") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotebookError(f"{path.name} is a symbolic link, not a file: upload the notebook "
                                "itself") from None
        raise NotebookError(f"{path.name} cannot be opened ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotebookError(f"{path.name} is not a regular file: upload the notebook itself")
        if st.st_size > max_bytes:
            raise NotebookError(_too_big(st.st_size, max_bytes))
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:     # the file grew while we read it
                raise NotebookError(_too_big(total, max_bytes))
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _too_big(size: int, cap: int) -> str:
    return (f"the file is {size / 2**20:.1f} MB; notebooks over {cap // 2**20} MB are not graded "
            "(clear large outputs and resubmit)")


def read_submission(path: str | Path) -> nbformat.NotebookNode:
    """The submission as an nbformat-4 notebook, or NotebookError saying plainly what is wrong."""
    return parse_submission(read_submission_bytes(path))


def _decode(raw: bytes) -> str:
    """UTF-8 with or without a BOM (Windows tools add one); UTF-16 when its BOM says so."""
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    elif raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            raise NotebookError("the file is not text (is it really a .ipynb notebook?)") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise NotebookError("the file is not text (is it really a .ipynb notebook?)") from None


def parse_submission(raw: bytes) -> nbformat.NotebookNode:
    """A submission's bytes as an nbformat-4 notebook (see read_submission).

    Liberal in what it reads: a BOM, CRLF line ends, nbformat 4.x and 3, cells with odd or
    missing metadata. Bounded in what it costs: bytes, cells and per-cell size are capped and
    deep nesting is refused, each with a sentence the student can act on."""
    if len(raw) > MAX_BYTES:
        raise NotebookError(_too_big(len(raw), MAX_BYTES))
    text = _decode(raw)
    # a byte count is milliseconds where parsing 100k cells is seconds: absurd counts stop here
    rough = text.count('"cell_type"')
    if rough > 10 * MAX_CELLS:
        _check_count(rough)
    try:
        data = json.loads(text)
    except (RecursionError, MemoryError):
        raise NotebookError("the file's JSON is nested far too deeply to be a notebook") from None
    except ValueError as exc:
        where = f" at line {exc.lineno}" if hasattr(exc, "lineno") else ""
        raise NotebookError(f"the file is not valid notebook JSON ({getattr(exc, 'msg', exc)}{where}); "
                            "it may be truncated or edited by hand") from None
    if not isinstance(data, dict) or "nbformat" not in data:
        raise NotebookError("the file is JSON but not a Jupyter notebook (no 'nbformat' field)")
    try:
        nb = _to_v4(data)
    except NotebookError:
        raise
    except (RecursionError, MemoryError):
        raise NotebookError("the notebook is nested far too deeply to be read") from None
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds for bad structure
        raise NotebookError(f"the notebook's structure is broken ({type(exc).__name__})") from None
    return nb


def _to_v4(data: dict) -> nbformat.NotebookNode:
    major = data.get("nbformat")
    if major == 3:
        sheets = data.get("worksheets")
        count = sum(len(w.get("cells") or []) for w in sheets if isinstance(w, dict)) \
            if isinstance(sheets, list) else 0
        _check_count(count)
        nb = nbformat.convert(nbformat.from_dict(data), 4)
    elif major == 4:
        nb = nbformat.from_dict(data)
    else:
        raise NotebookError(f"the notebook format {major!r} is not supported (nbformat 4 or 3 is); "
                            "save it again with a current Jupyter")
    cells = nb.get("cells")
    if not isinstance(cells, list):
        raise NotebookError("the notebook has no list of cells")
    _check_count(len(cells))
    kept = []
    for i, cell in enumerate(cells):
        if not isinstance(cell, dict) or not isinstance(cell.get("cell_type"), str):
            continue                   # not a cell at all: nothing to grade in it
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(s for s in source if isinstance(s, str))
        elif not isinstance(source, str):
            source = ""
        if len(source) > MAX_CELL_CHARS:
            raise NotebookError(f"cell {i + 1} holds {len(source):,} characters; cells over "
                                f"{MAX_CELL_CHARS:,} are not graded (is data pasted into it?)")
        cell["source"] = source.replace("\r\n", "\n").replace("\r", "\n")
        if not isinstance(cell.get("metadata"), dict):
            cell["metadata"] = nbformat.NotebookNode()
        kept.append(cell)
    nb["cells"] = kept
    return nb


def _check_count(count: int) -> None:
    if count > MAX_CELLS:
        raise NotebookError(f"the notebook has {count:,} cells; notebooks over {MAX_CELLS:,} cells "
                            "are not graded (the lesson's notebook has about 40)")


def strip_magics(source: str) -> str:
    """IPython magics and shell escapes are not Python: the grader skips those lines. Only a
    line that starts a statement is one (as in IPython): `!=` or `%` continuing an expression
    inside brackets or after a backslash is Python."""
    lines = source.splitlines()
    if lines and lines[0].startswith("%%"):
        lines = lines[1:]  # a cell magic such as %%time: the body is still Python
    out, depth, continued = [], 0, False
    for line in lines:
        starts = depth == 0 and not continued
        if starts and _MAGIC.match(line) and not line.lstrip().startswith("!="):
            out.append(_MAGIC.sub(r"\1pass  # notebook magic skipped by the grader", line))
        else:
            out.append(line)
            depth = max(depth + _bracket_balance(line), 0)
        continued = line.rstrip().endswith("\\")
    return "\n".join(out)


def _bracket_balance(line: str) -> int:
    """Opened minus closed brackets on a line, outside quotes and comments (roughly: enough to
    tell whether the next line continues an expression)."""
    balance, quote = 0, None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote and line[i - 1] != "\\":
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            break
        elif ch in "([{":
            balance += 1
        elif ch in ")]}":
            balance -= 1
    return balance


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


def _text(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def without_hidden_tests(source: str) -> str:
    """The text without its hidden-test regions (a BEGIN line through the next END line, as
    nbgrader's ClearHiddenTests removes them), in one pass over the lines: a pattern matched
    from every BEGIN line of a student's cell took time growing with the square of its size."""
    if _HIDDEN_BEGIN not in source:
        return source
    lines = source.split("\n")
    keep = [True] * len(lines)
    start = None
    for i, line in enumerate(lines):
        if start is None:
            if _BEGIN_LINE.match(line):
                start = i
        elif _END_LINE.fullmatch(line):
            keep[start:i + 1] = [False] * (i + 1 - start)
            start = None        # a region never closed is kept, as nbgrader keeps it
    last = len(lines) - 1
    return "".join(line + ("\n" if i < last else "") for i, line in enumerate(lines) if keep[i])


def _same_text(source: str) -> str:
    """A locked cell's text as a student's copy of it shows it (hidden tests gone, spacing aside)."""
    source = without_hidden_tests(source)
    return "\n".join(line.strip() for line in source.splitlines() if line.strip())


@lru_cache(maxsize=8)
def _rubric_defines(parts: tuple[str, ...]) -> dict[str, tuple[str, ...]] | None:
    """The `defines` of the rubric whose parts are `parts` (restore is called with names only)."""
    from . import rubric as rubric_mod
    for folder in sorted(rubric_mod.ASSIGNMENTS.iterdir()) if rubric_mod.ASSIGNMENTS.is_dir() else []:
        if (folder / "assignment.toml").is_file():
            try:
                r = rubric_mod.load(folder.name)
            except Exception:  # noqa: BLE001 - another assignment's broken rubric is not ours
                continue
            if tuple(r.part_names) == parts:
                return {p.part: p.defines for p in r.parts}
    return None


def _defines(source_nb, parts, defines) -> dict[str, set[str]]:
    """Per part, the names its cell must bind: the rubric's, else what the source cell binds."""
    known = defines if defines is not None else (_rubric_defines(tuple(parts)) or {})
    out = {}
    for cell in source_nb.cells:
        gid = grade_id(cell)
        if gid in parts and is_solution_cell(cell):
            names = set(known.get(gid) or ()) or {n for n in top_level_bindings(_text(cell)) or ()
                                                  if not n.startswith("_")}
            if names:
                out[gid] = names
    return out


@dataclass
class _Cell:
    source: str
    gid: str | None           # the source cell this student cell stands for, None if their own
    found_by: str = ""        # how a cell without metadata was recognised


def _student_cells(nb, source_nb, parts, defines) -> tuple[list[_Cell], list[str]]:
    """The student's code cells, each labelled with the source cell it stands for.

    One rule with nbgrader for duplicated grade_ids (deduplicated_ids: the last wins, earlier
    copies are ordinary cells that run in place). Cells that lost their metadata are
    recognised, in order: a copy of a locked cell by its text, a part's cell by the names it
    binds (the rubric's `defines`), searched only between the parts found around it."""
    source_ids = {g for g in (grade_id(c) for c in source_nb.cells) if g}
    every = [c for c in nb.cells if isinstance(c, dict)]
    # deduplicated over every cell, as nbgrader does: a later markdown cell can take the id too
    cells = [_Cell(_text(c), gid if gid in source_ids else None)
             for c, gid in zip(every, deduplicated_ids(every)) if c.get("cell_type") == "code"]
    taken = {c.gid for c in cells if c.gid}
    locked = {}
    for c in source_nb.cells:
        gid = grade_id(c)
        if c.cell_type == "code" and gid and gid not in taken and not is_solution_cell(c):
            locked.setdefault(_same_text(_text(c)), gid)
    for cell in cells:
        if cell.gid is None and cell.source.strip():
            gid = locked.pop(_same_text(cell.source), None)
            if gid:
                cell.gid, cell.found_by = gid, "text"
                taken.add(gid)
    notes, found = [], []
    want = _defines(source_nb, parts, defines)
    order = [grade_id(c) for c in source_nb.cells if grade_id(c)]
    for gid in [g for g in order if g in want and g not in taken]:
        rank = order.index(gid)
        lo = max((i for i, c in enumerate(cells) if c.gid and order.index(c.gid) < rank), default=-1)
        hi = min((i for i, c in enumerate(cells) if c.gid and order.index(c.gid) > rank),
                 default=len(cells))
        for i in range(lo + 1, hi):
            if cells[i].gid is None and want[gid] <= (top_level_bindings(cells[i].source) or set()):
                cells[i].gid, cells[i].found_by = gid, "defines"
                taken.add(gid)
                found.append(gid)
                break
    if found:
        notes.append(f"Your cells for {', '.join(f'`{g}`' for g in found)} have no nbgrader "
                     "metadata (pasted into a new notebook?): each was found by the names it "
                     "defines, in the notebook's order, and graded as usual.")
    return cells, notes


def restore(student_nb, source_nb, parts: list[str],
            defines: dict[str, tuple[str, ...]] | None = None) -> Plan:
    """Locked cells from the source, solution cells from the student, added cells kept in place.

    Test cells and cells tagged grader:skip are not run: hidden suites run on the trusted side.
    `defines` (part -> names its cell binds) finds a part's cell that lost its metadata; by
    default it is the rubric's whose parts are `parts`."""
    student_cells, notes = _student_cells(student_nb, source_nb, parts, defines)
    student: dict[str, str] = {}
    added: dict[str | None, list[str]] = {}
    anchor = None
    for cell in student_cells:
        if cell.gid is not None:
            if cell.gid not in student:
                student[cell.gid] = cell.source
            anchor = cell.gid
        else:
            added.setdefault(anchor, []).append(cell.source)
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
    notes += [f"Your notebook has no solution cell `{p}` (deleted, or its metadata changed): "
              "that part was graded on what your other cells defined." for p in missing]
    notes += solution_marker_notes(solutions)
    return Plan(cells=cells, part_after=part_after, solutions=solutions, added=part_added,
                missing=missing, notes=notes)


def solution_marker_notes(solutions: dict[str, str]) -> list[str]:
    """A solution cell that still holds nbgrader's markers came from the instructor's notebook,
    not the student's release copy: graded as it is, and said plainly for the instructor."""
    return [f"Your `{gid}` cell still holds nbgrader's solution markers (`### BEGIN SOLUTION`): "
            "it looks copied from the instructor's notebook; your instructor will review it."
            for gid, code in solutions.items() if any(m in code for m in SOLUTION_MARKERS)]


SOLUTION_REMOVED = "# (the solution is not shipped with the grading bundle)\n"


def grading_copy(raw: bytes) -> bytes:
    """The source notebook as a grading bundle ships it: every solution cell emptied and every
    hidden-test region removed. The engine needs only the locked cells, the ids and the roles."""
    nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
    for cell in nb.cells:
        if is_solution_cell(cell):
            cell.source = SOLUTION_REMOVED
        elif cell.cell_type == "code":
            cell.source = without_hidden_tests(cell.source)
        cell.pop("outputs", None) if cell.cell_type != "code" else cell.update(outputs=[])
    return nbformat.writes(nb).encode("utf-8")


def top_level_bindings(source: str) -> set[str] | None:
    """Names a cell binds in the notebook's namespace (def, class, assignment, import, for,
    with, del, or `global` in a function); None when it can't be told (a syntax error)."""
    found = _bindings(source)
    return None if found is None else set(found)


@lru_cache(maxsize=4096)
def _bindings(source: str) -> frozenset[str] | None:
    """top_level_bindings, parsed once per distinct text: the locked cells are the same in
    every submission of a cohort."""
    if len(source) > 200_000:
        return None  # not parsed on the trusted side: treated as binding anything
    try:
        tree = ast.parse(strip_magics(source))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None     # `1+1+...` 60k long overflows the parser: not told, never a crash
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

    try:
        visit(tree)
    except (RecursionError, MemoryError):
        return None     # parsed, but nested deeper than a walk can follow: not told either
    return frozenset(names)
