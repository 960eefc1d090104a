"""Sandbox lanes: submissions graded side by side in one sandbox cannot reach, starve or end each other."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import psutil
import pytest

from autograder import synth
from autograder.engine import Engine
from autograder.sandbox import Limits, detect_level
from autograder.sandbox import launcher
from autograder.synth import read_variant
from fixture_files import check_scores

pytestmark = pytest.mark.sandbox
ATTACKS = Path(__file__).parent / "attacks"
FAST = Limits(cell_seconds=8, case_seconds=4, part_seconds=12, job_seconds=120)


@pytest.fixture(scope="module")
def engine():
    with Engine("gradient_backward", limits=FAST, lanes=2) as eng:
        if eng.lanes < 2:
            pytest.skip("this machine gives the sandbox no per-lane cgroups: one lane only")
        yield eng


def _lane_cgroups(pid: int) -> set[str]:
    """The cgroup paths (pids, memory, cpu) a process is in, as the host sees them."""
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    return {f"{kind}:{path}" for _, kind, path in (line.split(":", 2) for line in lines)
            if kind in ("pids", "memory", "cpu")}


def _sandbox_processes(engine, name: str) -> list[psutil.Process]:
    return [p for p in psutil.Process(engine.sandbox.proc.pid).children(recursive=True)
            if p.name() == name]


def _side_by_side(engine, tmp_path, attack: str):
    """The attack on lane 0 while lane 1 grades an honest notebook again and again; returns
    the attack's variant and result, lane 1's results, and how many overlapped the attack."""
    fx = read_variant(ATTACKS / attack)
    hostile = fx.build(tmp_path / f"{fx.name}.ipynb")
    honest = synth.write_submission(tmp_path / "honest.ipynb", {})
    done, spans, results = threading.Event(), [], []

    def honest_lane():
        while not done.is_set() or not results:
            began = time.monotonic()
            results.append(engine.grade(honest, lane=1))
            spans.append((began, time.monotonic()))

    neighbour = threading.Thread(target=honest_lane)
    neighbour.start()
    time.sleep(0.2)                       # lane 1 is busy before the attack starts
    began = time.monotonic()
    attacked = engine.grade(hostile, lane=0)
    ended = time.monotonic()
    done.set()
    neighbour.join()
    overlapping = sum(1 for a, b in spans if a < ended and b > began)
    return fx, attacked, results, overlapping


@pytest.mark.parametrize("attack", ["relu_fork_bomb_scores_0.py", "mse_memory_bomb_scores_0.py",
                                    "mse_kills_every_process_scores_0.py",
                                    "mse_ghost_thread_outlives_job_scores_0.py"])
def test_an_attack_in_one_lane_costs_the_other_lane_nothing(engine, tmp_path, attack):
    """While one lane's submission bombs forks or memory, or kills every process it sees, does
    an honest submission graded at the same time in the other lane keep full marks, with no
    sandbox failure and no restart of its lane?"""
    opened = engine.sandbox.lanes[1].opened
    fx, attacked, honest, overlapping = _side_by_side(engine, tmp_path, attack)
    assert not check_scores(fx, attacked), check_scores(fx, attacked)   # the attack ran, and lost
    if attack.startswith("relu_fork_bomb"):
        assert "more processes than grading allows" in attacked.part("relu_grad").output
    assert overlapping >= 1, "the two lanes did not grade at the same time"
    for result in honest:
        assert result.score == result.max_score, result.output
        assert not any(p.flags for p in result.parts), [p.flags for p in result.parts]
    assert engine.sandbox.lanes[1].opened == opened


def test_each_lane_runs_in_cgroups_of_its_own(engine, tmp_path):
    """Are the lanes' supervisors, templates and jobs each in their own lane's pids, memory
    and cpu cgroups, apart from each other and from the root?"""
    engine.grade(synth.write_submission(tmp_path / "warm.ipynb", {}), lane=1)
    supervisors = _sandbox_processes(engine, "gb-supervisor")
    assert len(supervisors) == 2
    groups = [_lane_cgroups(p.pid) for p in supervisors]
    assert all(len(g) == 3 for g in groups) and not groups[0] & groups[1], groups
    root = psutil.Process(engine.sandbox.proc.pid).children()[0]
    assert root.name() == "gb-root" and not _lane_cgroups(root.pid) & (groups[0] | groups[1])
    for sup, group in zip(supervisors, groups):
        for child in sup.children(recursive=True):
            assert _lane_cgroups(child.pid) == group, (child.name(), _lane_cgroups(child.pid), group)


def test_a_lane_whose_supervisor_dies_is_restarted_alone(engine, tmp_path):
    """When one lane's supervisor dies, is that lane alone started again from the warm root
    (the other lane's supervisor and the sandbox untouched), and does it grade at full marks?"""
    honest = synth.write_submission(tmp_path / "honest.ipynb", {})
    bwrap = engine.sandbox.proc.pid
    by_lane = {}
    for sup in _sandbox_processes(engine, "gb-supervisor"):
        lane = next(int(p.rsplit("lane", 1)[1]) for p in _lane_cgroups(sup.pid) if "lane" in p)
        by_lane[lane] = sup
    opened = [lane.opened for lane in engine.sandbox.lanes]
    by_lane[1].kill()
    by_lane[1].wait(5)
    result = engine.grade(honest, lane=1)
    assert result.score == result.max_score, result.output
    assert engine.sandbox.proc.pid == bwrap and engine.sandbox.alive()
    assert [lane.opened for lane in engine.sandbox.lanes] == [opened[0], opened[1] + 1]
    assert by_lane[0].is_running() and engine.grade(honest, lane=0).score == result.max_score
    # what the dead supervisor started (its template, the job it had ready) is gone too
    deadline = time.monotonic() + 5
    while len(_sandbox_processes(engine, "gb-template")) > 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_sandbox_processes(engine, "gb-template")) == 2


