"""Builds submission notebooks from the source notebook with some solution cells replaced."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import rubric as rubric_mod
from .notebook import grade_id


def build_submission(overrides: dict[str, str] | None = None, *, assignment: str = "gradient_backward",
                     extra_cells: dict[str, list[str]] | None = None,
                     source: Path | None = None) -> nbformat.NotebookNode:
    """The source notebook with the solution cells named in `overrides` replaced by that code.

    `extra_cells` maps a grade_id to code cells (no nbgrader metadata) the "student" added after it.
    Solution cells not overridden keep the instructor's answers, so only the overridden parts differ.
    """
    src = source or rubric_mod.load(assignment).source
    nb = nbformat.read(str(src), as_version=4)
    overrides = dict(overrides or {})
    extra_cells = extra_cells or {}
    cells = []
    for cell in nb.cells:  # a fresh read: the cells can be changed in place
        gid = grade_id(cell)
        if gid in overrides:
            cell.source = overrides.pop(gid)
        if cell.cell_type == "code":
            cell.outputs = []
        cells.append(cell)
        for code in extra_cells.get(gid, []):
            cells.append(nbformat.v4.new_code_cell(code))
    if overrides:
        raise KeyError(f"no solution cell with grade_id {sorted(overrides)}")
    nb.cells = cells
    return nb


def write_submission(path: Path, overrides: dict[str, str] | None = None, **kw) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(build_submission(overrides, **kw), str(path))
    return path


# --- submission variants: solution-cell code with headers saying what grading must give ----

_GRADE_ID = re.compile(r"^# (grade_id|added_after): *(\S+) *$", re.M)
_HEADER = re.compile(r"^# (expect|mistakes|flags|notebook): *(.+)$", re.M)
# `# pending: why`: the variant states what grading must give once work named there lands.
_PENDING = re.compile(r"^# pending: *(.+)$", re.M)


@dataclass
class Variant:
    """One variant file: the solution cells it replaces and what grading it must give.

    `# grade_id: X` starts the code of cell X; `# added_after: X` the code of a cell the
    student added after cell X; `# notebook: release` starts from the student's release
    notebook (every stub unanswered) instead of the solutions; `# expect: mse_grad=0
    others=full`, `# mistakes: part=id,id` and `# flags: part=flag` state the expected
    result; `# pending: why` says that it is not reached yet, and why. Tests, the sample class
    and the benchmark all build their submissions from such files."""
    name: str
    overrides: dict[str, str]
    expect: dict[str, str] = field(default_factory=dict)   # part -> 0 | full | partial | less | any
    mistakes: dict[str, set[str]] = field(default_factory=dict)
    flags: dict[str, set[str]] = field(default_factory=dict)
    pending: str = ""
    added: dict[str, list[str]] = field(default_factory=dict)
    base: str = "source"    # source | release

    def build(self, path: Path) -> Path:
        """Write this variant as a notebook file."""
        src = None
        if self.base == "release":
            r = rubric_mod.load()
            src = rubric_mod.KIT_ROOT / "release" / r.name / r.source.name
        return write_submission(path, self.overrides, extra_cells=self.added, source=src)

    def expected_score(self, part: str) -> str:
        return self.expect.get(part, self.expect.get("others", self.expect.get("all", "full")))

    def accepts(self, part: str, score: float, max_score: float) -> bool:
        """Does this score meet the expectation: full, partial, less (than full), any, or a number?"""
        want = self.expected_score(part)
        named = {"full": score == max_score, "partial": 0 < score < max_score,
                 "less": score < max_score, "any": True}
        return named[want] if want in named else abs(score - float(want)) < 1e-9


def _pairs(text: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in text.split())


def read_variant(path: Path, **substitutions: str) -> Variant:
    """Parse a variant file; `__KEY__` placeholders are replaced by `substitutions[key]`."""
    text = Path(path).read_text()
    for key, value in substitutions.items():
        text = text.replace(f"__{key.upper()}__", value)
    heads: dict[str, dict[str, str]] = {}
    for kind, rest in _HEADER.findall(text):
        heads.setdefault(kind, {}).update({rest.strip(): ""} if kind == "notebook" else _pairs(rest))
    starts = list(_GRADE_ID.finditer(text))
    overrides: dict[str, str] = {}
    added: dict[str, list[str]] = {}
    for i, m in enumerate(starts):
        code = _PENDING.sub("", _HEADER.sub("", text[m.end():(
            starts[i + 1].start() if i + 1 < len(starts) else None)])).strip("\n") + "\n"
        if m.group(1) == "grade_id":
            overrides[m.group(2)] = code
        else:
            added.setdefault(m.group(2), []).append(code)
    ids = lambda d: {k: set(v.split(",")) for k, v in d.items()}  # noqa: E731
    base = next(iter(heads.get("notebook", {"source": ""})), "source")
    pending = "; ".join(m.strip() for m in _PENDING.findall(text))
    return Variant(Path(path).stem, overrides, heads.get("expect", {}),
                   ids(heads.get("mistakes", {})), ids(heads.get("flags", {})), pending, added, base)
