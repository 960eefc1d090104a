"""The source notebook's cells as the gradebook holds them, read once per converter run by the autograde steps that check a submission against them."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

from nbgrader.api import Gradebook, MissingEntry


@dataclass(frozen=True)
class _SourceCell:
    """One cell of the released notebook, as nbgrader's cell rows describe it."""
    # SourceCell, GradeCell, SolutionCell and TaskCell rows in plain data: it outlives the session.
    name: str
    cell_type: str
    source: str
    checksum: str | None
    locked: bool
    max_score: float | None   # a grade or task cell's points, else None
    grade: bool
    solution: bool
    task: bool


@dataclass(frozen=True)
class SourceNotebook:
    """The answers to the lookups nbgrader's OverwriteCells makes, cell by cell, per student."""
    cells: dict[str, _SourceCell]  # in the notebook's order

    @property
    def source_cells(self) -> list[_SourceCell]:
        return list(self.cells.values())

    @property
    def grade_cells(self) -> list[_SourceCell]:
        return [c for c in self.cells.values() if c.grade]

    @property
    def solution_cells(self) -> list[_SourceCell]:
        return [c for c in self.cells.values() if c.solution]

    @property
    def task_cells(self) -> list[_SourceCell]:
        return [c for c in self.cells.values() if c.task]

    def find_source_cell(self, name: str) -> _SourceCell:
        if name not in self.cells:
            raise MissingEntry()
        return self.cells[name]

    def find_graded_cell(self, name: str) -> _SourceCell:
        cell = self.cells.get(name)
        if cell is None or not (cell.grade or cell.task):
            raise MissingEntry()
        return cell


def read(db_url: str, notebook: str, assignment: str) -> SourceNotebook:
    """The source notebook, read from the gradebook in one session."""
    with Gradebook(db_url) as gb:
        source = gb.find_notebook(notebook, assignment)
        points = {c.name: float(c.max_score) for c in source.grade_cells}
        tasks = {c.name: float(c.max_score) for c in source.task_cells}
        solutions = {c.name for c in source.solution_cells}
        cells = {c.name: _SourceCell(name=c.name, cell_type=c.cell_type, source=c.source,
                                    checksum=c.checksum, locked=bool(c.locked),
                                    max_score=points.get(c.name, tasks.get(c.name)),
                                    grade=c.name in points, solution=c.name in solutions,
                                    task=c.name in tasks)
                 for c in source.source_cells}
    return SourceNotebook(cells)


_run_cache: dict | None = None


@contextlib.contextmanager
def one_read_per_run():
    """Within this block (one converter run over a cohort), each source notebook is read once
    for every step and student: nbconvert makes the steps anew for each notebook it converts."""
    global _run_cache
    saved, _run_cache = _run_cache, {}
    try:
        yield
    finally:
        _run_cache = saved


def cached(step, db_url: str, notebook: str, assignment: str) -> SourceNotebook:
    """`read`, once per run (`one_read_per_run`), else once per step instance. A release
    between two runs is always seen."""
    cache = _run_cache if _run_cache is not None else step.__dict__.setdefault("_source_notebooks", {})
    key = (db_url, notebook, assignment)
    if key not in cache:
        cache[key] = read(db_url, notebook, assignment)
    return cache[key]
