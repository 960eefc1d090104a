"""Reading what students really hand in (no sandbox): liberal parsing, bounded cost, one duplicate-id rule, an honest key."""
from __future__ import annotations

import copy
import json
import os
import re
import time
from pathlib import Path

import nbformat
import pytest
from nbgrader.preprocessors import DeduplicateIds

from autograder import notebook as nbmod
from autograder import rubric as rubric_mod
from autograder.identity import source_notebook, submission_key
from autograder.notebook import NotebookError, parse_submission, read_submission_bytes, restore
from autograder.synth import build_submission

RUBRIC = rubric_mod.load("gradient_backward")
PARTS = RUBRIC.part_names
SOURCE = source_notebook("gradient_backward")


def plan_of(nb):
    return restore(nb, SOURCE, PARTS)


def code_run(plan) -> list[tuple[str, str]]:
    return [(c.label, c.source) for c in plan.cells]


def answers() -> dict[str, str]:
    """The instructor's solutions as a student would type them (no nbgrader markers)."""
    return {nbmod.grade_id(c): re.sub(r"[ \t]*### (BEGIN|END) SOLUTION\n?", "", c.source)
            for c in SOURCE.cells if nbmod.is_solution_cell(c)}


@pytest.fixture(scope="module")
def correct_nb():
    return build_submission(answers())


def test_bom_and_crlf_read_like_the_plain_file(correct_nb):
    """Does a notebook saved by a Windows tool (UTF-8 BOM, CRLF) restore to the same code?"""
    raw = nbformat.writes(correct_nb).encode()
    windows = b"\xef\xbb\xbf" + raw.replace(b"\n", b"\r\n")
    assert windows.startswith(b"\xef\xbb\xbf") and b"\r\n" in windows     # the odd file is odd
    assert code_run(plan_of(parse_submission(windows))) == code_run(plan_of(parse_submission(raw)))


def test_utf16_with_bom_is_read(correct_nb):
    """Is a UTF-16 notebook (its BOM says so) read too?"""
    raw = nbformat.writes(correct_nb).encode("utf-16")
    assert code_run(plan_of(parse_submission(raw))) == code_run(plan_of(correct_nb))


def test_nbformat_3_is_accepted():
    """Is an nbformat-3 notebook (worksheets, `input`) converted instead of refused?"""
    v3 = nbformat.v3.new_notebook(worksheets=[nbformat.v3.new_worksheet(cells=[
        nbformat.v3.new_code_cell(input="def mse_grad(inp, targ):\n    pass\n")])])
    nb = parse_submission(json.dumps(v3).encode())
    assert nb.nbformat == 4 and nb.cells[0].source.startswith("def mse_grad")
    assert plan_of(nb).solutions["mse_grad"].startswith("def mse_grad")   # found by what it defines


def test_stripped_metadata_finds_every_part_by_what_it_defines(correct_nb):
    """Does a correct notebook whose cells lost their metadata run the same code as the original,
    each part's cell in its own place (part 8's Model no longer stands in for part 5's)?"""
    stripped = copy.deepcopy(correct_nb)
    for cell in stripped.cells:
        cell.metadata = {}
    assert not any("nbgrader" in c.metadata for c in stripped.cells)
    plan, full = plan_of(stripped), plan_of(correct_nb)
    assert code_run(plan) == code_run(full)
    assert plan.missing == [] and "found by the names it defines" in " ".join(plan.notes)
    assert "class Model" in plan.solutions["layers_as_classes"]
    assert "nn.Module" not in plan.solutions["layers_as_classes"]


@pytest.mark.parametrize("odd", [
    {"schema_version": 1, "grade_id": "mse_grad", "solution": True},
    {"schema_version": 3, "grade_id": ["mse_grad"], "solution": True},
    None, "mse_grad", 42,
    {"schema_version": 3, "grade_id": "mse_grad", "solution": "yes"},
    {"schema_version": 3, "grade_id": "mse_grad", "solution": True, "points": "10"},
])
def test_malformed_nbgrader_metadata_is_treated_as_absent(correct_nb, odd):
    """Is odd nbgrader metadata on part 1's cell ignored (the cell found by what it defines), never a crash?"""
    nb = copy.deepcopy(correct_nb)
    cell = next(c for c in nb.cells if nbmod.grade_id(c) == "mse_grad")
    cell.metadata["nbgrader"] = odd
    assert nbmod.nbgrader_meta(cell) is None
    plan = plan_of(parse_submission(nbformat.writes(nb).encode()))
    assert plan.solutions["mse_grad"] == plan_of(correct_nb).solutions["mse_grad"]
    assert "mse_grad" not in plan.missing


