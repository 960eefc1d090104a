"""The red-team suite: hostile submissions gain nothing, harm nothing, and leave nothing behind."""
from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from autograder import synth
from autograder.engine import Engine
from autograder.rubric import KIT_ROOT
from autograder.sandbox import Limits, detect_level
from autograder.synth import read_variant
from fixture_files import check_scores

ATTACKS = sorted((Path(__file__).parent / "attacks").glob("*.py"))
FAST = Limits(cell_seconds=8, case_seconds=4, part_seconds=12, job_seconds=120)
SKIP_DIRS = {".venv", ".git", "__pycache__", "build", ".kit", ".pytest_cache"}

pytestmark = pytest.mark.sandbox


def tree_digest(root: Path) -> str:
    """One hash over every file of the course folder (what an attack must not change)."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            p = Path(dirpath) / name
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes() if p.is_file() else b"")
    return h.hexdigest()


class _Listener:
    """A TCP server on this machine's loopback that records whether anybody connected."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.connections += 1
                conn.close()
            except OSError:
                continue

    def close(self):
        self.stop.set()
        self.thread.join(timeout=2)
        self.sock.close()


@pytest.fixture(scope="module")
def listener():
    lst = _Listener()
    yield lst
    lst.close()


@pytest.fixture(scope="module")
def engine():
    before = tree_digest(KIT_ROOT)
    with Engine("gradient_backward", limits=FAST) as eng:
        yield eng
    assert tree_digest(KIT_ROOT) == before, "the course folder changed during the attacks"


def _grade(engine, tmp_path, path: Path, listener):
    fx = read_variant(path, course=str(KIT_ROOT), port=str(listener.port))
    return fx, engine.grade(fx.build(tmp_path / f"{fx.name}.ipynb"))


@pytest.mark.parametrize("path", ATTACKS, ids=[p.stem for p in ATTACKS])
def test_attack_gains_nothing(engine, tmp_path, path, listener):
    """Does this hostile submission score only what its honest parts deserve?"""
    fx, result = _grade(engine, tmp_path, path, listener)
    assert not check_scores(fx, result), check_scores(fx, result)
    for part, flags in fx.flags.items():
        assert flags <= set(result.part(part).flags), (part, result.part(part).flags)


def test_attack_output_is_capped_in_feedback(engine, tmp_path, listener):
    """Does a flood of output reach the feedback only as a few kilobytes?"""
    fx, result = _grade(engine, tmp_path, Path(__file__).parent / "attacks" /
                        "mse_output_flood_still_full.py", listener)
    assert len(json.dumps(result.to_json())) < 64_000
    assert "x" * 100 in result.part("mse_grad").output
    assert "y" * 100 not in result.part("mse_grad").output  # printed during the hidden checks


def test_attack_sees_no_course_files(engine, tmp_path, listener):
    """Can student code see the hidden suites or the gradebook, or write anywhere that lasts?"""
    gradebook = KIT_ROOT / "gradebook.db"
    before = gradebook.read_bytes() if gradebook.exists() else None
    _, result = _grade(engine, tmp_path, Path(__file__).parent / "attacks" /
                       "mse_writes_course_and_reads_hidden_scores_0.py", listener)
    out = result.part("mse_grad").output
    if detect_level() == "bwrap":
        assert "HIDDEN FILES SEEN: 0" in out
    # A write "into the course" can only land in the sandbox's private /tmp (when the kit
    # itself lives under /tmp): the real files are checked here, on the host.
    assert not (KIT_ROOT / "pwned.txt").exists()
    assert (gradebook.read_bytes() if gradebook.exists() else None) == before
    for place in ("/root/", "/etc/", "/home/student/"):
        assert f"WROTE {place}" not in out, out


def test_attack_cannot_reach_localhost(engine, tmp_path, listener):
    """Can student code open a socket to a server on the grading machine?"""
    if detect_level() == "rlimits":
        pytest.skip("rlimits-only isolation has no network namespace")
    _, result = _grade(engine, tmp_path, Path(__file__).parent / "attacks" /
                       "mse_socket_to_localhost_scores_0.py", listener)
    out = result.part("mse_grad").output
    assert "TRIED 127.0.0.1" in out and "TRIED ::1" in out, out  # the attack ran
    assert listener.connections == 0
    assert "CONNECTED" not in out


def test_attack_leaves_no_process_behind(engine, tmp_path, listener):
    """After orphans in their own sessions and a fork bomb (stopped at the sandbox's process
    budget, not left to spin until its time runs out), is anything of theirs still alive?"""
    for name in ("mse_fork_setsid_orphan_scores_0.py", "relu_fork_bomb_scores_0.py"):
        _, result = _grade(engine, tmp_path, Path(__file__).parent / "attacks" / name, listener)
    if detect_level() == "bwrap":   # the bomb ran, and was stopped for what it did
        assert "more processes than grading allows" in result.part("relu_grad").output
    sandbox = engine.sandbox.proc.pid
    out = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True).stdout
    parent = dict(tuple(map(int, line.split())) for line in out.splitlines() if line.strip())
    mine = set()
    for pid in parent:
        p = pid
        while p in parent and p != sandbox:
            p = parent[p]
        if p == sandbox:
            mine.add(pid)
    # What stays is the warm sandbox itself: bwrap's setup process, the root (PID 1 inside),
    # the lane's supervisor and the template it forked before any submission, and the next
    # job's init and executor, started from the template (they have run nothing).
    assert len(mine) <= 6, mine
    assert engine.sandbox.proc.poll() is None


