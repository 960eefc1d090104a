"""Builds submission notebooks from the source notebook with some solution cells replaced."""
from __future__ import annotations

import copy
from pathlib import Path

import nbformat

from . import rubric as rubric_mod


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


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
    for cell in nb.cells:
        gid = _grade_id(cell)
        cell = copy.deepcopy(cell)
        if gid in overrides:
            cell.source = overrides.pop(gid)
        cell.outputs = [] if cell.cell_type == "code" else cell.get("outputs")
        if cell.cell_type != "code":
            cell.pop("outputs", None)
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
