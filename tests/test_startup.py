"""Start-up of one submission: the file is read before anything starts, the sandbox overlaps the trusted side."""
from __future__ import annotations

import json

import numpy as np
import pytest

from autograder import engine as engine_mod
from autograder import rubric
from autograder.sandbox import Sandbox, SandboxError


def test_unreadable_file_never_starts_an_engine(tmp_path, monkeypatch):
    """Is a broken file scored 0 with its reason without an engine (no sandbox, no suites)?"""
    def no_engine(*a, **k):
        raise AssertionError("an engine was started for an unreadable file")
    monkeypatch.setattr(engine_mod, "Engine", no_engine)
    bad = tmp_path / "broken.ipynb"
    bad.write_bytes(b'{"cells": [], "metadata": {}')
    timings = {}
    result = engine_mod.grade_notebook(bad, timings=timings)
    assert result.score == 0 and "not valid notebook JSON" in result.output
    assert set(timings) == {"read"}


def test_cli_prints_the_phases_of_a_cold_start(cli_grade_of_source):
    """Does `grade` say on stderr how long each start-up phase took, with one JSON on stdout?"""
    proc = cli_grade_of_source      # `grade SOURCE --json` in a new process (tests/conftest.py)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["score"] == rubric.load().max_score
    line = next(ln for ln in proc.stderr.splitlines() if "timings:" in ln)
    for phase in ("read", "cases", "inputs", "suites", "sandbox_wait", "engine_start", "grade"):
        assert f"{phase} " in line, line


def test_hidden_suites_load_no_plugin_the_environment_installs():
    """Does the hidden-suite session start with pytest's own plugins and the kit's only, even
    where the environment installs others (pytest-xdist here, for `make test`)?"""
    from importlib.metadata import entry_points
    from autograder.suite import SuiteRunner
    installed = {ep.name for ep in entry_points(group="pytest11")}
    assert "xdist" in installed            # the check below has something to leave out
    r = rubric.load()
    runner = SuiteRunner(r.folder, r.part_names)
    try:
        loaded = set(runner.plugin.loaded)
    finally:
        runner.close()
    assert "python" in loaded and "main" in loaded      # pytest's own are there
    assert not loaded & installed, sorted(loaded & installed)


@pytest.mark.sandbox
def test_sandbox_launched_without_inputs_waits_for_them(tmp_path):
    """Does a sandbox launched before its hidden inputs exist refuse to be waited on until it
    gets them, then read them all (after its template was forked)?"""
    r = rubric.load()
    box = Sandbox(inputs=None, probes_source=(r.folder / "probes.py").read_text(),
                  workdir_files=list(r.sandbox_files), wait=False)
    try:
        with pytest.raises(SandboxError):
            box.wait_ready()
        box.provide_inputs({"a": np.zeros(3, np.float32), "b": np.ones((2, 2), np.float32)})
        with pytest.raises(SandboxError):
            box.provide_inputs({"c": np.zeros(1)})
        box.wait_ready()
        assert box.proc.poll() is None
    finally:
        box.close()
