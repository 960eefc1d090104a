"""`python -m autograder collect ARCHIVE`: a Canvas download -> submitted/, one student per Canvas user, every skipped file listed."""
from __future__ import annotations

import logging
import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from . import canvas
from .notebook import MAX_BYTES
from .safe_files import Skipped, shown, valid_id, write_new

log = logging.getLogger("autograder.collect")

# Caps on the class archive: far above a real class, far below what fills a disk.
MAX_MEMBERS = 20_000
MAX_TOTAL_BYTES = 4 * 2**30        # what the central directory claims, all members together
MAX_RATIO = 200                    # uncompressed / compressed of one member (notebooks: ~3-10)
ARCHIVE_EXTS = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".whl", ".jar")


class CollectError(Exception):
    """Input the instructor has to fix (wrong archive, unknown assignment)."""


@dataclass
class Collected:
    students: list[str]                                  # every student now in submitted/
    taken: dict[str, str] = field(default_factory=dict)  # student id -> archive member collected
    skipped: list[Skipped] = field(default_factory=list)

    def __len__(self) -> int:          # callers that counted the list of students still can
        return len(self.students)

    def __iter__(self):
        return iter(self.students)


def main(*, archive: str, assignment: str = "gradient_backward", course: str = ".",
         roster: str | None = None) -> int:
    try:
        out = collect(Path(archive), assignment, Path(course),
                      names_csv=Path(roster) if roster else None)
    except CollectError as e:
        log.error("%s", e)
        return 2
    log.info("collected %d students into %s", len(out.taken), Path(course) / "submitted")
    return 0 if out.taken else 1


def collect(archive: Path, assignment: str, course: Path, *,
            names_csv: Path | None = None) -> Collected:
    """Reads the archive member by member (nothing is extracted but the chosen notebooks),
    writes one notebook per Canvas user into submitted/<id>/<assignment>/, and lists the rest."""
    course = course.resolve()
    check_assignment(course, assignment)
    skipped: list[Skipped] = []
    with open_archive(archive) as z:
        candidates = scan(z, assignment, skipped)
        roster = canvas.Roster(course / ".kit" / "canvas_roster.json")
        ids = roster.assign({uid: fs[0].student for uid, fs in candidates.items()})
        taken = {}
        for uid, files in sorted(candidates.items(), key=lambda kv: ids[kv[0]]):
            sid = ids[uid]
            got = _first_readable(z, files, skipped)
            if got is None:
                skipped.append(Skipped(sid, "no readable notebook in this download: not collected"))
                continue
            f, data = got
            try:
                place(course, assignment, sid, data)
            except CollectError as exc:
                skipped.append(Skipped(f.path, str(exc)))
                continue
            taken[sid] = f.path
            for other in files:
                if other is not f and not any(s.what == other.path for s in skipped):
                    skipped.append(Skipped(other.path, f"{sid} also submitted {shown(f.path)}, "
                                                       "which is kept"))
            if f.stem != assignment or f.attempt:
                log.info("collected %s as %s/%s.ipynb", shown(f.path), shown(sid), assignment)
            if f.late:
                log.warning("%s submitted late (Canvas marks the file name 'late')", shown(sid))
        roster.save()
    _names(course, {sid: uid for uid, sid in ids.items() if sid in taken}, names_csv)
    for s in skipped:
        log.warning("skipped %s", s.line())
    log.info("%d notebooks collected, %d files skipped (listed above)", len(taken), len(skipped))
    submitted = course / "submitted"
    students = sorted(p.name for p in submitted.iterdir()
                      if not p.is_symlink() and (p / assignment).is_dir()) if submitted.is_dir() else []
    return Collected(students=students, taken=taken, skipped=skipped)


def check_assignment(course: Path, assignment: str) -> None:
    known = sorted(p.name for p in (course / "source").iterdir() if p.is_dir()) \
        if (course / "source").is_dir() else []
    if assignment not in known:
        raise CollectError(f"unknown assignment {assignment!r}: the course has {known or 'none'}")
    if not (course / "release" / assignment).is_dir():
        raise CollectError(f"release/{assignment} is missing: run `make release` first")


def open_archive(archive: Path) -> zipfile.ZipFile:
    """The class archive, if it is a zip within the caps (a broken one stops here, before anything is written)."""
    if not archive.is_file():
        raise CollectError(f"no such archive: {archive}")
    if not zipfile.is_zipfile(archive):
        raise CollectError(f"{archive} is not a zip archive (Canvas: Assignment > Download Submissions)")
    try:
        z = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CollectError(f"{archive} is a broken zip archive ({exc}): download it again") from None
    infos = z.infolist()
    if len(infos) > MAX_MEMBERS:
        z.close()
        raise CollectError(f"{archive} holds {len(infos)} files (limit {MAX_MEMBERS}): is it really one assignment's download?")
    if sum(i.file_size for i in infos) > MAX_TOTAL_BYTES:
        z.close()
        raise CollectError(f"{archive} would unpack to more than {MAX_TOTAL_BYTES // 2**30} GiB: not read")
    return z


