"""Untrusted names and folders: safe student ids, printable names, regular files only (no symlink followed); the one atomic write."""
from __future__ import annotations

import os
import stat
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from .notebook import MAX_BYTES, NotebookError, read_submission_bytes

MAX_ID_CHARS = 64
MAX_FILES = 2000            # files in one submission folder: a notebook, maybe a few helpers
MAX_FOLDER_BYTES = 64 * 2**20


def valid_id(raw: str) -> str | None:
    """The id in NFC form when it is safe as a folder name, a glob, a log word and an HTML
    word; else None. Safe: letters and digits of any script, `.`, `_`, `-`; no leading dot or
    dash; at most 64 characters. This rules out `..`, slashes, spaces, shell and glob
    characters, quotes and angle brackets, and every control or format character (terminal
    escapes, bidi overrides)."""
    if not isinstance(raw, str):
        return None
    sid = unicodedata.normalize("NFC", raw)
    if not sid or len(sid) > MAX_ID_CHARS or sid[0] in ".-":
        return None
    if all(ch.isalnum() or ch in "._-" for ch in sid):
        return sid
    return None


def id_problem(sid: str) -> str | None:
    """Why a folder or file name found on disk cannot be a student id, or None. Liberal (a
    folder the instructor made, `José Núñez`, is graded): only what would be dangerous is
    refused: control and format characters (terminal escapes, bidi overrides), markup and
    quotes (nbgrader's pages print ids unescaped), glob characters (nbgrader globs student
    folders), slashes, a leading dot, more than 100 characters."""
    if not sid or len(sid) > 100:
        return "empty or longer than 100 characters"
    if sid[0] == ".":
        return "starts with a dot"
    for ch in sid:
        if unicodedata.category(ch)[0] == "C" or unicodedata.category(ch) in ("Zl", "Zp"):
            return "holds a control or format character"
        if ch in "<>&\"'`*?[]/\\":
            return f"holds {ch!r}"
    return None


def shown(text, limit: int = 80) -> str:
    """A name as it may appear in a log line or a terminal table: control and format characters
    (ESC, CR, bidi overrides...) and backslashes spelled out, long names cut."""
    text = str(text)
    out = []
    for ch in text[:limit]:
        cat = unicodedata.category(ch)
        if ch == "\\" or cat[0] == "C" or cat in ("Zl", "Zp"):
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out) + ("..." if len(text) > limit else "")


@dataclass
class Skipped:
    """Something that was not taken, and why (listed to the instructor or student)."""
    what: str
    reason: str

    def line(self) -> str:
        return f"{shown(self.what)}: {self.reason}"


def regular_files(root: Path, *, skip_dot: bool = True, max_files: int = MAX_FILES
                  ) -> tuple[list[Path], list[Skipped]]:
    """Every regular file under `root`, never through a symlink (lstat only), and what was left
    out: links, devices, FIFOs, and files past the count cap. Dot folders are left out when
    `skip_dot` (checkpoints, .git, a CI job's grading kit)."""
    files: list[Path] = []
    skipped: list[Skipped] = []
    stack = [Path(root)]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            skipped.append(Skipped(str(folder.relative_to(root)) or ".", f"cannot be read ({exc.strerror})"))
            continue
        for entry in entries:
            rel = Path(entry.path).relative_to(root).as_posix()
            if skip_dot and entry.name.startswith("."):
                continue
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISLNK(mode):
                skipped.append(Skipped(rel, "a symbolic link, not a file: links are never followed"))
            elif stat.S_ISDIR(mode):
                stack.append(Path(entry.path))
            elif stat.S_ISREG(mode):
                if len(files) >= max_files:
                    skipped.append(Skipped(rel, f"more than {max_files} files in the submission"))
                else:
                    files.append(Path(entry.path))
            else:
                skipped.append(Skipped(rel, "not a regular file (device, FIFO or socket)"))
    return sorted(files), skipped


def read_regular(path: Path, root: Path, *, max_bytes: int = MAX_BYTES) -> bytes:
    """A file's bytes if it is a regular file inside `root`: no link anywhere on the way
    (checked against the resolved root), opened with O_NOFOLLOW, capped in size."""
    # resolving every link must change nothing below the root: a linked folder on the way is refused
    try:
        expected = Path(os.path.realpath(root)) / Path(path).relative_to(root)
    except ValueError:
        expected = None
    if expected is None or Path(os.path.realpath(path)) != expected:
        raise NotebookError(f"{Path(path).name} is reached through a symbolic link: links are never followed")
    return read_submission_bytes(path, max_bytes=max_bytes)


def copy_regular_tree(src: Path, dest: Path, *, max_files: int = MAX_FILES,
                      max_bytes: int = MAX_FOLDER_BYTES, max_file_bytes: int = MAX_BYTES
                      ) -> tuple[list[str], list[Skipped]]:
    """Copies the regular files of `src` into a new folder `dest`, never a link, never
    following one; returns (copied relative paths, skipped). Each file is read through an
    O_NOFOLLOW descriptor, so a file swapped for a link after the listing is refused too."""
    files, skipped = regular_files(src, skip_dot=False, max_files=max_files)
    dest.mkdir(parents=True, exist_ok=False)
    copied, total = [], 0
    for path in files:
        rel = path.relative_to(src)
        try:
            data = read_regular(path, src, max_bytes=max_file_bytes)
        except NotebookError as exc:
            skipped.append(Skipped(rel.as_posix(), str(exc)))
            continue
        if total + len(data) > max_bytes:
            skipped.append(Skipped(rel.as_posix(), f"the folder passed {max_bytes // 2**20} MB"))
            continue
        total += len(data)
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        write_new(target, data)
        copied.append(rel.as_posix())
    return copied, skipped


def write_new(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Creates a new file (never through an existing name or link) and writes `data`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def atomic_write(path: Path, data: str | bytes, mode: int | None = None) -> None:
    """Write a fresh file beside `path`, then rename it over `path`: a kill -9 at any instant
    leaves the old file or the new one, never half of one. The temporary file is new (never
    through an existing name or link), private (0600) unless `mode` says otherwise."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
