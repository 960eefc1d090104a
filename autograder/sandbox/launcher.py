"""Starts the sandboxed zygote (bwrap, or the strongest fallback this machine has) and talks to it."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import wire

log = logging.getLogger("autograder.sandbox")
INSIDE = Path(__file__).with_name("inside.py")  # with its sibling wire.py: all the sandbox runs
WORKDIR = "/home/student"
LEVELS = ("bwrap", "namespaces", "rlimits")
DESCRIPTIONS = {
    "bwrap": "bwrap (no network, own PID/IPC/UTS/user namespaces, read-only system, "
             "course folder not visible, rlimits)",
    "namespaces": "namespaces only (no network; bubblewrap is missing, so student code CAN READ "
                  "the grading user's files; install bubblewrap)",
    "rlimits": "rlimits only (bubblewrap and user namespaces are unavailable: student code runs "
               "with the grading user's file and NETWORK access; install bubblewrap)",
}


@dataclass(frozen=True)
class Limits:
    """Per-submission resource limits; every number is a setting with a reason."""
    memory_mb: int = 2048      # RLIMIT_AS of the cells' processes: torch alone maps ~1 GB
    cpu_seconds: int = 60      # RLIMIT_CPU per process, a backstop behind the wall clocks below
    file_mb: int = 16          # RLIMIT_FSIZE: the only writable place is a small tmpfs anyway
    cell_seconds: float = 30   # wall clock for one notebook cell's top-level code
    case_seconds: float = 15   # wall clock for one probe (one hidden-test input)
    part_seconds: float = 60   # wall clock for all probes of one part
    job_seconds: float = 300   # wall clock for the whole submission
    report_mb: int = 96        # what one submission may send back, in total
    tmpfs_mb: int = 256        # each submission's private /tmp
    shm_mb: int = 64           # each submission's private /dev/shm
    pids: int = 256            # pids cgroup limit (processes + threads), where cgroups are writable

    def to_wire(self) -> dict:
        return asdict(self)


def _libc_unshare_works() -> bool:
    """Can this machine make a user + network namespace (the `namespaces` fallback)?"""
    code = ("import ctypes,os,sys;l=ctypes.CDLL(None,use_errno=True);"
            "sys.exit(0 if l.unshare(0x10000000|0x40000000)==0 else 1)")
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run([sys.executable, "-c", code], timeout=20).returncode == 0
    return False


@lru_cache(maxsize=None)
def detect_level(forced: str | None = None) -> str:
    """The strongest isolation this machine offers (or GBK_ISOLATION, for tests and laptops)."""
    forced = forced or os.environ.get("GBK_ISOLATION") or None
    if forced:
        if forced not in LEVELS:
            raise ValueError(f"GBK_ISOLATION must be one of {LEVELS}, not {forced!r}")
        return forced
    bwrap = shutil.which("bwrap")
    if bwrap:
        probe = subprocess.run([bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/",
                                "true"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return "bwrap"
        log.warning("bwrap is installed but cannot create namespaces here: %s",
                    probe.stderr.decode(errors="replace").strip()[:200])
    return "namespaces" if _libc_unshare_works() else "rlimits"


def _real(path: str | Path) -> str:
    return os.path.realpath(path)


def _system_binds() -> list[str]:
    """Read-only views of what the interpreter, numpy and torch need, and nothing else."""
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib64", "/lib32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for etc in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/passwd",
                "/etc/group", "/etc/localtime", "/etc/nsswitch.conf"):
        if os.path.exists(etc):
            args += ["--ro-bind", etc, etc]
    prefixes = {_real(sys.base_prefix), _real(sys.prefix)}
    exe_dir = os.path.dirname(_real(sys.executable))
    prefixes.add(os.path.dirname(exe_dir))
    for p in sorted(prefixes):
        if not p.startswith("/usr"):
            args += ["--ro-bind", p, p]
    if sys.prefix != _real(sys.prefix):
        args += ["--ro-bind", _real(sys.prefix), sys.prefix]
    return args


CGROUP_CONTROLLERS = ("pids", "memory", "cpu")


def lanes_possible() -> bool:
    """Can a sandbox here have several lanes (bwrap, and cgroups this process may make for
    each lane)? Where not, a cohort needs a worker per core instead."""
    return detect_level() == "bwrap" and all(
        os.access(Path("/sys/fs/cgroup", c), os.W_OK) for c in CGROUP_CONTROLLERS)


def _remove_stale_cgroups() -> None:
    """The empty cgroups of sandboxes whose process is gone (a worker killed with -9 cannot
    remove its own): they would pile up on a machine that grades every day."""
    for controller in CGROUP_CONTROLLERS:
        with contextlib.suppress(OSError):
            for d in Path("/sys/fs/cgroup", controller).glob("gbk-*-*"):
                with contextlib.suppress(OSError, ValueError):
                    pid = int(d.name.split("-")[1])
                    if pid == os.getpid() or Path(f"/proc/{pid}").exists():
                        continue
                    for lane in d.glob("lane*"):
                        lane.rmdir()   # fails, and so keeps it, while a process is in it
                    d.rmdir()


class _Cgroup:
    """Pids and memory cgroups for one sandbox, and one pair per lane inside it, where this
    machine lets us make them. Each lane gets what a sandbox of one lane gets; the sandbox's
    own cgroup holds their sum and the root's share."""

    def __init__(self, limits: Limits, lanes: int = 1):
        self.dirs: list[Path] = []
        self.lane_dirs: list[list[Path]] = [[] for _ in range(lanes)]
        name = f"gbk-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        _remove_stale_cgroups()
        lane_memory = (limits.memory_mb + 1536) * 1024 * 1024
        for base, key, per_lane, root_share in (
                (Path("/sys/fs/cgroup/pids"), "pids.max", limits.pids, 64),
                (Path("/sys/fs/cgroup/memory"), "memory.limit_in_bytes", lane_memory, 1 << 30),
                # Equal CPU weight per lane: in a cgroup of its own, a lane's processes share one
                # lane's weight however many sessions (autogroups) they make or renice.
                (Path("/sys/fs/cgroup/cpu"), "cpu.shares", 1024, 0)):
            try:
                d = base / name
                d.mkdir()
                self.dirs.append(d)
                if key != "cpu.shares":
                    (d / key).write_text(str(per_lane if lanes == 1 else lanes * per_lane + root_share))
                if lanes > 1:
                    for i in range(lanes):
                        (d / f"lane{i}").mkdir()
                        (d / f"lane{i}" / key).write_text(str(per_lane))
                        self.lane_dirs[i].append(d / f"lane{i}")
            except OSError:
                continue

    @property
    def procs(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    @property
    def per_lane(self) -> bool:
        """Has every lane the sandbox's three controllers, pids, memory and cpu?"""
        return len(self.dirs) == 3 and all(len(ds) == 3 for ds in self.lane_dirs)

    @property
    def description(self) -> str:
        return "+".join(d.parent.name for d in self.dirs) or "none"

    def lane_fds(self, index: int) -> list[int]:
        """cgroup.procs of lane `index`, opened here for the lane's supervisor to join (a file
        opened by the host grants the write; the sandbox sees no cgroup filesystem)."""
        return [os.open(d / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC) for d in self.lane_dirs[index]]

    def lane_memory_fds(self, index: int) -> list[int]:
        """The lane's memory peak (read, and reset by writing) and usage, for its supervisor's
        memory cases: nothing else in the sandbox can reach them."""
        for d in self.lane_dirs[index]:
            if d.parent.parent.name == "memory":
                return [os.open(d / "memory.max_usage_in_bytes", os.O_RDWR | os.O_CLOEXEC),
                        os.open(d / "memory.usage_in_bytes", os.O_RDONLY | os.O_CLOEXEC)]
        return []

    def kill_all(self, index: int | None = None):
        """Every process of the sandbox (or of one lane): a cgroup is not left by forking."""
        dirs = self.dirs + [d for ds in self.lane_dirs for d in ds] if index is None else self.lane_dirs[index]
        for d in dirs:
            with contextlib.suppress(OSError, ValueError):
                for pid in (d / "cgroup.procs").read_text().split():
                    with contextlib.suppress(OSError):
                        os.kill(int(pid), signal.SIGKILL)

    def remove(self):
        for d in [d for ds in self.lane_dirs for d in ds] + self.dirs:
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)


