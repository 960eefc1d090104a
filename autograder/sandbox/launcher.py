"""Starts the sandboxed zygote (bwrap, or the strongest fallback this machine has) and talks to it."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
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


class _Cgroup:
    """A pids (and memory) cgroup for one sandbox, where this machine lets us make one."""

    def __init__(self, limits: Limits):
        self.dirs: list[Path] = []
        name = f"gbk-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        for base, settings in (
                (Path("/sys/fs/cgroup/pids"), {"pids.max": str(limits.pids)}),
                (Path("/sys/fs/cgroup/memory"),
                 {"memory.limit_in_bytes": str((limits.memory_mb + 1536) * 1024 * 1024)})):
            try:
                d = base / name
                d.mkdir()
                for k, v in settings.items():
                    (d / k).write_text(v)
                self.dirs.append(d)
            except OSError:
                continue

    @property
    def procs(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    @property
    def description(self) -> str:
        return "+".join(d.parent.name for d in self.dirs) or "none"

    def kill_all(self):
        """Without a PID namespace, strays that left the session are still in the cgroup."""
        for procs in self.procs:
            with contextlib.suppress(OSError, ValueError):
                for pid in Path(procs).read_text().split():
                    with contextlib.suppress(OSError):
                        os.kill(int(pid), signal.SIGKILL)

    def remove(self):
        for d in self.dirs:
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except OSError:
                    time.sleep(0.05)


def _failure() -> dict:
    return {"status": "sandbox_failure", "cells": [], "cases": [], "partruns": [],
            "cell_outputs": [], "part_outputs": []}


class SandboxError(RuntimeError):
    """The sandbox itself failed (not the student's code)."""


class Sandbox:
    """One warm zygote; grades one submission at a time. Restart it with `restart()`."""

    def __init__(self, *, inputs: dict[str, np.ndarray] | None, probes_source: str,
                 workdir_files: list[Path], limits: Limits = Limits(), level: str | None = None,
                 prefix: list[str] | None = None, oracles_source: str = "",
                 oracle_parts: list[str] | None = None, wait: bool = True, many: bool = True):
        """Launches the sandbox at once. With `inputs=None` it imports torch while the caller
        computes the hidden inputs (`provide_inputs`); with `wait=False` the caller goes on with
        its own start-up and the first `grade()` waits for the sandbox to be ready. `many`: it
        will grade many submissions, so its template is worth backing with huge pages (1.3 s
        once, then every submission's forks about 0.03 s cheaper)."""
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
        self.cgroup: _Cgroup | None = None
        self._buf = bytearray()
        self._have_inputs = False
        self._pending = False          # init sent, "ready" not read yet
        self.timings: dict[str, float] = {}
        if self.level != "bwrap":
            log.warning("SANDBOX WEAKENED: isolation level is %s", DESCRIPTIONS[self.level])
        if inputs is not None:
            self._write_inputs(inputs)
        self.launch()
        # Without inputs the template is forked and warmed up at once; the supervisor then
        # waits for `provide_inputs` before it reads the (by then complete) inputs folder.
        self._send_init(inputs_later=not self._have_inputs)
        if wait and self._have_inputs:
            self.wait_ready()

    @property
    def description(self) -> str:
        cg = self.cgroup.description if self.cgroup else "none"
        return f"{DESCRIPTIONS[self.level]}; cgroups: {cg}"

    # -- the process --

    def _command(self) -> list[str]:
        python = [sys.executable, "-I", "-B"]
        if self.level != "bwrap":
            return python + [str(INSIDE), "--isolation", self.level,
                             "--workdir", str(self._plain_workdir())]
        # No --disable-userns: the supervisor gives every submission its own user, PID and
        # mount namespaces, so the kernel ends all its processes and its /tmp with it.
        args = ["bwrap", "--unshare-all", "--unshare-user",
                "--uid", "1000", "--gid", "1000", "--die-with-parent", "--new-session",
                # The zygote is the namespace's init: signals from student code can't kill it.
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
                 *python, "/sandbox/inside.py", "--isolation", "bwrap"]
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

        The supervisor reads /io/inputs only after its template has been forked and this
        `inputs` message has arrived, so writing them while it starts up is safe."""
        if self._have_inputs:
            raise SandboxError("the sandbox already has its inputs")
        self._write_inputs(inputs)
        try:
            self._send({"op": "inputs"})
        except (BrokenPipeError, OSError):
            pass              # it died while starting: wait_ready() says so, restart() retries
        self.timings["inputs_at"] = time.monotonic()

    def start(self):
        """Launch, init and wait: the (re)start of a sandbox whose inputs are on disk."""
        self.launch()
        self._send_init()
        self.wait_ready()

    def launch(self):
        """Starts bwrap and the supervisor (which imports torch, then waits for `init`)."""
        self.timings["launch_at"] = time.monotonic()
        self.cgroup = _Cgroup(self.limits)
        # The shell joins the cgroups before exec, so every process of the sandbox is counted.
        joins = "".join(f'echo $$ > "{p}" 2>/dev/null; ' for p in self.cgroup.procs)
        cmd = ["/bin/sh", "-c", joins + 'exec "$@"', "sh", *self._command()]
        env = None if self.level == "bwrap" else {**self._env(), "HOME": str(self.tmp)}
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=None if os.environ.get("GBK_SANDBOX_DEBUG") else subprocess.DEVNULL, env=env, start_new_session=True,
                                     cwd=str(self.tmp))
        self._buf = bytearray()
        self._pending = False

    def _send_init(self, inputs_later: bool = False):
        self._send({"op": "init", "inputs_dir": "/io/inputs" if self.level == "bwrap"
                    else str(self.inputs_dir), "probes": self.probes_source, "prefix": self.prefix,
                    "oracles": self.oracles_source, "oracle_parts": self.oracle_parts,
                    "huge_pages": self.many,
                    "inputs_later": inputs_later})
        self._pending = True

    def wait_ready(self):
        """Blocks until the supervisor says its template is warm; a no-op when it already did."""
        if not self._have_inputs:
            raise SandboxError("the sandbox has no hidden inputs yet (provide_inputs)")
        if not self._pending:
            return
        t0 = time.monotonic()
        ready = self._receive(120)
        self._pending = False
        self.timings["waited"] = time.monotonic() - t0
        self.timings["ready_after"] = time.monotonic() - self.timings.get("launch_at", t0)
        if ready.get("op") != "ready":
            raise SandboxError(f"the sandbox did not start: {ready}")
        if ready.get("isolation") and ready["isolation"] != self.level:
            log.warning("SANDBOX WEAKENED: asked for %s, got %s", self.level, ready["isolation"])
            self.level = ready["isolation"]
        log.debug("sandbox ready (%s), zygote pid %s", self.level, ready.get("pid"))

    def _send(self, payload: dict):
        assert self.proc and self.proc.stdin
        self.proc.stdin.write((json.dumps(payload) + "\n").encode())
        self.proc.stdin.flush()

    def _receive(self, timeout: float) -> dict:
        """One JSON line from the zygote, with the raw case files that follow it (`blob_sizes`);
        an empty dict when it died, timed out, or sent more than a report may hold."""
        assert self.proc and self.proc.stdout
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
        """More bytes from the zygote into the buffer (False: it died or the deadline passed).
        The buffer is a bytearray: appending to it does not copy what it holds."""
        fd = self.proc.stdout.fileno()
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return False
        chunk = os.read(fd, 1 << 20)
        self._buf += chunk
        return bool(chunk)

    def grade(self, job: str, cells: list[dict], parts: dict) -> dict:
        """Run one submission; returns the zygote's report (cells, cases, outputs, status).

        When the submission starts with exactly the locked prefix the zygote already ran,
        those cells are skipped and the run starts from the zygote's state after them."""
        self.wait_ready()
        self._await_clean()
        if self.proc is None or self.proc.poll() is not None:
            self.restart()
        n = len(self.prefix)
        skip = n if n and [c["source"] for c in cells[:n]] == self.prefix else 0
        request = {"op": "grade", "job": job, "cells": cells, "parts": parts, "skip": skip,
                   "limits": self.limits.to_wire()}
        try:
            self._send(request)
        except (BrokenPipeError, OSError):
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
        or no answer), no later submission shares this sandbox: it is restarted."""
        job, self._clean_pending = getattr(self, "_clean_pending", None), None
        if job is None or self.proc is None:
            return
        msg = self._receive(60)
        if msg.get("op") != "clean" or msg.get("job") != job or not msg.get("ok"):
            log.warning("sandbox not provably clean after job %s; restarting it", job)
            self.restart()

    def restart(self):
        self.stop()
        self.start()

    def stop(self):
        self._clean_pending = None
        if self.proc is None:
            return
        with contextlib.suppress(Exception):
            self._send({"op": "quit"})
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
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(Exception):
                stream.close()
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
