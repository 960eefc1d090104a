"""A Canvas download holding honest students and one of each bad upload (tests/test_intake_*.py)."""
from __future__ import annotations

import copy
import io
import re
import stat
import zipfile
from pathlib import Path

import nbformat

from autograder import notebook as nbmod
from autograder.identity import source_notebook
from autograder.synth import build_submission

RELEASE = Path(__file__).resolve().parent.parent / "release" / "gradient_backward" / "gradient_backward.ipynb"
XSS = '<img src=x onerror="document.title=\'pwned\'">'
ESC = "\x1b[31mred\x1b]0;title\x07"


def answers() -> dict[str, str]:
    """The instructor's solutions as a student would type them (no nbgrader markers)."""
    return {nbmod.grade_id(c): re.sub(r"[ \t]*### (BEGIN|END) SOLUTION\n?", "", c.source)
            for c in source_notebook().cells if nbmod.is_solution_cell(c)}


def correct(marker: str = "") -> nbformat.NotebookNode:
    nb = build_submission(answers())
    if marker:
        nb.cells.append(nbformat.v4.new_markdown_cell(marker, id="student-notes"))
    return nb


def blank() -> nbformat.NotebookNode:
    """The released notebook handed in untouched (every part a stub)."""
    return build_submission({}, source=RELEASE)


def text(nb) -> bytes:
    return nbformat.writes(nb).encode()


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


def _special(z: zipfile.ZipFile, name: str, data: bytes, mode: int) -> None:
    info = zipfile.ZipInfo(name)
    info.external_attr = mode << 16
    z.writestr(info, data)


# Who is who in the bad class: honest students, with what each should score, and the bad uploads.
HONEST = {
    "hoppergrace": "full",            # a plain correct notebook
    "smithjohn-3001": "full",         # two Canvas users named John Smith: two students
    "smithjohn-3002": "blank",
    "windowsbill": "full",            # BOM + CRLF
    "pasteandy": "full",              # every cell's metadata gone
    "htmlhazel": "full",              # an <img onerror> in a markdown cell
    "victimvic": "full",              # the student mallory tries to overwrite
    "mallory": "full",                # her own notebook is fine; her zip is not
    "brokenbob": "zero",              # half a notebook: graded 0 with a reason
}
SKIPPED = {   # member name -> a word of the reason listed for it
    "mallory_3008_9102_my_work.zip": "archive",
    "eve_3009_9103_gradient_backward.ipynb.gz": "archive",
    "trudy_3010_9104_backup.zip": "archive",
    "../../evil_3011_9105_gradient_backward.ipynb": "outside",
    "/tmp/absolute_3012_9106_gradient_backward.ipynb": "outside",
    "linky_3013_9107_gradient_backward.ipynb": "link",
    "device_3014_9108_gradient_backward.ipynb": "device",
    "bomb_3015_9109_gradient_backward.ipynb": "limit",
    f"{ESC}_3016_9110_gradient_backward.ipynb": "not a Canvas",
    ".._3017_9111_gradient_backward.ipynb": "not a Canvas",
    "folder/nested_3018_9112_gradient_backward.ipynb": "folder",
    "hoppergrace_3000_9113_notes.txt": "not a notebook",
}


def bad_class_zip(path: Path) -> Path:
    """The class download: every honest student once, every bad upload once."""
    stripped = copy.deepcopy(correct())
    for cell in stripped.cells:
        cell.metadata = {}
    takeover = _zip([("victimvic_3007_1_gradient_backward.ipynb", text(blank())),
                     ("invented_9999_1_gradient_backward.ipynb", text(blank()))])
    nested_bomb = _zip([("big.ipynb", b"\0" * (40 * 2**20))])
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("hoppergrace_3000_9001_gradient_backward.ipynb", text(correct()))
        z.writestr("smithjohn_3001_9002_gradient_backward.ipynb", text(correct()))
        z.writestr("smithjohn_3002_9003_gradient_backward.ipynb", text(blank()))
        z.writestr("windowsbill_3003_9004_gradient_backward.ipynb",
                   b"\xef\xbb\xbf" + text(correct()).replace(b"\n", b"\r\n"))
        z.writestr("pasteandy_3004_9005_gradient_backward.ipynb", text(stripped))
        z.writestr("htmlhazel_3005_9006_gradient_backward.ipynb", text(correct(f"My notes {XSS}")))
        z.writestr("brokenbob_3006_9007_gradient_backward.ipynb", text(correct())[:5000])
        z.writestr("victimvic_3007_9008_gradient_backward.ipynb", text(correct()))
        z.writestr("mallory_3008_9101_gradient_backward.ipynb", text(correct()))
        z.writestr("mallory_3008_9102_my_work.zip", takeover)
        z.writestr("eve_3009_9103_gradient_backward.ipynb.gz", b"not gzip at all")
        z.writestr("trudy_3010_9104_backup.zip", nested_bomb[: len(nested_bomb) // 2])
        z.writestr("../../evil_3011_9105_gradient_backward.ipynb", text(correct()))
        z.writestr("/tmp/absolute_3012_9106_gradient_backward.ipynb", text(correct()))
        _special(z, "linky_3013_9107_gradient_backward.ipynb",
                 b"../../source/gradient_backward/gradient_backward.ipynb", stat.S_IFLNK | 0o777)
        _special(z, "device_3014_9108_gradient_backward.ipynb", b"", stat.S_IFCHR | 0o644)
        z.writestr("bomb_3015_9109_gradient_backward.ipynb", b" " * (200 * 2**20))
        z.writestr(f"{ESC}_3016_9110_gradient_backward.ipynb", text(correct()))
        z.writestr(".._3017_9111_gradient_backward.ipynb", text(correct()))
        z.writestr("folder/nested_3018_9112_gradient_backward.ipynb", text(correct()))
        z.writestr("hoppergrace_3000_9113_notes.txt", b"notes")
    return path