def member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why a member is not an upload that can be collected, or None."""
    name = info.filename
    p = PurePosixPath(name.replace("\\", "/"))
    if name.startswith(("/", "\\")) or p.is_absolute() or ":" in p.parts[0] or ".." in p.parts:
        return "its path would land outside the course folder (absolute or `..`): refused"
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "a link, not a file: refused"
    if mode and stat.S_IFMT(mode) and not stat.S_ISREG(mode):
        return "a device, FIFO or socket, not a file: refused"
    if len(p.parts) > 1:
        return "inside a folder: Canvas puts every upload at the top of its download"
    if info.flag_bits & 0x1:
        return "encrypted: cannot be read"
    if name.lower().endswith(ARCHIVE_EXTS):
        return "an archive inside the download: archives are not unpacked, ask for the notebook itself"
    if info.file_size > MAX_BYTES:
        return f"{info.file_size / 2**20:.0f} MB, over the {MAX_BYTES // 2**20} MB limit for a notebook"
    if info.compress_size and info.file_size > 2**20 and info.file_size / info.compress_size > MAX_RATIO:
        return f"compressed {info.file_size // info.compress_size}:1, a zip bomb's ratio: refused"
    return None


def scan(z: zipfile.ZipFile, assignment: str, skipped: list[Skipped]) -> dict[str, list[canvas.CanvasFile]]:
    """Canvas user id -> candidate notebook members, best first; everything else is skipped."""
    found = []
    for info in z.infolist():
        if info.is_dir():
            continue
        why = member_problem(info)
        if why:
            skipped.append(Skipped(info.filename, why))
            continue
        f = canvas.parse_canvas(info.filename)
        if f is None:
            skipped.append(Skipped(info.filename, "not a Canvas submission file name "
                                                  "(<name>_[late_]<user id>_<file id>_<file>)"))
        elif f.ext != ".ipynb":
            skipped.append(Skipped(info.filename, f"from {f.student}: not a notebook"))
        else:
            found.append(f)
    return canvas.choose_latest(found, assignment)


def read_member(z: zipfile.ZipFile, name: str) -> bytes:
    """A member's bytes, never more than MAX_BYTES whatever its header says (a lying header
    or a bomb stops at the cap)."""
    with z.open(name) as f:
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise ValueError(f"unpacks to more than {MAX_BYTES // 2**20} MB")
    return data


def _first_readable(z, files: list[canvas.CanvasFile], skipped: list[Skipped]):
    for f in files:
        try:
            return f, read_member(z, f.path)
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, NotImplementedError) as exc:
            skipped.append(Skipped(f.path, f"cannot be unpacked ({exc}): refused"))
    return None


def place(course: Path, assignment: str, sid: str, data: bytes) -> Path:
    """Writes submitted/<sid>/<assignment>/<assignment>.ipynb, replacing that folder: a fresh
    folder renamed into place, never through a link."""
    if valid_id(sid) != sid:
        raise CollectError(f"student id {shown(sid)} is not a safe id")
    submitted = course / "submitted"
    submitted.mkdir(exist_ok=True)
    if submitted.is_symlink():
        raise CollectError("submitted/ is a symbolic link: refusing to write through it")
    student = submitted / sid
    if student.is_symlink() or (student.exists() and not student.is_dir()):
        raise CollectError(f"submitted/{shown(sid)} is not a plain folder: refusing to write into it")
    student.mkdir(exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=".collect-", dir=student))
    write_new(fresh / f"{assignment}.ipynb", data)
    dest = student / assignment
    if dest.is_symlink() or dest.is_file():
        dest.unlink()
    elif dest.exists():
        shutil.rmtree(dest)
    os.replace(fresh, dest)
    dest.chmod(0o755)
    return dest / f"{assignment}.ipynb"


def _names(course: Path, students: dict[str, str], names_csv: Path | None) -> None:
    """First and last names into the gradebook (the formgrader shows them): from Canvas'
    gradebook export when given, else the student id, never over a name already there."""
    names = canvas.read_names(names_csv) if names_csv else {}
    try:
        from .nbgrader_integration.gradebook_api import set_student_names
    except ImportError:          # collect also works where nbgrader is not installed
        return
    try:
        set_student_names(course, {sid: names.get(uid, (sid, "")) for sid, uid in students.items()})
    except Exception as exc:  # noqa: BLE001 - names are a nicety: the notebooks are collected
        log.warning("student names not written to the gradebook: %s", exc)
