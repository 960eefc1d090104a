"""Merging shard result folders: equality with one store, and refusals that say why."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import cli
from autograder.batch import MANIFEST
from autograder.merge import MergeConflict, merge
from autograder.store import ResultStore
from test_store import a_result

KIT = Path(__file__).resolve().parent.parent
FP = "fp-current"
COHORT = {f"student {i}": i % 9 for i in range(12)}   # id -> parts passed


def fill(root: Path, ids, *, fingerprint=FP, shard=None, expected_ids=None) -> Path:
    store = ResultStore(root, fingerprint=fingerprint)
    for sid in ids:
        store.save(sid, a_result(COHORT[sid]), key=f"key-{sid}")
    if shard:
        root.mkdir(parents=True, exist_ok=True)
        (root / MANIFEST).write_text(json.dumps(
            {"shard": list(shard), "ids": list(expected_ids if expected_ids is not None else ids)}))
    return root


@pytest.fixture
def three_complete_shards(tmp_path) -> list[Path]:
    ids = sorted(COHORT)
    return [fill(tmp_path / f"shard{k}", ids[k - 1::3], shard=(k, 3)) for k in (1, 2, 3)]


@pytest.fixture
def single_run_store(tmp_path) -> ResultStore:
    return ResultStore(fill(tmp_path / "single", sorted(COHORT)), fingerprint=FP)


def test_merged_shards_equal_a_single_run(three_complete_shards, single_run_store, tmp_path):
    """Do three shard folders merge into exactly the store one run would have made?"""
    merged = merge(three_complete_shards, tmp_path / "merged")
    assert merged.warnings == []
    assert ResultStore(tmp_path / "merged").snapshot() == single_run_store.snapshot()
    assert ResultStore(tmp_path / "merged", fingerprint=FP).find_key("key-student 3") is not None


def test_merging_again_is_harmless(three_complete_shards, single_run_store, tmp_path):
    """Is a merge repeated into the same folder (a re-run CI job) idempotent?"""
    merge(three_complete_shards, tmp_path / "merged")
    merge(three_complete_shards, tmp_path / "merged")
    assert ResultStore(tmp_path / "merged").snapshot() == single_run_store.snapshot()


def test_same_id_with_same_result_in_two_shards_is_accepted(tmp_path):
    """Is an id graded identically twice (an overlapping rerun) merged without complaint?"""
    a = fill(tmp_path / "a", ["student 1", "student 2"])
    b = fill(tmp_path / "b", ["student 2", "student 3"])
    merged = merge([a, b], tmp_path / "out")
    assert sorted(merged.records) == ["student 1", "student 2", "student 3"]


def test_same_id_with_different_results_is_refused_and_nothing_written(tmp_path):
    """Does a student graded differently in two shards stop the merge, naming the student?"""
    a = fill(tmp_path / "a", ["student 1", "student 2"])
    b = fill(tmp_path / "b", ["student 3"])
    ResultStore(b, fingerprint=FP).save("student 2", a_result(0), key="key-student 2")
    with pytest.raises(MergeConflict, match=r"'student 2': 20 in .*, 0 in "):
        merge([a, b], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_mixed_fingerprints_are_refused_naming_the_folders(tmp_path):
    """Are results from two kit versions refused, with each folder's fingerprint shown?"""
    a = fill(tmp_path / "a", ["student 1"], shard=(1, 2))
    b = fill(tmp_path / "b", ["student 2"], fingerprint="fp-old-kit", shard=(2, 2))
    with pytest.raises(MergeConflict) as err:
        merge([a, b], tmp_path / "out")
    assert "fp-current" in str(err.value) and "fp-old-kit" in str(err.value)
    assert "shard 2/2" in str(err.value)


def test_a_merge_disagreeing_with_earlier_merged_results_is_refused(tmp_path):
    """Does merging into a folder check the results already there, too?"""
    fill(tmp_path / "out", ["student 1"], fingerprint="fp-old-kit")
    with pytest.raises(MergeConflict, match="fp-old-kit"):
        merge([fill(tmp_path / "a", ["student 2"])], tmp_path / "out")


def test_missing_and_unfinished_shards_are_reported(tmp_path):
    """Does the merge warn when a shard of the matrix is absent or stopped early?"""
    ids = sorted(COHORT)
    first = fill(tmp_path / "s1", ids[0::3][:-1], shard=(1, 3), expected_ids=ids[0::3])
    third = fill(tmp_path / "s3", ids[2::3], shard=(3, 3))
    merged = merge([first, third], tmp_path / "out")
    text = "\n".join(merged.warnings)
    assert "2/3 not given" in text
    assert "shard 1/3) stopped early: 1 submission(s)" in text
    assert not (tmp_path / "out" / MANIFEST).exists()   # an incomplete merge claims no coverage


def test_the_cli_exits_1_with_the_reason_on_a_conflict(tmp_path):
    """Does `python -m autograder merge` explain a refusal on stderr and exit 1?"""
    a = fill(tmp_path / "a", ["student 1"])
    b = fill(tmp_path / "b", ["student 2"], fingerprint="fp-old-kit")
    proc = subprocess.run([sys.executable, "-m", "autograder", "merge", str(a), str(b),
                           "--out", str(tmp_path / "out")], cwd=KIT, capture_output=True, text=True)
    assert proc.returncode == 1
    assert "merge refused, nothing written" in proc.stderr and "fp-old-kit" in proc.stderr


def test_the_cli_exits_2_for_a_missing_folder(tmp_path, caplog):
    """Is a shard folder that does not exist a usage error?"""
    # The verb in this process (the real `python -m autograder merge` is run just above).
    assert cli.run(["merge", str(tmp_path / "nope"), "--out", str(tmp_path / "out")]) == 2
    assert "no such results folder" in caplog.text
