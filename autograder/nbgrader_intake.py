"""nbgrader glue on the intake side: exchange collect that copies regular files only, the strict Canvas zip_collect plugin, student names."""
from __future__ import annotations

import fnmatch
import logging
import os
import stat
import sys
from pathlib import Path

from nbgrader.api import Gradebook
from nbgrader.exchange.default.collect import ExchangeCollect
from nbgrader.plugins import FileNameCollectorPlugin

from . import canvas
from .notebook import MAX_BYTES
from .safe_files import Skipped, copy_regular_tree, id_problem, shown

log = logging.getLogger(__name__)


def clean_name(text) -> str:
    """A person's name as nbgrader's templates print it unescaped: no markup, no controls."""
    text = "".join(ch for ch in str(text or "") if (ch.isprintable() and ch not in "<>&\"`\\"))
    return text.strip()[:100]


def set_student_names(course: Path, names: dict[str, tuple[str, str]]) -> None:
    """student id -> (first, last) into gradebook.db, creating the student; a name already
    there (typed in the formgrader, or from an earlier roster) is kept."""
    if not names:
        return
    url = f"sqlite:///{Path(course).resolve() / 'gradebook.db'}"
    # nbgrader runs the `alembic` command next to this Python when it opens a gradebook
    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([bindir, os.environ.get("PATH", "")])
    with Gradebook(url) as gb:
        for sid, (first, last) in names.items():
            if id_problem(sid):
                continue
            first, last = clean_name(first), clean_name(last)
            student = gb.update_or_create_student(sid)
            if not student.first_name and not student.last_name:
                # a formgrader view shows "last, first" when both are set, else the id
                student.first_name, student.last_name = (first, last) if (first and last) else ("", first or last or sid)
        gb.db.commit()


def _owned_by_someone_else(uid: int, student: str) -> bool:
    """True when the student has an OS account and the folder belongs to another one. Hubs whose
    students share one uid (containers) have no account per student: nbgrader's warning stays."""
    try:
        import pwd
        return pwd.getpwnam(student).pw_uid != uid
    except (ImportError, KeyError):
        return False


class SafeExchangeCollect(ExchangeCollect):
    """`nbgrader collect` for the JupyterHub exchange: the inbound folder is student-writable,
    so a submission is copied file by file, regular files only, never a link or through one,
    within nbgrader's size caps; a submission whose id is not a safe id is skipped."""

    def init_src(self):
        super().init_src()
        kept = []
        for rec in self.src_records:
            path = os.path.join(self.inbound_path, rec["filename"])
            why = None
            problem = id_problem(rec["username"])
            if problem:      # hub user names such as alice@uni.edu are fine; markup or escapes are not
                why = f"the student id is not a safe id (it {problem})"
            else:
                st = os.lstat(path)
                if not stat.S_ISDIR(st.st_mode):
                    why = "a symbolic link or a file, not a submission folder: never followed"
                elif self.check_owner and _owned_by_someone_else(st.st_uid, rec["username"]):
                    why = (f"made by another account (uid {st.st_uid}) than {rec['username']}'s: "
                           "a student submitting in someone else's name")
            if why:
                self.log.warning("Skipped inbound %s: %s", shown(rec["filename"]), why)
                self.skipped.append(Skipped(rec["filename"], why))
            else:
                kept.append(rec)
        self.src_records = kept

    @property
    def skipped(self) -> list[Skipped]:
        if not hasattr(self, "_skipped"):
            self._skipped = []
        return self._skipped

    def do_copy(self, src, dest, log=None):
        ignore = list(self.coursedir.ignore or [])
        cap = min(MAX_BYTES, int(self.coursedir.max_file_size or 0) * 1000 or MAX_BYTES)
        dir_cap = int(self.coursedir.max_dir_size or 0) * 1000 or 64 * 2**20
        copied, skipped = copy_regular_tree(Path(src), Path(dest), max_file_bytes=cap, max_bytes=dir_cap)
        for rel in list(copied):
            if any(fnmatch.fnmatch(part, pat) for part in Path(rel).parts for pat in ignore):
                (Path(dest) / rel).unlink()
                copied.remove(rel)
        for s in skipped:
            self.log.warning("Skipped %s in %s: %s", shown(s.what), shown(os.path.basename(src)), s.reason)
        self.skipped.extend(skipped)
        sid = os.path.basename(os.path.dirname(os.path.abspath(dest)))
        try:
            set_student_names(Path(self.coursedir.root), {sid: (sid, "")})
        except Exception as exc:  # noqa: BLE001 - a name is a nicety; the copy is what matters
            self.log.warning("could not record %s in the gradebook: %s", shown(sid), exc)


class CanvasCollector(FileNameCollectorPlugin):
    """zip_collect plugin for Canvas' "Download submissions" archive, for instructors who run
    `nbgrader zip_collect` themselves (`make collect` does not: it reads the archive itself).

    Strict: a file counts only at the top of the extracted folder (nbgrader unpacks nested
    archives; what came out of one is refused), only with a strict Canvas name, keyed by the
    Canvas user id (namesakes stay two students: see autograder/canvas.py), the latest upload
    per user kept."""

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