@pytest.mark.skipif(detect_level() != "bwrap", reason="lanes need bwrap")
def test_without_per_lane_cgroups_a_sandbox_has_one_lane(monkeypatch):
    """Where the host cannot give each lane its own pids and memory cgroups, does a sandbox
    asked for several lanes run one (fails closed), and still grade?"""
    monkeypatch.setattr(launcher._Cgroup, "per_lane", property(lambda self: False))
    with Engine("gradient_backward", limits=FAST, lanes=3, many=False) as eng:
        assert eng.lanes == 1 and len(eng.sandbox.lanes) == 1


def test_student_code_makes_no_namespace(engine, tmp_path):
    """Can a cell make a user namespace (and so use up the machine's, leaving other jobs
    without their own), or is it refused while its job, set up before it, runs as usual?"""
    cell = ("import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "for flag in (0x10000000, 0x20000000, 0x40000000):\n"
            "    print('ATTACK RAN: unshare', hex(flag), libc.unshare(flag), ctypes.get_errno())\n"
            "def mse_grad(inp, targ):\n    inp.g = inp * 0\n")
    out = engine.grade(synth.write_submission(tmp_path / "ns.ipynb", {"mse_grad": cell}),
                       lane=0).part("mse_grad").output
    assert out.count("ATTACK RAN: unshare") == 3, out
    assert " -1 " in out and " 0 " not in out.split("ATTACK RAN")[1], out


def test_lanes_share_no_network(engine, tmp_path):
    """While one lane's cell listens on an abstract unix socket and a loopback port, can a
    cell in the other lane reach either (a channel for hidden inputs between two jobs)?"""
    listen = ("import socket, time\n"
              "u = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); u.bind('\\0gbk-lanes-test')\n"
              "t = socket.socket(); t.bind(('127.0.0.1', 45671)); t.listen()\n"
              "print('ATTACK RAN: listening'); time.sleep(4)\n"
              "def mse_grad(inp, targ):\n    inp.g = inp * 0\n")
    reach = ("import socket, time\ntime.sleep(1)\nfor what, fn in (\n"
             "        ('unix', lambda: socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'x', '\\0gbk-lanes-test')),\n"
             "        ('tcp', lambda: socket.create_connection(('127.0.0.1', 45671), timeout=1))):\n"
             "    try:\n        fn(); print('REACHED', what)\n"
             "    except OSError as e:\n        print('ATTACK RAN: not reached', what, type(e).__name__)\n"
             "def mse_grad(inp, targ):\n    inp.g = inp * 0\n")
    results = {}

    def run(lane, code):
        nb = synth.write_submission(tmp_path / f"net{lane}.ipynb", {"mse_grad": code})
        results[lane] = engine.grade(nb, lane=lane).part("mse_grad").output

    first = threading.Thread(target=run, args=(0, listen))
    first.start()
    run(1, reach)
    first.join()
    assert "ATTACK RAN: listening" in results[0], results[0]
    assert results[1].count("ATTACK RAN: not reached") == 2 and "REACHED" not in results[1], results[1]


