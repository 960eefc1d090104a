"""Cohort grading: same scores as one at a time, resumable after kill -9, shards, dying workers."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder import cli
from autograder import batch
from autograder.batch import discover, grade_many, parse_shard, select_shard
from autograder.store import ResultStore
from autograder.synth import write_submission

KIT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "autograder"]
WRONG_RELU = "def relu_grad(inp, out):\n    inp.g = out.g\n"
DIES_IN_A_CELL = "import os\nos._exit(1)\n"
HANGS = "def relu_grad(inp, out):\n    while True:\n        pass\n"


def canonical(result) -> dict:
    d = result.to_json()
    d.pop("execution_time")
    return d


# --- finding and slicing the cohort (no engine) -----------------------------------------
def test_workers_take_lanes_by_cores_and_one_core_stays_serial(tmp_path, monkeypatch):
    """Does a cohort get one worker per two cores with three lanes per core (never more lanes
    than submissions), while `--jobs 1` stays one worker of one lane? And are the workers
    started before the plan is made (ids without a result need them whatever the plan says)?"""
    started, ahead = [], []

    def run(driver):                 # what the driver would run, without running it
        started.append((driver.jobs, driver.lanes, len(driver.slots)))
        driver.results.update({sid: None for ids in driver.plan.ids_by_key.values() for sid in ids})
    monkeypatch.setattr(batch._Driver, "run", run)
    monkeypatch.setattr(batch._Driver, "_spawn", lambda driver, expected=None: (
        ahead.append(expected), driver.slots.append(expected)))
    monkeypatch.setattr(batch._Driver, "shutdown", lambda driver: driver.slots.clear())
    monkeypatch.setattr(batch, "key_and_hint_of", lambda path, fp, assignment: (str(path), 0.0))
    monkeypatch.setattr(batch, "lanes_possible", lambda: True)
    store = ResultStore(tmp_path / "results")
    big = [(f"s{i:03d}", tmp_path / f"s{i:03d}.ipynb") for i in range(100)]
    for jobs, items in ((2, big), (4, big), (1, big), (2, big[:40]), (2, big[:3]), (4, big[:3]),
                        (8, big[:1])):
        grade_many(items, jobs=jobs, store=store, progress="off")
    assert started == [(1, 6, 1), (2, 6, 2), (1, 1, 1), (1, 6, 1), (1, 3, 1), (2, 2, 2), (1, 1, 1)]
    assert all(n is not None for n in ahead)   # every one of them started before the plan
    graded = batch.engine_failure("gradient_backward", "stand-in")
    for sid, path in big[:5]:                  # a rerun of what is graded starts nothing
        store.save(sid, graded, key=str(path))
    ahead.clear()
    grade_many(big[:5], jobs=2, store=store, progress="off")
    assert ahead == [] and len(started) == 7


def test_without_lanes_a_cohort_gets_a_worker_per_core(monkeypatch):
    """Where a sandbox can have only one lane (no bwrap, or no cgroups for this user), does a
    cohort get one worker per core instead of one per two?"""
    monkeypatch.setattr(batch, "lanes_possible", lambda: False)
    assert [batch.shape_for(c, n) for c, n in ((2, 40), (4, 300), (1, 40), (4, 3))] == \
        [(2, 1), (4, 1), (1, 1), (3, 1)]


def test_likely_slow_submissions_start_early_one_at_a_time():
    """Are the submissions whose code sleeps or loops more than the cohort's usual queued
    first, each followed by an ordinary one, with the rest in their order?"""
    tasks = [(f"s{i}", f"s{i}.ipynb") for i in range(8)]
    hints = {"s0": 0.6, "s1": 0.6, "s2": 2.6, "s3": 0.6, "s4": 30.6, "s5": 0.6, "s6": 1.1, "s7": 0.6}
    order = [sid for sid, _ in batch._slow_early(tasks, hints)]
    assert order == ["s4", "s0", "s2", "s1", "s6", "s3", "s5", "s7"]
    assert batch._slow_early([], {}) == []


def test_slow_hint_reads_sleeps_loops_and_endless_loops():
    """Does the hint count a constant sleep's seconds, a little per loop, a cell's time limit
    for `while True`, and nothing for code it cannot parse?"""
    from autograder.identity import slow_hint
    assert slow_hint(["import time\ntime.sleep(2)\n"]) == 2.0
    assert slow_hint(["from time import sleep\nsleep(0.5)\n"]) == 0.5
    assert slow_hint(["for i in range(3):\n    pass\n", "x = [i for i in range(3)]\n"]) == pytest.approx(0.4)
    assert slow_hint(["while True:\n    pass\n"]) == 30.0
    assert slow_hint(["def f(:\n"]) == 0.0



def test_flat_folder_ids_are_file_stems(tmp_path):
    """Is each notebook of a flat folder graded under its file name without .ipynb?"""
    for name in ["b.ipynb", "a b.ipynb", "notes.txt"]:
        (tmp_path / name).write_text("{}")
    assert [sid for sid, _ in discover(tmp_path)] == ["a b", "b"]


def test_nbgrader_layout_ids_are_students(tmp_path):
    """In submitted/<student>/<assignment>/, is the id the student and the notebook the assignment's?"""
    for student in ["bob", "alice"]:
        folder = tmp_path / "submitted" / student / "gradient_backward"
        folder.mkdir(parents=True)
        (folder / "gradient_backward.ipynb").write_text("{}")
        (folder / "scratch.ipynb").write_text("{}")
    (tmp_path / "submitted" / "carol").mkdir()           # nothing handed in: skipped
    found = discover(tmp_path / "submitted")
    assert [(sid, p.name) for sid, p in found] == [("alice", "gradient_backward.ipynb"),
                                                   ("bob", "gradient_backward.ipynb")]
    assert discover(tmp_path) == found                   # the course root works too


