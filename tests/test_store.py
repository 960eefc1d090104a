"""The result store: round trips, fingerprints, key lookups, awkward ids, kill -9 safety."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder import rubric
from autograder.scoring import Result, score
from autograder.scoring import TestOutcome as Outcome
from autograder.store import ResultStore, file_name

FP = "fingerprint-a"


def a_result(passed_parts: int = 8, note: str = "") -> Result:
    """A real scored result in which the first `passed_parts` parts pass their one test."""
    rub = rubric.load()
    outcomes = [Outcome(f"t::{p}", p, i < passed_parts) for i, p in enumerate(rub.part_names)]
    return score(rub, outcomes, feedback={p: note for p in rub.part_names}, flags={},
                 isolation="bwrap", seconds=1.5, sha256="ab" * 32)


@pytest.fixture
def empty_store(tmp_path) -> ResultStore:
    return ResultStore(tmp_path / "results", fingerprint=FP)


def test_saved_result_loads_back_equal(empty_store):
    """Does a result come back from disk exactly as it was saved?"""
    res = a_result(5, note="relu_grad: forgot the mask")
    empty_store.save("alice", res, key="k1")
    assert empty_store.load("alice").to_json() == res.to_json()


def test_missing_id_and_other_fingerprint_load_as_none(empty_store, tmp_path):
    """Is a result graded by another kit version treated as absent?"""
    assert empty_store.load("nobody") is None
    ResultStore(empty_store.root, fingerprint="old-kit").save("bob", a_result(), key="k2")
    assert empty_store.load("bob") is None
    assert empty_store.record("bob").fingerprint == "old-kit"
    assert list(empty_store) == []


def test_find_key_returns_the_result_graded_for_that_key(empty_store):
    """Can the nbgrader step find a result by submission key alone?"""
    res = a_result(3)
    empty_store.save("carol", res, key="key-carol")
    assert empty_store.find_key("key-carol").to_json() == res.to_json()
    assert empty_store.find_key("key-unknown") is None


def test_find_key_forgets_a_key_once_its_id_is_regraded(empty_store):
    """After a resubmission is graded, does the old notebook's key stop matching?"""
    empty_store.save("dave", a_result(8), key="old-notebook")
    empty_store.save("dave", a_result(2), key="new-notebook")
    assert empty_store.find_key("old-notebook") is None
    assert empty_store.find_key("new-notebook").score == a_result(2).score


def test_find_key_ignores_results_of_another_fingerprint(tmp_path):
    """Is a cached result from an older kit version never reused by key?"""
    ResultStore(tmp_path, fingerprint="old-kit").save("erin", a_result(), key="k")
    assert ResultStore(tmp_path, fingerprint=FP).find_key("k") is None


AWKWARD_IDS = ["Zoë Smith", "Zoe Smith", "zoe smith", "a/b", "../../etc/passwd", "名前",
               "x" * 400, ".hidden", "con", "tab\tand\nnewline", ""]


def test_awkward_ids_get_distinct_safe_files_and_keep_their_id(empty_store):
    """Do ids with spaces, slashes, accents, case clashes or huge lengths each get their own file?"""
    for i, sid in enumerate(AWKWARD_IDS):
        empty_store.save(sid, a_result(i % 9), key=f"k{i}")
    names = [file_name(sid) for sid in AWKWARD_IDS]
    assert len({n.lower() for n in names}) == len(AWKWARD_IDS)
    assert all(len(n.encode()) < 100 and "/" not in n and not n.startswith(".") for n in names)
    assert sorted(p.parent for p in empty_store.root.glob("*.json")) == [empty_store.root] * len(names)
    assert {sid: r.score for sid, r in empty_store} == \
        {sid: a_result(i % 9).score for i, sid in enumerate(AWKWARD_IDS)}


def test_corrupt_or_foreign_files_read_as_absent(empty_store):
    """Does a half-written or foreign JSON file read as 'not graded' instead of crashing?"""
    empty_store.save("frank", a_result(), key="k")
    empty_store.path("frank").write_text('{"id": "frank", "res')
    (empty_store.root / "notes.json").write_text(json.dumps({"hello": 1}))
    assert empty_store.load("frank") is None
    assert list(empty_store) == []


# Imports once, then forks a fresh writer process per line read on stdin: each kill -9 hits a
# process of its own, without paying the imports (1.5 s) eight times.
WRITER = """
import os, sys
from autograder.store import ResultStore
sys.path.insert(0, {tests!r})
from test_store import a_result
big = a_result(4, note="x" * 200_000)   # large, so a kill lands mid-write often
for _ in sys.stdin:
    pid = os.fork()
    if pid:
        print(pid, flush=True)
        os.waitpid(pid, 0)
        continue
    store = ResultStore({root!r}, fingerprint="fp")
    store.save("same-id", big.replace(output="0"), key="k0")
    print("saved", flush=True)   # one whole save before any kill: the store is never empty
    i = 1
    while True:
        store.save("same-id", big.replace(output=str(i)), key=f"k{{i % 7}}")
        i += 1
"""


def test_a_kill_9_mid_save_never_leaves_a_torn_file(tmp_path):
    """After kill -9 at random moments of saving, is the stored file always a whole result?"""
    root = tmp_path / "store"
    code = WRITER.format(tests=str(Path(__file__).parent), root=str(root))
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    server = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    try:
        for attempt in range(8):
            server.stdin.write(b"go\n")
            server.stdin.flush()
            writer = int(server.stdout.readline())
            assert server.stdout.readline().strip() == b"saved"
            time.sleep(0.05 + 0.037 * attempt)
            os.kill(writer, signal.SIGKILL)
            rec = ResultStore(root, fingerprint="fp").record("same-id")
            assert rec is not None and rec.result.score == a_result(4).score
            hit = ResultStore(root, fingerprint="fp").find_key(rec.key)
            assert hit is None or hit.to_json() == rec.result.to_json()   # a miss is fine, a wrong hit not
    finally:
        server.kill()
        server.wait()


# --- submission keys, as a cohort run asks for them ---------------------------------------
def test_a_file_rewritten_a_moment_ago_with_the_same_size_and_times_gets_its_new_key(tmp_path):
    """Is a key asked again after the file was rewritten (same size, same file times, within
    the same second) the new content's, never the earlier one's?"""
    from autograder import identity
    from autograder.synth import write_submission
    nb = tmp_path / "s.ipynb"
    write_submission(nb, {"relu_grad": "def relu_grad(inp, out):\n    inp.g = out.g * 1\n"})
    first = identity.key_of(nb, FP)
    before = os.stat(nb)
    text = nb.read_text().replace("out.g * 1", "out.g * 2")
    nb.write_text(text)
    os.utime(nb, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(nb)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert identity.key_of(nb, FP) != first
    assert identity.key_of(nb, FP) == identity.submission_key(nb)


def test_a_key_asked_again_reads_the_file_but_plans_it_once(tmp_path, monkeypatch):
    """Does asking a file's key again (planning, the ledger, waiting, nbgrader's step) skip
    parsing and planning what it already keyed, even for a file written a moment ago?"""
    from autograder import identity
    from autograder.synth import write_submission
    nb = tmp_path / "s.ipynb"
    write_submission(nb, {})
    plans = []
    real = identity._plan_key_and_hint
    monkeypatch.setattr(identity, "_plan_key_and_hint", lambda *a: plans.append(1) or real(*a))
    keys = {identity.key_of(nb, FP) for _ in range(4)}
    assert len(keys) == 1 and len(plans) == 1
