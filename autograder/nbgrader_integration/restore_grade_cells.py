"""RestoreGradeCells: every cell of a submission put back in the role the source notebook gave it, before OverwriteCells."""
from __future__ import annotations

import nbformat
from nbformat.notebooknode import NotebookNode

from nbgrader.preprocessors import NbGraderPreprocessor

from . import source_cells
from ..notebook import declared_cell_index, declared_grade_id


class RestoreGradeCells(NbGraderPreprocessor):
    """Resets forged nbgrader metadata and re-inserts deleted grade cells, before OverwriteCells."""
    # OverwriteCells trusts the `grade`/`solution` flags the student sent and crashes on a grade
    # flag set on a solution cell; its add_missing_cells crashes when the cell before a deleted
    # grade cell is gone too. Here the gradebook's source cells decide every role.

    def preprocess(self, nb: NotebookNode, resources: dict):
        info = resources["nbgrader"]
        roles, cells = self._source(info["db_url"], info["notebook"], info["assignment"])
        for cell in nb.cells:
            self._reset_role(cell, roles)
        _insert_missing(nb, roles, cells, self.log)
        return nb, resources

    def _source(self, db_url: str, notebook: str, assignment: str):
        """The source notebook's roles and cells (`source_cells.cached`)."""
        source = source_cells.cached(self, db_url, notebook, assignment)
        return _source_roles(source), source.cells

    def _reset_role(self, cell: NotebookNode, roles: dict[str, dict]) -> None:
        meta = cell.get("metadata", {}).get("nbgrader")
        if meta is None:
            return
        gid = declared_grade_id(cell)
        if gid not in roles:
            if meta.get("grade") or meta.get("solution") or meta.get("locked") or meta.get("task"):
                self.log.warning("Cell with unknown grade_id %r: its nbgrader metadata is dropped",
                                 meta.get("grade_id"))
            del cell.metadata["nbgrader"]
            return
        for flag, value in roles[gid].items():
            if meta.get(flag) != value:
                self.log.warning("Cell %s: nbgrader %r was %r, restored to %r", gid, flag,
                                 meta.get(flag), value)
                meta[flag] = value
        if not roles[gid]["grade"]:
            meta.pop("points", None)


def _source_roles(source: source_cells.SourceNotebook) -> dict[str, dict]:
    roles = {}
    for c in source.source_cells:
        role = {"grade": c.grade, "solution": c.solution, "locked": c.locked}
        if c.grade:
            role["points"] = c.max_score
        roles[c.name] = role
    return roles


def _insert_missing(nb: NotebookNode, roles: dict[str, dict], source_cells: dict, log_) -> None:
    """A deleted grade cell comes back after the nearest surviving source cell that preceded it."""
    order = list(source_cells)
    for gid in order:
        if not roles[gid]["grade"] or declared_cell_index(nb, gid) is not None:
            continue
        log_.warning("Grade cell %s was missing from the submission: restored from the source", gid)
        cell = _cell_from_source(source_cells[gid], roles[gid])
        at = len(nb.cells)
        for prev in reversed(order[:order.index(gid)]):
            idx = declared_cell_index(nb, prev)
            if idx is not None:
                at = idx + 1
                break
        else:
            at = 0 if order.index(gid) == 0 else len(nb.cells)
        nb.cells.insert(at, cell)


def _cell_from_source(src, role: dict) -> NotebookNode:
    meta = {"nbgrader": dict(role, grade_id=src.name, checksum=src.checksum, schema_version=3,
                             cell_type=src.cell_type, task=False),
            "deletable": False, "editable": False}
    if src.cell_type == "code":
        return nbformat.v4.new_code_cell(src.source, metadata=meta)
    return nbformat.v4.new_markdown_cell(src.source, metadata=meta)