def test_deep_json_is_refused_quickly_with_a_sentence():
    """Does 200k-deep JSON give a clear message (no RecursionError) in well under a second?"""
    raw = b'{"nbformat": 4, "cells": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    t0 = time.monotonic()
    with pytest.raises(NotebookError, match="nested far too deeply"):
        parse_submission(raw)
    assert time.monotonic() - t0 < 1


def test_a_huge_notebook_is_refused_with_a_sentence_and_bounded_cost():
    """Is a 10 MB notebook of 100k cells refused by its cell count, quickly?"""
    cell = {"cell_type": "code", "source": "x = 1", "metadata": {}, "outputs": [], "execution_count": None}
    raw = json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [cell] * 100_000}).encode()
    assert len(raw) > 9 * 2**20
    t0 = time.monotonic()
    with pytest.raises(NotebookError, match="100,000 cells"):
        parse_submission(raw)
    assert time.monotonic() - t0 < 1


def test_an_oversized_cell_and_an_oversized_file_are_refused():
    """Are a 1 MB cell and a file over the byte cap refused, each with a sentence?"""
    cell = {"cell_type": "code", "source": "x = 1\n" * 200_000, "metadata": {}, "outputs": []}
    with pytest.raises(NotebookError, match="cell 1 holds"):
        parse_submission(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [cell]}).encode())
    with pytest.raises(NotebookError, match="are not graded"):
        parse_submission(b" " * (nbmod.MAX_BYTES + 1))


def _duplicated(correct_nb, first: str, last: str):
    """Two mse_grad solution cells: `first` earlier, `last` later in the notebook."""
    nb = copy.deepcopy(correct_nb)
    i = next(i for i, c in enumerate(nb.cells) if nbmod.grade_id(c) == "mse_grad")
    twin = copy.deepcopy(nb.cells[i])
    nb.cells[i].source, twin.source = first, last
    nb.cells.insert(i + 1, twin)
    return nb


def test_duplicate_grade_ids_follow_nbgrader_dedup_rule(correct_nb):
    """With two `mse_grad` cells, does the engine take as the solution the same cell that
    nbgrader's own DeduplicateIds keeps, with the other run in place as an ordinary cell?"""
    nb = _duplicated(correct_nb, "def mse_grad(inp, targ):\n    raise NotImplementedError\n",
                     "def mse_grad(inp, targ):\n    inp.g = 0 * inp  # the visible one\n")
    kept = DeduplicateIds().preprocess(copy.deepcopy(nb), {})[0]
    nbgrader_keeps = [c.source for c in kept.cells if nbmod.grade_id(c) == "mse_grad"]
    assert len(nbgrader_keeps) == 1
    plan = plan_of(nb)
    assert plan.solutions["mse_grad"] == nbgrader_keeps[0]
    assert any("raise NotImplementedError" in c.source and c.label.startswith("added")
               for c in plan.cells)    # the hidden twin still runs, where it was, before it


def test_key_tells_a_deleted_solution_cell_from_an_empty_one(correct_nb):
    """Do a deleted part-1 cell and an emptied one get different keys (a resubmission switching
    between them is graded anew)?"""
    deleted = copy.deepcopy(correct_nb)
    deleted.cells = [c for c in deleted.cells if nbmod.grade_id(c) != "mse_grad"]
    emptied = copy.deepcopy(correct_nb)
    next(c for c in emptied.cells if nbmod.grade_id(c) == "mse_grad").source = ""
    assert plan_of(deleted).wire() == plan_of(emptied).wire()       # the collision is real
    assert submission_key(deleted) != submission_key(emptied)


def test_solution_markers_are_flagged(correct_nb):
    """Is a solution cell still holding `### BEGIN SOLUTION` graded with a note saying so?"""
    nb = copy.deepcopy(correct_nb)
    cell = next(c for c in nb.cells if nbmod.grade_id(c) == "relu_grad")
    cell.source = "### BEGIN SOLUTION\n" + cell.source + "\n### END SOLUTION\n"
    notes = " ".join(plan_of(nb).notes)
    assert "`relu_grad` cell still holds nbgrader's solution markers" in notes
    assert "solution markers" not in " ".join(plan_of(correct_nb).notes)


def test_the_reader_never_follows_a_link_or_opens_a_fifo(tmp_path, correct_nb):
    """Does read_submission_bytes refuse a symlink (even to a real notebook) and a FIFO, and read a file?"""
    real = tmp_path / "real.ipynb"
    nbformat.write(correct_nb, str(real))
    link = tmp_path / "link.ipynb"
    link.symlink_to(real)
    assert link.read_bytes() == real.read_bytes()        # the link works for anyone who follows it
    with pytest.raises(NotebookError, match="symbolic link"):
        read_submission_bytes(link)
    fifo = tmp_path / "fifo.ipynb"
    os.mkfifo(fifo)
    with pytest.raises(NotebookError, match="not a regular file"):
        read_submission_bytes(fifo)
    assert read_submission_bytes(real) == real.read_bytes()