HAMMER = '''import os, time
def hammer(out):
    n, end = 0, time.time() + 5
    while time.time() < end:
        for name in os.listdir("/proc"):
            try:
                if name.isdigit() and open(f"/proc/{name}/comm").read().strip() == "gb-prober":
                    fd = os.open(f"/proc/{name}/clear_refs", os.O_WRONLY)
                    for _ in range(500):
                        os.write(fd, b"5")     # resets that process's peak RSS (VmHWM)
                        n += 1
                    os.close(fd)
            except OSError:
                pass
    open(out, "w").write(str(n))
    os._exit(0)
if os.fork() == 0:
    hammer("/tmp/resets")
time.sleep(5.5)
print("ATTACK RAN: VmHWM resets", open("/tmp/resets").read() if os.path.exists("/tmp/resets") else 0)
def mse_grad(inp, targ):
    inp.g = inp * 0
'''


def test_another_lane_cannot_hide_a_memory_peak(engine, tmp_path):
    """While one lane's cell resets the peak RSS (VmHWM) of every prober it can see in /proc,
    is the other lane's memory case still measured, so that the outer product is still caught?"""
    victim = read_variant(Path(__file__).parent / "corpus" / "lin_outer_product_oom.py")
    nb = victim.build(tmp_path / "victim.ipynb")
    done, results = threading.Event(), []

    def victim_lane():
        while not done.is_set() or not results:
            results.append(engine.grade(nb, lane=1))

    neighbour = threading.Thread(target=victim_lane)
    neighbour.start()
    out = engine.grade(synth.write_submission(tmp_path / "hammer.ipynb", {"mse_grad": HAMMER}),
                       lane=0).part("mse_grad").output
    done.set()
    neighbour.join()
    resets = int(out.split("ATTACK RAN: VmHWM resets")[1].split()[0])
    assert resets > 0, out                     # the attack ran, and reached probers
    for result in results:
        part = result.part("lin_without_einsum")
        assert "outer_product_oom" in part.mistakes and "MB at its peak" in part.output, part.output


def test_cgroups_of_a_killed_sandbox_are_removed_by_the_next_one():
    """When a worker was killed with -9 (it cannot remove its sandbox's cgroups), does the
    next sandbox's start remove them, while the cgroups of a live process stay?"""
    base = Path("/sys/fs/cgroup/pids")
    dead = base / "gbk-999999999-testdead"
    live = base / f"gbk-{os.getppid()}-testlive"
    try:
        for d in (dead, dead / "lane0", live):
            d.mkdir()
    except OSError:
        pytest.skip("no writable pids cgroup here")
    try:
        launcher._remove_stale_cgroups()
        assert not dead.exists() and live.exists()
    finally:
        for d in (dead / "lane0", dead, live):
            if d.exists():
                d.rmdir()


def test_a_job_can_neither_lease_a_shared_file_nor_reach_a_keyring(engine, tmp_path):
    """Can a cell take a write lease on a file bound into the sandbox (stalling every process
    that opens it, in any lane or on the host) or add a key to a keyring of the sandbox's user
    (a channel that outlives the sandbox)? Both must be refused while the cell runs."""
    cell = ("import ctypes, fcntl, os\n"
            "fd = os.open('/sandbox/wire.py', os.O_RDONLY)\n"
            "try:\n    fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK); print('LEASED')\n"
            "except OSError as e:\n    print('ATTACK RAN: lease refused', e.errno)\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "libc.syscall.restype = ctypes.c_long\n"
            "for ring in (-4, -3, -2):   # the user, session and process keyrings\n"
            "    r = libc.syscall(248, b'user', b'gbk-test', b'x', 1, ring)\n"
            "    print('ATTACK RAN: add_key', ring, r, ctypes.get_errno())\n"
            "def mse_grad(inp, targ):\n    inp.g = inp * 0\n")
    out = engine.grade(synth.write_submission(tmp_path / "lease.ipynb", {"mse_grad": cell}),
                       lane=0).part("mse_grad").output
    assert "ATTACK RAN: lease refused" in out and "LEASED" not in out, out
    assert out.count("ATTACK RAN: add_key") == 3 and out.count(" -1 1") == 3, out   # EPERM
    assert "gbk-test" not in Path("/proc/keys").read_text()
