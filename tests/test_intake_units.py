"""The intake's small parts on their own: safe ids, printable names, strict Canvas names, the roster, archive members, no-follow copies."""
from __future__ import annotations

import stat
import zipfile

import nbformat
import pytest

from autograder.canvas import Roster, parse_canvas
from autograder.collect import member_problem
from autograder.safe_files import copy_regular_tree, regular_files, shown, valid_id
from autograder.nbgrader_integration.clean_submission import CleanSubmission


@pytest.mark.parametrize("raw, ok", [
    ("lovelaceada", True), ("müllerjörg", True), ("smithjohn-3001", True), ("a.b_c", True),
    ("..", False), (".hidden", False), ("-rf", False), ("a/b", False), ("a b", False), ("", False),
    ("x\x1b[31m", False), ("evil\u202e", False), ("<img>", False), ("a*", False), ("x" * 65, False),
])
def test_valid_id(raw, ok):
    """Is each id accepted or refused as a folder name, a glob and an HTML word?"""
    assert (valid_id(raw) is not None) == ok


def test_shown_spells_out_control_characters():
    """Does a name with ESC, BEL, CR and a bidi override print as visible escapes?"""
    out = shown("a\x1b[2J\x07\r\u202eb")
    assert out == "a\\x1b[2J\\x07\\x0d\\u202eb" and out.isprintable()


@pytest.mark.parametrize("name, student, user", [
    ("lovelaceada_1002_5010_gradient_backward-1.ipynb", "lovelaceada", "1002"),
    ("liskovbarbara_late_1010_5012_Gradient Backward (Barbara).ipynb", "liskovbarbara", "1010"),
    ("hopper_1_2_turingalan_1003_6001_gradient_backward.ipynb", "hopper", "1"),
    ("a_b_1_2_x.ipynb", None, None), (".._1_2_x.ipynb", None, None), ("x_01_2_y.ipynb", None, None),
    ("\x1bx_1_2_y.ipynb", None, None), ("x_1_2_", None, None),
])
def test_canvas_names_are_parsed_strictly(name, student, user):
    """Is the student's prefix and Canvas user id read only from a well-formed Canvas name?"""
    f = parse_canvas(name)
    assert (f.student, f.user_id) == (student, user) if student else f is None


def test_roster_keeps_namesakes_apart_and_ids_stable(tmp_path):
    """Two users with one prefix: two ids; a later namesake never takes the first one's id?"""
    r = Roster(tmp_path / "r.json")
    assert r.assign({"7": "smithjohn", "9": "smithjohn", "5": "hoppergrace"}) == \
        {"7": "smithjohn-7", "9": "smithjohn-9", "5": "hoppergrace"}
    r.save()
    r2 = Roster(tmp_path / "r.json")
    assert r2.assign({"11": "hoppergrace", "5": "hoppergrace"}) == {"11": "hoppergrace-11", "5": "hoppergrace"}


def _info(name: str, mode: int = stat.S_IFREG | 0o644, size: int = 10, csize: int = 10) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr, info.file_size, info.compress_size = mode << 16, size, csize
    return info


@pytest.mark.parametrize("info, word", [
    (_info("a_1_2_x.ipynb"), None),
    (_info("../a_1_2_x.ipynb"), "outside"), (_info("/a_1_2_x.ipynb"), "outside"),
    (_info("C:/a_1_2_x.ipynb"), "outside"), (_info("..\\a_1_2_x.ipynb"), "outside"),
    (_info("a_1_2_x.ipynb", stat.S_IFLNK | 0o777), "link"),
    (_info("a_1_2_x.ipynb", stat.S_IFIFO | 0o644), "FIFO"),
    (_info("d/a_1_2_x.ipynb"), "folder"), (_info("a_1_2_x.zip"), "archive"),
    (_info("a_1_2_x.ipynb", size=100 * 2**20, csize=2**22), "limit"),
    (_info("a_1_2_x.ipynb", size=8 * 2**20, csize=2**14), "bomb"),
])
def test_archive_members_are_judged_before_reading(info, word):
    """Is each risky member refused from its header alone, with a reason naming the risk?"""
    why = member_problem(info)
    assert (why is None) if word is None else (word in why)


