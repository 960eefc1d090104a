"""CachedOverwriteCells: nbgrader's OverwriteCells, with the source cells read once per run instead of queried cell by cell for every student."""
from __future__ import annotations

from nbgrader.preprocessors import OverwriteCells

from . import source_cells


class CachedOverwriteCells(OverwriteCells):
    """OverwriteCells answering its gradebook lookups from `source_cells.cached`."""
    # Same checks, same repairs, same settings (`c.OverwriteCells.*` applies to this class).
    # nbgrader's step asks the gradebook two or three questions per graded cell and reloads
    # the source notebook twice per student (about a quarter of the pass's time); the answers
    # are the same for every student of the run.

    @property
    def gradebook(self):
        return self._lookups

    @gradebook.setter
    def gradebook(self, real):
        self._lookups = _SourceLookups(real, source_cells.cached(
            self, self.db_url, self.notebook_id, self.assignment_id))


class _SourceLookups:
    """The gradebook as OverwriteCells uses it: source lookups from the snapshot, the rest forwarded."""

    def __init__(self, real, source: source_cells.SourceNotebook):
        self._real, self._source = real, source

    def __enter__(self):
        self._real.__enter__()
        return self

    def __exit__(self, *exc):
        return self._real.__exit__(*exc)

    def find_notebook(self, notebook: str, assignment: str):
        return self._source

    def find_source_cell(self, name: str, notebook: str, assignment: str):
        return self._source.find_source_cell(name)

    def find_graded_cell(self, name: str, notebook: str, assignment: str):
        return self._source.find_graded_cell(name)

    def __getattr__(self, name):
        return getattr(self._real, name)