def _failure() -> dict:
    return {"status": "sandbox_failure", "cells": [], "cases": [], "partruns": [],
            "cell_outputs": [], "part_outputs": []}


class SandboxError(RuntimeError):
    """The sandbox itself failed (not the student's code)."""


class Sandbox:
    """One sandbox: a root that imports torch and warms up once, and `lanes` supervisors
    forked from it, each grading one submission at a time (`sandbox.lanes[i].grade`, from one
    thread per lane). `grade` is lane 0's. Restart it with `restart()`."""

    def __init__(self, *, inputs: dict[str, np.ndarray] | None, probes_source: str,
                 workdir_files: list[Path], limits: Limits = Limits(), level: str | None = None,
                 prefix: list[str] | None = None, oracles_source: str = "",
                 oracle_parts: list[str] | None = None, wait: bool = True, many: bool = True,
                 lanes: int = 1):
        """Launches the sandbox at once. With `inputs=None` it imports torch while the caller
        computes the hidden inputs (`provide_inputs`); with `wait=False` the caller goes on with
        its own start-up and the first `grade()` waits for the sandbox to be ready. `many`: it
        will grade many submissions, so its template is worth backing with huge pages (1.3 s
        once, then every submission's forks about 0.03 s cheaper). `lanes` above 1 need bwrap
        and per-lane pids and memory cgroups; without them the sandbox has one lane."""
        self.limits = limits
        self.many = many
        self.oracles_source = oracles_source
        self.oracle_parts = list(oracle_parts or [])
        self.prefix = list(prefix or [])
        self.level = detect_level(level)
        self.probes_source = probes_source
        self.workdir_files = [Path(p).resolve() for p in workdir_files]
        self.tmp = Path(tempfile.mkdtemp(prefix="gbk-sandbox-"))
        self.inputs_dir = self.tmp / "inputs"
        self.inputs_dir.mkdir()
        self.proc: subprocess.Popen | None = None
        self.ctl: socket.socket | None = None
        self.cgroup: _Cgroup | None = None
        self.generation = 0
        self.lock = threading.RLock()
        self._have_inputs = False
        self.timings: dict[str, float] = {}
        if self.level != "bwrap":
            log.warning("SANDBOX WEAKENED: isolation level is %s", DESCRIPTIONS[self.level])
        self.lanes = [Lane(self, i) for i in range(max(1, lanes))]
        if inputs is not None:
            self._write_inputs(inputs)
        self.launch()
        if self._have_inputs:
            self._open_lanes()
            if wait:
                self.wait_ready()

    @property
    def description(self) -> str:
        cg = self.cgroup.description if self.cgroup else "none"
        return f"{DESCRIPTIONS[self.level]}; cgroups: {cg}"

    # -- the process --

    def _command(self, lanes_fd: int) -> list[str]:
        python = [sys.executable, "-I", "-B"]
        if self.level != "bwrap":
            return python + [str(INSIDE), "--isolation", self.level,
                             "--workdir", str(self._plain_workdir()), "--lanes-fd", str(lanes_fd)]
        # No --disable-userns: the supervisor gives every submission its own user, PID and
        # mount namespaces, so the kernel ends all its processes and its /tmp with it.
        args = ["bwrap", "--unshare-all", "--unshare-user",
                "--uid", "1000", "--gid", "1000", "--die-with-parent", "--new-session",
                # The root is the namespace's init: signals from student code can't kill it.
                "--as-pid-1",
                # The private /tmp comes first, so a venv or kit that lives under /tmp is
                # still bound (read-only) on top of it rather than hidden by it.
                "--size", str(self.limits.tmpfs_mb * 1024 * 1024), "--tmpfs", "/tmp",
                *_system_binds(),
                "--ro-bind", str(INSIDE.parent / "wire.py"), "/sandbox/wire.py",
                "--ro-bind", str(INSIDE), "/sandbox/inside.py",
                "--ro-bind", str(self.inputs_dir), "/io/inputs"]
        args += ["--dir", WORKDIR]
        for f in self.workdir_files:
            args += ["--ro-bind", str(f), f"{WORKDIR}/{f.name}"]
        args += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/", "--clearenv", *self._env_args(), "--chdir", WORKDIR,
                 *python, "/sandbox/inside.py", "--isolation", "bwrap", "--lanes-fd", str(lanes_fd)]
        return args

    def _plain_workdir(self) -> Path:
        """Without bwrap the student's working directory is a private copy of the data files."""
        wd = self.tmp / "work"
        wd.mkdir(exist_ok=True)
        for f in self.workdir_files:
            target = wd / f.name
            if not target.exists():
                shutil.copy2(f, target)
                target.chmod(0o444)
        return wd

    def _env(self) -> dict[str, str]:
        return {"HOME": "/tmp", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
                "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                "MALLOC_ARENA_MAX": "2", "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONHASHSEED": "0", "TORCH_CPP_LOG_LEVEL": "ERROR"}

    def _env_args(self) -> list[str]:
        out = []
        for k, v in self._env().items():
            out += ["--setenv", k, v]
        return out

    def _write_inputs(self, inputs: dict[str, np.ndarray]):
        for name, arr in inputs.items():
            np.save(self.inputs_dir / f"{name}.npy", arr, allow_pickle=False)
        self._have_inputs = True

    def provide_inputs(self, inputs: dict[str, np.ndarray]):
        """Hands over the hidden inputs of a sandbox launched without them.

        The lanes are asked for only now: each reads /io/inputs after its template has been
        forked, on its own init, so writing them while the root starts up is safe."""
        if self._have_inputs:
            raise SandboxError("the sandbox already has its inputs")
        self._write_inputs(inputs)
        self._open_lanes()
        self.timings["inputs_at"] = time.monotonic()

    def _open_lanes(self):
        for lane in self.lanes:
            try:
                lane.open()
            except OSError:
                pass          # it died while starting: wait_ready() says so, restart() retries

    def start(self):
        """Launch and open every lane: the (re)start of a sandbox whose inputs are on disk."""
        with self.lock:
            self.launch()
            self._open_lanes()
        self.wait_ready()

    def launch(self):
        """Starts bwrap and the root (which imports torch and warms up; lanes come later)."""
        self.timings["launch_at"] = time.monotonic()
        self.cgroup = _Cgroup(self.limits, len(self.lanes))
        if len(self.lanes) > 1 and not (self.level == "bwrap" and self.cgroup.per_lane):
            # Lanes share one sandbox: without a PID namespace per job and a cgroup per lane,
            # one lane's submission could take another's processes, memory or CPU. Fails closed.
            log.info("one lane per sandbox: per-lane cgroups are not available here")
            self.cgroup.remove()
            self.lanes = self.lanes[:1]
            self.cgroup = _Cgroup(self.limits, 1)
        # The shell joins the cgroups before exec, so every process of the sandbox is counted;
        # a join that fails ends the launch.
        joins = "".join(f'echo $$ > "{p}" || exit 97; ' for p in self.cgroup.procs)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        cmd = ["/bin/sh", "-c", joins + 'exec "$@"', "sh", *self._command(theirs.fileno())]
        env = None if self.level == "bwrap" else {**self._env(), "HOME": str(self.tmp)}
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                         stderr=None if os.environ.get("GBK_SANDBOX_DEBUG") else subprocess.DEVNULL,
                                         env=env, start_new_session=True, cwd=str(self.tmp),
                                         pass_fds=[theirs.fileno()])
        finally:
            theirs.close()
        self.ctl = ours
        self.generation += 1
        self.proc.stdin.write((json.dumps({"op": "init", "probes": self.probes_source,
                                           "prefix": self.prefix, "huge_pages": self.many}) + "\n").encode())
        self.proc.stdin.flush()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self):
        """Blocks until every lane says its template is warm; a no-op for lanes that did."""
        if not self._have_inputs:
            raise SandboxError("the sandbox has no hidden inputs yet (provide_inputs)")
        t0 = time.monotonic()
        for lane in self.lanes:
            lane.wait_ready()
        self.timings["waited"] = time.monotonic() - t0
        self.timings["ready_after"] = time.monotonic() - self.timings.get("launch_at", t0)

    def grade(self, job: str, cells: list[dict], parts: dict) -> dict:
        """Lane 0's `grade`."""
        return self.lanes[0].grade(job, cells, parts)

    def restart(self):
        with self.lock:
            self.stop()
            self.start()

    def relaunch(self):
        """A new root after the old one died, for the lane that noticed. The other lanes'
        channels are theirs to drop: each finds its supervisor gone and asks for a new one."""
        with self.lock:
            self.stop(lanes=False)
            self.launch()

    def stop(self, lanes: bool = True):
        with self.lock:
            if lanes:
                for lane in self.lanes:
                    lane.drop()
            if self.proc is None:
                return
            with contextlib.suppress(Exception):
                self.ctl.close()
            with contextlib.suppress(Exception):
                self.proc.stdin.write(b'{"op": "quit"}\n')
                self.proc.stdin.flush()
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            if self.cgroup:
                self.cgroup.kill_all()
            with contextlib.suppress(Exception):
                self.proc.wait(timeout=5)
            with contextlib.suppress(Exception):
                self.proc.stdin.close()
            self.proc = None
            if self.cgroup:
                self.cgroup.remove()
                self.cgroup = None

    def close(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Lane:
    """One supervisor of a sandbox, as the host sees it: its channel, and the submission it
    grades. A lane that fails is restarted alone, from the root's warm state; when the root
    itself is gone, the whole sandbox is."""

    def __init__(self, box: Sandbox, index: int):
        self.box, self.index = box, index
        self.sock: socket.socket | None = None
        self.generation = 0
        self.opened = 0                # supervisors started for this lane (restarts show here)
        self._buf = bytearray()
        self._pending = False          # init sent, "ready" not read yet
        self._clean_pending: str | None = None

    @property
    def limits(self) -> Limits:
        return self.box.limits

    def open(self):
        """Ask the root for a fresh supervisor on a new channel (an earlier one of this lane
        ends, with everything it started), and send it the lane's init: the inputs folder and
        the oracles, which only a lane ever holds."""
        box = self.box
        self.drop()
        if box.cgroup and box.cgroup.lane_dirs[self.index]:
            box.cgroup.kill_all(self.index)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        lanes = box.cgroup and len(box.lanes) > 1
        cgroups = box.cgroup.lane_fds(self.index) if lanes else []
        memory = box.cgroup.lane_memory_fds(self.index) if lanes else []
        try:
            socket.send_fds(box.ctl, [json.dumps({"op": "lane", "index": self.index,
                                                  "join": len(cgroups)}).encode()],
                            [theirs.fileno(), *cgroups, *memory])
        finally:
            theirs.close()
            for fd in cgroups + memory:
                os.close(fd)
        self.sock, self.generation = ours, box.generation
        self.opened += 1
        self._send({"op": "init", "inputs_dir": "/io/inputs" if box.level == "bwrap"
                    else str(box.inputs_dir), "oracles": box.oracles_source,
                    "oracle_parts": box.oracle_parts})
        self._pending = True

    def drop(self):
        """Forget this lane's channel (its supervisor ends when the root hears of a new one)."""
        self._clean_pending, self._pending = None, False
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None
        self._buf = bytearray()

    def wait_ready(self):
        """Blocks until this lane's supervisor says its template is warm."""
        if not self._pending:
            return
        ready = self._receive(120)
        self._pending = False
        if ready.get("op") != "ready":
            raise SandboxError(f"the sandbox did not start: {ready}")
        if ready.get("isolation") and ready["isolation"] != self.box.level:
            log.warning("SANDBOX WEAKENED: asked for %s, got %s", self.box.level, ready["isolation"])
            self.box.level = ready["isolation"]
        log.debug("sandbox lane %d ready (%s), supervisor pid %s", self.index, self.box.level,
                  ready.get("pid"))

    def _send(self, payload: dict):
        if self.sock is None:
            raise BrokenPipeError("the lane is not open")
        self.sock.sendall((json.dumps(payload) + "\n").encode())

    def _receive(self, timeout: float) -> dict:
        """One JSON line from the supervisor, with the raw case files that follow it
        (`blob_sizes`); an empty dict when it died, timed out, or sent more than a report may
        hold."""
        if self.sock is None:
            return {}
        deadline = time.monotonic() + timeout
        cap = (self.limits.report_mb + 8) * 1024 * 1024
        while (end := self._buf.find(b"\n")) < 0:
            if len(self._buf) > cap or not self._read_more(deadline):
                return {}
        line = bytes(self._buf[:end])
        del self._buf[:end + 1]
        try:
            msg = json.loads(line)
        except ValueError:
            return {}
        if not isinstance(msg, dict):
            return {}
        sizes = wire.blob_sizes(msg, cap)
        if sizes is None:
            return {}
        total = sum(sizes)
        while len(self._buf) < total:
            if not self._read_more(deadline):
                return {}
        if sizes:
            blobs, at = [], 0
            for n in sizes:
                blobs.append(bytes(self._buf[at:at + n]))
                at += n
            del self._buf[:total]
            wire.attach_blobs(msg, blobs)
        return msg

    def _read_more(self, deadline: float) -> bool:
        """More bytes from the supervisor into the buffer (False: it died or the deadline
        passed). The buffer is a bytearray: appending to it does not copy what it holds."""
        fd = self.sock.fileno()
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return False
        try:
            chunk = os.read(fd, 1 << 20)
        except OSError:
            return False
        self._buf += chunk
        return bool(chunk)

    def grade(self, job: str, cells: list[dict], parts: dict) -> dict:
        """Run one submission; returns the supervisor's report (cells, cases, outputs, status).

        When the submission starts with exactly the locked prefix the root already ran,
        those cells are skipped and the run starts from the template's state after them."""
        if self.generation != self.box.generation or self.sock is None:
            self.restart()          # the sandbox was restarted (by another lane) meanwhile
        self.wait_ready()
        self._await_clean()
        if not self.box.alive():
            self.restart()
        n = len(self.box.prefix)
        skip = n if n and [c["source"] for c in cells[:n]] == self.box.prefix else 0
        request = {"op": "grade", "job": job, "cells": cells, "parts": parts, "skip": skip,
                   "limits": self.limits.to_wire()}
        try:
            self._send(request)
        except OSError:
            self.restart()
            self._send(request)
        reply = self._receive(self.limits.job_seconds + 30)
        if reply.get("op") != "done" or reply.get("job") != job:
            log.error("sandbox failed on job %s; restarting it", job)
            self.restart()
            return _failure()
        self._clean_pending = job  # the supervisor ends the job now; heard before the next one
        if reply.get("status") == "sandbox_failure":
            self._await_clean()
            self.restart()
        return reply

    def _await_clean(self):
        """The supervisor's word that the last job left nothing behind. Without it (not clean,
        or no answer), no later submission shares this lane: it is restarted."""
        job, self._clean_pending = self._clean_pending, None
        if job is None or self.sock is None:
            return
        msg = self._receive(60)
        if msg.get("op") != "clean" or msg.get("job") != job or not msg.get("ok"):
            log.warning("sandbox lane %d not provably clean after job %s; restarting it",
                        self.index, job)
            self.restart()

    def restart(self):
        """A fresh supervisor for this lane; a fresh sandbox first when the root is gone."""
        with self.box.lock:
            if not self.box.alive():
                self.box.relaunch()
            try:
                self.open()
            except OSError:
                self.box.relaunch()
                self.open()
        self.wait_ready()