def test_grading_copy_holds_no_solution():
    """Does the bundle's copy of the source notebook keep every id and locked cell but no solution text?"""
    raw = RUBRIC.source.read_bytes()
    assert b"BEGIN SOLUTION" in raw and b"BEGIN HIDDEN TESTS" in raw
    copy_ = nbformat.reads(nbmod.grading_copy(raw).decode(), 4)
    text = nbformat.writes(copy_)
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    solution = next(c for c in SOURCE.cells if nbmod.grade_id(c) == "lin_grad").source
    assert solution.splitlines()[2].strip() not in text
    assert [nbmod.grade_id(c) for c in copy_.cells] == [nbmod.grade_id(c) for c in SOURCE.cells]
    assert plan_of(copy_).cells[0].source == plan_of(SOURCE).cells[0].source


def test_path_reaches_the_reader_on_every_intake_route():
    """Do collect, Gradescope/CI, grade-all and autograde discovery all use the no-follow reader
    or an lstat check (a static look at the modules)?"""
    kit = Path(nbmod.__file__).parent
    for module, needle in [("submission_folder.py", "read_regular"), ("batch.py", "follow_symlinks=False"),
                           ("autograde.py", "lstat"), ("safe_files.py", "read_submission_bytes"),
                           ("nbgrader_integration/safe_exchange_collect.py", "copy_regular_tree")]:
        assert needle in (kit / module).read_text(), module


def test_a_cell_too_deep_for_the_parser_never_crashes_restore(correct_nb):
    """Does a 60k-term `1+1+...` cell (which overflows Python's parser) restore without a crash?"""
    import ast
    deep = "x = " + "1+" * 60_000 + "1\n"
    with pytest.raises(RecursionError):
        ast.parse(deep)                                   # the parser really overflows
    nb = copy.deepcopy(correct_nb)
    nb.cells.append(nbformat.v4.new_code_cell(deep))
    for cell in nb.cells:
        cell.metadata = {}                                # so restore parses every cell
    plan = plan_of(nb)
    assert nbmod.top_level_bindings(deep) is None and plan.missing == []


def test_a_cell_the_parser_takes_but_too_deep_to_walk_never_crashes_restore(correct_nb):
    """Does a long `1+1+...` cell that parses, but nests deeper than a recursive walk can
    follow, restore without a crash, as a cell whose bindings cannot be told?"""
    import ast
    parsed = 0
    for terms in (600, 900, 1_200, 1_600, 2_000, 2_500):
        deep = "x = " + "1+" * terms + "1\n"
        try:
            ast.parse(deep)
        except RecursionError:
            continue                                      # deeper than the parser: tested above
        parsed += 1
        nbmod._bindings.cache_clear()
        assert nbmod.top_level_bindings(deep) in (None, {"x"})
        nb = copy.deepcopy(correct_nb)
        nb.cells.insert(0, nbformat.v4.new_code_cell(deep))
        for cell in nb.cells:
            cell.metadata = {}
        assert plan_of(nb).missing == []
    assert parsed


def _old_hidden_tests_pattern():
    return re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[ \t]*$\n?", re.M | re.S)


def test_hidden_test_regions_are_removed_exactly_as_the_pattern_did():
    """On thousands of random mixes of BEGIN/END lines (indented, trailing text, unclosed,
    carriage returns), does the one-pass removal give the text the old pattern gave?"""
    import random
    pieces = ["### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS", "  ### BEGIN HIDDEN TESTS x",
              "\t### END HIDDEN TESTS \t", "x = 1", "", "### END HIDDEN TESTS y", "a### BEGIN HIDDEN TESTS",
              " ### END HIDDEN TESTS\r", "assert f(1) == 2"]
    rng, old = random.Random(0), _old_hidden_tests_pattern()
    for _ in range(5000):
        text = "\n".join(rng.choice(pieces) for _ in range(rng.randint(0, 9))) + rng.choice(["", "\n"])
        assert nbmod.without_hidden_tests(text) == old.sub("", text), repr(text)


def test_many_unclosed_hidden_test_markers_are_read_in_one_pass():
    """A cell of 8,000 BEGIN lines and no END (the old pattern rescanned the rest of the cell
    from each one): is every line kept, and is each line looked at a bounded number of times?"""
    text = "### BEGIN HIDDEN TESTS\n" * 8_000
    calls = []
    real = nbmod._BEGIN_LINE

    class Counting:
        def match(self, line):
            calls.append(1)
            return real.match(line)

    nbmod._BEGIN_LINE = Counting()
    try:
        assert nbmod.without_hidden_tests(text) == text
    finally:
        nbmod._BEGIN_LINE = real
    assert len(calls) <= 8_001
