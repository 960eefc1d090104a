"""The nbgrader step's shortcuts keep nbgrader's behaviour: the metadata check raises what nbgrader raises, and the gradebook stays one file."""
from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

import jsonschema
import nbformat
import pytest
from nbgrader.preprocessors import CheckCellMetadata as NbgraderCheck

from autograder.nbgrader_integration.check_cell_metadata import CheckCellMetadata

pytestmark = pytest.mark.nbgrader


def _nb(meta: dict, cell_type="code") -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x = 1") if cell_type == "code" else nbformat.v4.new_markdown_cell("x")
    cell.metadata["nbgrader"] = meta
    nb.cells = [cell, nbformat.v4.new_code_cell("y = 2")]
    return nb


GOOD = {"grade": True, "solution": False, "locked": True, "grade_id": "t1", "points": 2, "schema_version": 3}
BAD = [
    dict(GOOD, points="two"),                 # the schema: points must be a number
    dict(GOOD, grade="yes"),                  # the schema: a flag must be a boolean
    {k: v for k, v in GOOD.items() if k != "grade_id"},
    dict(GOOD, schema_version=1),             # too old
    dict(GOOD, grade_id=""),
]


def _outcome(preprocessor, nb):
    try:
        preprocessor.preprocess(nb, {})
        return None
    except Exception as e:  # noqa: BLE001 - the outcome compared is the exception itself
        return type(e), str(e)


@pytest.mark.parametrize("meta", [GOOD] + BAD)
def test_the_compiled_check_raises_exactly_what_nbgrader_raises(meta):
    """For valid and for each kind of broken nbgrader metadata, does the kit's CheckCellMetadata
    accept or refuse the notebook as nbgrader's own does, with the same exception and message?"""
    ours, theirs = _outcome(CheckCellMetadata(), _nb(dict(meta))), _outcome(NbgraderCheck(), _nb(dict(meta)))
    assert ours == theirs
    assert (ours is None) == (meta is GOOD)


def test_the_schema_itself_is_checked_once_and_nbgrader_is_left_as_it_was(monkeypatch):
    """Does nbgrader's own check re-check its schema for every cell while the kit's checks it at
    most once for many notebooks, and is nbgrader's `jsonschema` the real module afterwards?"""
    from nbgrader.nbgraderformat import MetadataValidator, common
    cls = jsonschema.validators.validator_for(MetadataValidator().schema)
    calls = []
    original = cls.check_schema.__func__
    monkeypatch.setattr(cls, "check_schema", classmethod(lambda c, schema, *a, **k: calls.append(1) or original(c, schema, *a, **k)))
    NbgraderCheck().preprocess(_nb(dict(GOOD)), {})
    assert len(calls) >= 1            # the counter sees nbgrader's per-cell check
    calls.clear()
    for _ in range(3):
        CheckCellMetadata().preprocess(_nb(dict(GOOD)), {})
    assert len(calls) <= 1
    assert common.jsonschema is jsonschema


def test_a_cohort_pass_commits_in_wal_and_leaves_one_file(tmp_path, monkeypatch):
    """During a pass, is the gradebook in WAL mode with commits not waiting for the disk, and
    afterwards back in nbgrader's journal mode with no -wal file left beside it?"""
    from nbgrader.api import Gradebook
    from sqlalchemy import text

    from autograder.nbgrader_integration import gradebook_api
    from autograder.nbgrader_integration.shared_gradebook import shared_gradebook
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")  # alembic
    db = tmp_path / "gradebook.db"
    Gradebook(f"sqlite:///{db}").close()
    with shared_gradebook(tmp_path) as durable:
        gb = gradebook_api.Gradebook(f"sqlite:///{db}")   # as nbgrader's code opens it, shared
        gb.add_student("ada", first_name="Ada")
        mode = gb.db.execute(text("PRAGMA journal_mode")).scalar()
        sync = gb.db.execute(text("PRAGMA synchronous")).scalar()
        durable()
        gb.close()
    assert (mode, sync) == ("wal", 1)   # 1 = NORMAL
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert con.execute("SELECT id FROM student").fetchall() == [("ada",)]
    assert not (tmp_path / "gradebook.db-wal").exists()


def test_the_log_filter_keeps_and_drops_the_same_records_without_formatting_dropped_info():
    """Does nbgrader's log filter keep warnings, drop the noise and INFO lines as before, and
    leave an INFO line unformatted when the root logger is not at DEBUG?"""
    import logging
    from autograder.nbgrader_integration.course_api import _QuietNbgrader

    class Loud:
        formatted = 0

        def __str__(self):
            Loud.formatted += 1
            return "a submission"

    def record(level, msg, *args):
        return logging.LogRecord("traitlets", level, __file__, 1, msg, args, None)

    f, root = _QuietNbgrader(), logging.getLogger()
    saved = root.level
    try:
        root.setLevel(logging.INFO)
        assert not f.filter(record(logging.INFO, "%s submitted", Loud()))
        assert Loud.formatted == 0
        assert f.filter(record(logging.WARNING, "%s is 5 seconds late", Loud()))
        assert not f.filter(record(logging.WARNING, "Attribute 'checksum' for cell %s", "t1"))
        root.setLevel(logging.DEBUG)
        assert f.filter(record(logging.INFO, "%s submitted", Loud()))
        assert not f.filter(record(logging.INFO, "Removing existing assignment: %s", "x"))
    finally:
        root.setLevel(saved)


def test_a_passing_metadata_value_is_checked_once_and_a_lookalike_still_fails():
    """Is metadata that passed not run through the schema again, while a value that equals it
    in Python but not to the schema (True for 1 point) still fails as in nbgrader?"""
    from autograder.nbgrader_integration import check_cell_metadata as ours
    good = dict(GOOD, grade_id="once", points=1)
    runs = []
    original = ours.best_match
    ours.best_match = lambda errors: runs.append(1) or original(errors)
    try:
        assert _outcome(CheckCellMetadata(), _nb(dict(good))) is None
        first = len(runs)
        assert _outcome(CheckCellMetadata(), _nb(dict(good))) is None
        assert first == 1 and len(runs) == first   # checked against the schema once
        lookalike = dict(good, points=True)
        assert lookalike == good
        theirs = _outcome(NbgraderCheck(), _nb(dict(lookalike)))
        assert theirs is not None and _outcome(CheckCellMetadata(), _nb(dict(lookalike))) == theirs
    finally:
        ours.best_match = original
