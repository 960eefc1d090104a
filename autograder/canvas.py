"""Canvas "Download Submissions" file names, parsed strictly; students keyed by Canvas user id."""
from __future__ import annotations

import json
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from .safe_files import atomic_write, valid_id

# <name><_late>_<user id>_<file id>_<original name>; Canvas builds <name> from the student's
# sortable name with everything but letters and digits removed, so it has no underscore.
CANVAS = re.compile(r"^(?P<student>[^\W_]{1,64})_(?P<late>late_)?(?P<user_id>[1-9][0-9]{0,17})_"
                    r"(?P<file_no>[0-9]{1,20})_(?P<name>[^/\\\x00]{1,255})$")
_RESUBMIT = re.compile(r"^(?P<stem>.*?)-(?P<n>\d{1,6})$")


@dataclass(frozen=True)
class CanvasFile:
    path: str
    student: str       # Canvas' name prefix (two namesakes share it)
    user_id: str       # Canvas' user id: the key of a student
    late: bool
    file_no: int
    stem: str          # the original file name without extension and without Canvas' "-N"
    attempt: int       # N of Canvas' "-N" suffix (0 for the first upload)
    ext: str


def parse_canvas(path: str) -> CanvasFile | None:
    """Canvas names each file `<student>_[late_]<userid>_<fileid>_<original name>`; anything
    else (and a name prefix that is not a safe id) is None."""
    m = CANVAS.match(unicodedata.normalize("NFC", os.path.basename(path)))
    if not m or valid_id(m["student"]) is None:
        return None
    stem, ext = os.path.splitext(m["name"])
    attempt = 0
    r = _RESUBMIT.match(stem)
    if r:
        stem, attempt = r["stem"], int(r["n"])
    return CanvasFile(path=path, student=m["student"], user_id=m["user_id"], late=bool(m["late"]),
                      file_no=int(m["file_no"]), stem=stem, attempt=attempt, ext=ext.lower())


def rank(f: CanvasFile, notebook: str) -> tuple:
    """The notebook to grade first: the assignment's own name, then the latest upload."""
    return (f.stem == notebook, f.file_no, f.attempt)


def choose_latest(files: list[CanvasFile], notebook: str) -> dict[str, list[CanvasFile]]:
    """Per Canvas user id, the candidate notebooks, best first."""
    by_user: dict[str, list[CanvasFile]] = {}
    for f in files:
        by_user.setdefault(f.user_id, []).append(f)
    return {u: sorted(fs, key=lambda f: rank(f, notebook), reverse=True) for u, fs in by_user.items()}


class Roster:
    """Canvas user id -> the course's student id, kept in `.kit/canvas_roster.json` so a
    student keeps one id across downloads. A new user gets the name prefix when no other user
    has it; two users with one prefix (namesakes) get `<prefix>-<user id>` each."""

    def __init__(self, path: Path):
        self.path = path
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            data = {}
        self.ids: dict[str, str] = {str(k): v for k, v in data.get("ids", {}).items()
                                    if isinstance(v, str) and valid_id(v)}

    def assign(self, users: dict[str, str]) -> dict[str, str]:
        """users: user id -> name prefix (this download); returns user id -> student id."""
        taken = {sid: uid for uid, sid in self.ids.items()}
        prefixes: dict[str, set[str]] = {}
        for uid, prefix in users.items():
            prefixes.setdefault(prefix, set()).add(uid)
        for uid in sorted(users, key=int):
            if uid in self.ids:
                continue
            prefix = users[uid]
            namesake = len(prefixes[prefix]) > 1 or taken.get(prefix, uid) != uid
            sid = f"{prefix}-{uid}" if namesake else prefix
            self.ids[uid] = sid
            taken[sid] = uid
        return {uid: self.ids[uid] for uid in users}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, json.dumps({"ids": self.ids}, indent=1, sort_keys=True,
                                           ensure_ascii=False), mode=0o644)


def read_names(csv_path: Path) -> dict[str, tuple[str, str]]:
    """Canvas gradebook export (Grades > Export): user id -> (first, last) from its `Student`
    column ("Last, First") and `ID` column. Rows without a numeric id are skipped."""
    import csv
    names = {}
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        for row in csv.DictReader(f):
            uid, full = (row.get("ID") or "").strip(), (row.get("Student") or "").strip()
            if not uid.isdigit() or not full:
                continue
            last, _, first = full.partition(",")
            names[uid] = (first.strip()[:100], last.strip()[:100])
    return names