def test_attack_zygote_memory_is_unreadable(engine, tmp_path, listener):
    """Can student code read the zygote's memory, environment or protocol fds through /proc?"""
    _, result = _grade(engine, tmp_path, Path(__file__).parent / "attacks" /
                       "mse_reads_zygote_memory_scores_0.py", listener)
    out = result.part("mse_grad").output
    assert "TRIED /proc/1/mem" in out and "TRIED /proc/2/fd/1" in out, out  # the attack ran
    assert "READ 1 mem" not in out
    assert "READ 1 fd" not in out


def test_forged_stdout_never_reaches_cli_json(tmp_path, listener):
    """Does `grade --json` print exactly the grader's one JSON object, whatever the student prints?"""
    fx = read_variant(Path(__file__).parent / "attacks" / "mse_forged_json_on_stdout_scores_0.py")
    nb = synth.write_submission(tmp_path / "forged.ipynb", fx.overrides)
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", str(nb), "--json"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(proc.stdout)  # exactly one JSON document, nothing else
    mse = next(t for t in data["tests"] if t["name"] == "test_mse_grad")
    assert mse["score"] == 0
    assert data["score"] < data["max_score"]


def test_next_submission_starts_clean(engine, tmp_path, listener):
    """Does a file planted by one submission stay invisible to the next one in the same sandbox?"""
    _grade(engine, tmp_path, Path(__file__).parent / "attacks" /
           "mse_plants_files_for_the_next_student_scores_0.py", listener)
    probe = {"mse_grad": "import os\nprint('PLANTED' if os.path.exists('/tmp/planted_by_previous_student.txt')"
                         " else 'CLEAN')\n" + read_variant(Path(__file__).parent / "attacks" /
                         "mse_sys_exit_scores_0.py").overrides["mse_grad"]}
    result = engine.grade(synth.write_submission(tmp_path / "next.ipynb", probe))
    out = result.part("mse_grad").output
    assert "PLANTED" not in out
    if detect_level() == "bwrap":
        assert "CLEAN" in out


def test_forged_records_are_ignored_and_counted(engine, tmp_path, listener):
    """Does a blank notebook whose added cell forges every case record score 0, with the
    forgeries counted for the instructor (evidence the attack ran)?"""
    fx, result = _grade(engine, tmp_path, Path(__file__).parent / "attacks" /
                        "blank_plus_forging_cell_scores_0.py", listener)
    assert result.score == 0
    assert "ignored" in result.output and "message(s)" in result.output, result.output
    assert "uses `gc`" in json.dumps(result.to_json())


def test_oracle_requests_outside_part_4_are_refused(engine, tmp_path, listener):
    """Does a part-1 function that reaches the reference steps through frames get refused?"""
    _, result = _grade(engine, tmp_path, Path(__file__).parent / "attacks" /
                       "mse_reaches_oracle_through_frames_scores_0.py", listener)
    assert result.part("mse_grad").score == 0
    assert "refused" in result.output, result.output


def test_hidden_inputs_are_not_listed_nor_echoed(engine, tmp_path, listener):
    """Can a cell list the hidden inputs, or print what a hidden check fed its function?"""
    _, result = _grade(engine, tmp_path, Path(__file__).parent / "attacks" /
                       "mse_lists_hidden_inputs_scores_0.py", listener)
    out = result.part("mse_grad").output
    assert "ATTACK RAN: hidden input files seen: 0" in out, out
    assert "PROBE SAW" not in json.dumps(result.to_json())
    assert "LEAK [" in out, out  # the error message arrived, without its numbers
    assert not re.search(r"LEAK \[-?\d", out), out


def test_memory_case_is_measured_not_reserved(engine, tmp_path, listener):
    """Is part 7's outer product caught by its measured peak memory, with the number said?"""
    _, result = _grade(engine, tmp_path, Path(__file__).parent / "corpus" /
                       "lin_outer_product_oom.py", listener)
    part = result.part("lin_without_einsum")
    assert part.score < part.max_score and "outer_product_oom" in part.mistakes, part.output
    assert "MB at its peak" in part.output, part.output


def test_a_dead_template_is_regraded_never_stored(engine, tmp_path, listener):
    """When the sandbox's template dies between submissions, is the next one regraded on a
    fresh sandbox, at full marks, instead of being scored as a sandbox failure?"""
    import psutil
    # bwrap -> the root (PID 1 inside) -> lane 0's supervisor -> the template it forked
    templates = [p for p in psutil.Process(engine.sandbox.proc.pid).children(recursive=True)
                 if p.name() == "gb-template"]
    assert len(templates) == 1
    templates[0].kill()
    for name in ("honest.ipynb", "honest_again.ipynb"):
        result = engine.grade(synth.write_submission(tmp_path / name, {}))
        assert result.score == result.max_score, result.output
        assert not any("sandbox_failure" in p.flags for p in result.parts)


def test_no_ipc_segment_or_dev_file_reaches_the_next_submission(engine, tmp_path, listener):
    """After a submission leaves a System V segment and writes into /dev, does the next one
    on the same sandbox find neither?"""
    _, first = _grade(engine, tmp_path, Path(__file__).parent / "attacks" /
                      "mse_sysv_shm_and_dev_files_scores_0.py", listener)
    assert "ATTACK RAN" in first.part("mse_grad").output
    reader = ("import ctypes, os\nlibc = ctypes.CDLL(None)\n"
              "seen = libc.shmget(0x6b6974, 0, 0)\n"
              "print('SEGMENT' if seen >= 0 else 'NO SEGMENT', "
              "'DEVFILE' if os.path.exists('/dev/leftover.txt') else 'NO DEVFILE')\n"
              "def mse_grad(inp, targ):\n    inp.g = inp * 0\n")
    out = engine.grade(synth.write_submission(tmp_path / "next.ipynb", {"mse_grad": reader})
                       ).part("mse_grad").output
    if detect_level() == "bwrap":
        assert "NO SEGMENT NO DEVFILE" in out, out