def test_shards_are_disjoint_balanced_and_cover_the_cohort():
    """Do N shards split any cohort into disjoint slices of near-equal size covering everyone?"""
    items = [(f"student {i}", Path(f"{i}.ipynb")) for i in range(103)]
    for n in (1, 2, 3, 7):
        slices = [select_shard(items, k, n) for k in range(1, n + 1)]
        ids = [sid for s in slices for sid, _ in s]
        assert sorted(ids) == sorted(sid for sid, _ in items)
        assert max(map(len, slices)) - min(map(len, slices)) <= 1
    assert select_shard(items, 2, 3) == select_shard(list(reversed(items)), 2, 3)


@pytest.mark.parametrize("spec", ["0/3", "4/3", "1-3", "a/b"])
def test_bad_shard_specs_are_usage_errors(spec, tmp_path, caplog):
    """Is a malformed --shard refused with exit code 2 before any grading starts?"""
    with pytest.raises(ValueError):
        parse_shard(spec)
    # The verb in this process: its argument handling is what is under test, not start-up.
    assert cli.run(["grade-all", str(tmp_path), "--shard", spec, "--out", str(tmp_path / "out")]) == 2
    assert "--shard" in caplog.text and not (tmp_path / "out").exists()


# --- with the real engine ---------------------------------------------------------------
@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """Five notebooks: correct, a wrong part, a cell that kills its process, not JSON, a duplicate."""
    folder = tmp_path_factory.mktemp("cohort")
    write_submission(folder / "full marks.ipynb", {})
    write_submission(folder / "wrong relu.ipynb", {"relu_grad": WRONG_RELU})
    write_submission(folder / "dies.ipynb", {"mse_grad": DIES_IN_A_CELL})
    (folder / "not json.ipynb").write_text("{ this is not a notebook")
    shutil.copy(folder / "full marks.ipynb", folder / "Zoë copy.ipynb")
    return folder


@pytest.fixture(scope="module")
def one_at_a_time(cohort, shared_engine) -> dict:
    """The reference: each notebook graded alone by one Engine, in order."""
    return {sid: canonical(shared_engine.grade(path)) for sid, path in discover(cohort)}


@pytest.fixture(scope="module")
def uninterrupted_store(cohort, tmp_path_factory) -> ResultStore:
    store = ResultStore(tmp_path_factory.mktemp("uninterrupted"))
    grade_many(discover(cohort), jobs=2, store=store, progress="off")
    return store


@pytest.mark.slow
def test_parallel_scores_equal_one_at_a_time(uninterrupted_store, one_at_a_time):
    """Does grading with 2 workers give exactly the results of grading each notebook alone?"""
    assert {sid: canonical(r) for sid, r in uninterrupted_store} == one_at_a_time
    assert one_at_a_time["full marks"]["score"] == 100
    assert one_at_a_time["wrong relu"]["score"] < 100
    assert one_at_a_time["not json"]["score"] == 0


