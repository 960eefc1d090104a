"""CanvasCollector: the strict `nbgrader zip_collect` plugin for Canvas' "Download submissions" archive."""
from __future__ import annotations

import os
from pathlib import Path

from nbgrader.plugins import FileNameCollectorPlugin

from .. import canvas
from ..safe_files import shown


class CanvasCollector(FileNameCollectorPlugin):
    """zip_collect plugin for Canvas' "Download submissions" archive: top-level files with strict Canvas names only."""
    # For instructors who run `nbgrader zip_collect` themselves (`make collect` does not: it
    # reads the archive itself). Strict: a file counts only at the top of the extracted folder
    # (nbgrader unpacks nested archives; what came out of one is refused), only with a strict
    # Canvas name, keyed by the Canvas user id (namesakes stay two students: see
    # autograder/canvas.py), the latest upload per user kept.

    _chosen: dict[str, canvas.CanvasFile] | None = None
    _ids: dict[str, str] | None = None
    _top_files: set[str] = set()

    def _root(self, any_file: str) -> str:
        app = self.parent
        return app._format_collect_path(app.extracted_directory) if app else os.path.dirname(any_file)

    def _top(self, any_file: str) -> set[str]:
        """The files Canvas put at the top of a download: loose files of the extracted folder,
        and the files directly in the folder nbgrader extracted each class archive into
        (`extracted/<archive name>/`); never what came out of an archive inside those."""
        root = self._root(any_file)
        app = self.parent
        stems = {os.path.splitext(n)[0] for n in os.listdir(app._format_collect_path(app.archive_directory))} \
            if app else set()
        top = set()
        for entry in os.scandir(root):
            if entry.is_file(follow_symlinks=False):
                top.add(os.path.abspath(entry.path))
            elif entry.is_dir(follow_symlinks=False) and entry.name in stems:
                top.update(os.path.abspath(e.path) for e in os.scandir(entry.path)
                           if e.is_file(follow_symlinks=False))
        return top

    def _choose(self, any_file: str) -> dict[str, canvas.CanvasFile]:
        if self._chosen is None:
            notebook = self.parent.coursedir.assignment_id if self.parent else ""
            self._top_files = self._top(any_file)
            found = [f for f in map(canvas.parse_canvas, sorted(self._top_files)) if f and f.ext == ".ipynb"]
            ranked = canvas.choose_latest(found, notebook)
            self._chosen = {uid: fs[0] for uid, fs in ranked.items()}
            course = Path(self.parent.coursedir.root) if self.parent else Path(self._root(any_file))
            roster = canvas.Roster(course / ".kit" / "canvas_roster.json")
            self._ids = roster.assign({uid: f.student for uid, f in self._chosen.items()})
            roster.save()
        return self._chosen

    def collect(self, submitted_file: str):
        name = os.path.basename(submitted_file)
        self._choose(submitted_file)
        if os.path.abspath(submitted_file) not in self._top_files:
            self.log.warning("Ignored %s: not at the top of the download (from a nested archive "
                             "or folder)", shown(os.path.relpath(submitted_file, self._root(submitted_file))))
            return None
        f = canvas.parse_canvas(submitted_file)
        if f is None:
            self.log.warning("Ignored %s: not a Canvas submission file name", shown(name))
            return None
        if f.ext != ".ipynb" or os.path.islink(submitted_file):
            self.log.warning("Ignored %s from %s: not a notebook file", shown(name), shown(f.student))
            return None
        chosen = self._choose(submitted_file).get(f.user_id)
        sid = self._ids[f.user_id]
        if chosen is None or chosen.path != submitted_file:
            self.log.warning("Ignored %s: %s also submitted %s, which is kept", shown(name), shown(sid),
                             shown(os.path.basename(chosen.path)) if chosen else "?")
            return None
        assignment = self.parent.coursedir.assignment_id if self.parent else f.stem
        if f.late:
            self.log.warning("%s submitted late (Canvas marks the file name 'late')", shown(sid))
        return {"student_id": sid, "file_id": f"{assignment}.ipynb"}