def test_copy_takes_regular_files_only(tmp_path):
    """Does the exchange copy skip links (to files and folders) and FIFOs, and copy the rest?"""
    import os
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "nb.ipynb").write_text("{}")
    (src / "sub" / "data.txt").write_text("x")
    secret = tmp_path / "secret.txt"
    secret.write_text("answers")
    (src / "link.ipynb").symlink_to(secret)
    (src / "dirlink").symlink_to(tmp_path, target_is_directory=True)
    os.mkfifo(src / "fifo")
    copied, skipped = copy_regular_tree(src, tmp_path / "dest")
    assert sorted(copied) == ["nb.ipynb", "sub/data.txt"]
    assert sorted(s.what for s in skipped) == ["dirlink", "fifo", "link.ipynb"]
    assert not any(p.is_symlink() for p in (tmp_path / "dest").rglob("*"))
    files, _ = regular_files(src)
    assert [p.name for p in files] == ["nb.ipynb", "data.txt"]


def test_sanitizer_cleans_ids_tags_outputs_and_attachments():
    """Are a bad cell id, a hostile tag, output metadata, JS outputs and a non-base64 image removed?"""
    cell = nbformat.v4.new_code_cell("1", id="ok")
    cell["id"] = 'x" onload="y'
    cell.metadata["tags"] = ["fine", 'x"><b>']
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        "image/png": '" onerror="alert(1)', "application/javascript": "alert(1)", "text/plain": "1"},
        metadata={"image/png": {"width": '"><script>'}})]
    md = nbformat.v4.new_markdown_cell("![x](attachment:a.svg)")
    md["attachments"] = {"a.svg": {"image/svg+xml": "<svg onload=alert(1)>"}, "b.png": {"image/png": "iVBORw0KGgo="}}
    nb = nbformat.from_dict({"nbformat": 4, "nbformat_minor": 5, "cells": [cell, md],    # unvalidated, as handed in
                             "metadata": {"title": "<script>", "kernelspec": {"name": "python3", "display_name": "Python 3"}}})
    out = CleanSubmission().preprocess(nb, {})[0]
    c = out.cells[0]
    assert c["id"] != 'x" onload="y' and c.metadata["tags"] == ["fine"]
    assert c.outputs[0]["data"] == {"text/plain": "1"} and c.outputs[0]["metadata"] == {}
    assert out.cells[1]["attachments"] == {"a.svg": {}, "b.png": {"image/png": "iVBORw0KGgo="}}
    assert out.metadata == {"kernelspec": {"name": "python3", "display_name": "Python 3"}}


def test_sanitizer_bleaches_a_text_once_per_settings_and_the_same_as_bleach():
    """Is a markdown text bleached once for many notebooks, to what bleach itself gives, and
    does a sanitizer with other settings bleach it anew?"""
    from nbconvert.preprocessors.sanitize import SanitizeHTML
    text = "Hi <img src=x onerror=alert(1)> > quote <b>bold</b> <!-- c --> unique-8f3a"
    calls = []
    original = SanitizeHTML.sanitize_html_tags

    def counted(self, html):
        calls.append(html)
        return original(self, html)

    SanitizeHTML.sanitize_html_tags = counted
    try:
        first, second = CleanSubmission(), CleanSubmission()
        assert first.bleach(text) == second.bleach([text[:10], text[10:]]) \
            == original(SanitizeHTML(), text).replace("&gt;", ">")
        assert len(calls) == 1
        from traitlets.config import Config
        stripping = CleanSubmission(config=Config({"SanitizeHTML": {"strip": True}}))
        assert stripping.bleach(text) == original(SanitizeHTML(strip=True), text).replace("&gt;", ">")
        assert len(calls) == 2
    finally:
        SanitizeHTML.sanitize_html_tags = original