def _run_until_first_result_then_kill(cohort: Path, out: Path) -> None:
    proc = subprocess.Popen(CLI + ["grade-all", str(cohort), "--out", str(out), "--jobs", "2",
                                   "--progress", "off"], cwd=KIT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while not [p for p in out.glob("*.json") if not p.name.startswith(".")] \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_rerun_after_kill_9_grades_only_the_rest_and_matches(cohort, uninterrupted_store, tmp_path):
    """After kill -9 of the whole run, does a rerun skip saved results and end as a clean run would?"""
    out = tmp_path / "results"
    _run_until_first_result_then_kill(cohort, out)
    before = {rec.id: json.loads(ResultStore(out).path(rec.id).read_text())["saved_at"]
              for rec in ResultStore(out).records()}
    assert 1 <= len(before) < 5
    rerun = subprocess.run(CLI + ["grade-all", str(cohort), "--out", str(out), "--jobs", "2"],
                           cwd=KIT, capture_output=True, text=True, env=dict(os.environ, CI="1"))
    assert rerun.returncode == 0, rerun.stderr
    # an identical notebook of a saved one counts as graded too (same key, same result)
    skipped = int(re.search(r"grading 5 submissions \((\d+) already graded\)", rerun.stderr)[1])
    assert skipped >= len(before)
    after = {sid: json.loads(ResultStore(out).path(sid).read_text())["saved_at"] for sid in before}
    assert after == before                                  # nothing saved before was regraded
    assert ResultStore(out).snapshot() == uninterrupted_store.snapshot()


def _cmdline(pid: int) -> list[str]:
    import psutil
    try:
        return psutil.Process(pid).cmdline()
    except psutil.Error:
        return []


def _running(pid: int) -> bool:
    import psutil
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@pytest.mark.slow
def test_kill_9_leaves_no_process_behind(cohort, tmp_path):
    """Are the workers and their sandboxes gone once the run's process group is killed?"""
    proc = subprocess.Popen(CLI + ["grade-all", str(cohort), "--out", str(tmp_path), "--jobs", "2",
                                   "--progress", "off"], cwd=KIT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import psutil
    deadline = time.monotonic() + 300
    tree = []
    while not any("inside.py" in " ".join(_cmdline(p)) for p in tree) \
            and time.monotonic() < deadline:    # until a worker's sandbox is up
        time.sleep(0.2)
        tree = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    assert any("inside.py" in " ".join(_cmdline(p)) for p in tree)
    time.sleep(1)                       # let the sandbox's template process appear too
    tree = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while any(map(_running, tree)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [_cmdline(p)[:3] for p in tree if _running(p)] == []


def _seeded(store: ResultStore, ids, dest: Path) -> Path:
    """A results folder holding `store`'s records for `ids` only, as a finished shard leaves it."""
    seeded = ResultStore(dest)
    for sid in ids:
        seeded.put(store.record(sid))
    return dest


@pytest.mark.slow
def test_shard_processes_merge_into_the_single_run(cohort, uninterrupted_store, tmp_path):
    """Do three `grade-all --shard K/3` runs, merged, hold exactly what one run holds? (Each
    shard's folder is seeded with its slice's results, so a shard run grades nothing; its
    "already graded" count says it took exactly its slice.)"""
    shards = []
    for k in (1, 2, 3):
        mine = [sid for sid, _ in select_shard(discover(cohort), k, 3)]
        out = _seeded(uninterrupted_store, mine, tmp_path / f"shard{k}")
        proc = subprocess.run(CLI + ["grade-all", str(cohort), "--shard", f"{k}/3", "--jobs", "1",
                                     "--out", str(out), "--progress", "off"],
                              cwd=KIT, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert f"grading {len(mine)} submissions ({len(mine)} already graded)" in proc.stderr, proc.stderr
        assert {rec.id for rec in ResultStore(out).records()} == set(mine)
        shards.append(out)
    proc = subprocess.run(CLI + ["merge", *map(str, shards), "--out", str(tmp_path / "merged")],
                          cwd=KIT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "WARNING" not in proc.stderr
    assert ResultStore(tmp_path / "merged").snapshot() == uninterrupted_store.snapshot()


@pytest.mark.slow
def test_a_worker_that_stops_answering_is_replaced_and_the_submission_recorded_failed(
        tmp_path, one_at_a_time, cohort):
    """When a worker hangs twice on one notebook, is it scored 0 and the next graded by a new worker?"""
    hang = write_submission(tmp_path / "hangs.ipynb", {"relu_grad": HANGS})
    store = ResultStore(tmp_path / "results")
    # 3 s: far below the sandbox's own limits, so the driver's watchdog is what fires; the
    # unreadable notebook after it is graded in milliseconds, well inside the same 3 s
    results = grade_many([("hangs", hang), ("not json", cohort / "not json.ipynb")],
                         jobs=1, store=store, progress="off", task_timeout=3)
    failed = results["hangs"]
    assert failed.score == 0 and failed.error.startswith("engine failure")
    assert all("engine_failure" in p.flags for p in failed.parts)
    assert store.record("hangs").engine_failure
    assert canonical(results["not json"]) == one_at_a_time["not json"]


@pytest.mark.slow
def test_progress_is_a_bar_only_when_asked_or_on_a_terminal(uninterrupted_store, cohort, tmp_path):
    """Is the output quiet log lines in CI or a pipe, and a tqdm bar with --progress on?"""
    out = tmp_path / "results"
    shutil.copytree(uninterrupted_store.root, out)      # all cached: no engine needed
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    quiet = subprocess.run(CLI + ["grade-all", str(cohort), "--out", str(out)], cwd=KIT,
                           capture_output=True, text=True, env=env)
    bar = subprocess.run(CLI + ["grade-all", str(cohort), "--out", str(out), "--progress", "on"],
                         cwd=KIT, capture_output=True, text=True, env=env)
    assert "grading 5 submissions (5 already graded)" in quiet.stderr
    assert "100%|" not in quiet.stderr and len(quiet.stderr.splitlines()) <= 5
    assert "100%|" in bar.stderr and "5/5" in bar.stderr
