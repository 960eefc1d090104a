"""The code inside the sandbox: a supervisor that never runs student code, a warm template, and each job's processes.

Imports only the standard library, numpy and torch (and `wire.py`, its sibling).

Processes (docs/DESIGN.md, "Trust boundary"):
- the *supervisor* (PID 1 of the sandbox) talks to the host, holds the hidden inputs, the
  plan and the oracles, keeps every clock, and decides what each answer means. It never runs
  student code and is not dumpable (no /proc/<pid>/mem, fd or ptrace access).
- the *template* is forked from it at start-up, before any hidden input is loaded: torch
  imported, lazy imports warmed, the notebook's locked prefix run, gc frozen. It forks jobs.
- a *job* gets its own user, PID and mount namespaces: its init (trusted, never runs student
  code) mounts a private, size-capped /tmp and /dev/shm, hides /io, and reports its child's
  death. The supervisor kills the job's init at the end, and the kernel then kills every
  process of the job, whatever its state. Nothing the job wrote survives it.
- the job's *executor* runs the cells one at a time as the supervisor asks, keeps a forked
  snapshot where a part must be probed from, and forks *probers* that answer one case at a
  time. They only ever hold the question they were just asked.
"""
import contextlib
import ctypes
import gc
import io
import json
import linecache
import os
import resource
import select
import signal
import socket
import struct
import sys
import time
import traceback
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _unshare_namespaces():
    """The fallback without bwrap: no network, own IPC and UTS (files stay visible). It must
    happen before numpy and torch start threads: a threaded process can't unshare a user ns."""
    clone_newuser, clone_newnet = 0x10000000, 0x40000000
    clone_newipc, clone_newuts = 0x08000000, 0x04000000
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.unshare(clone_newuser | clone_newnet | clone_newipc | clone_newuts) == 0


UNSHARED = "namespaces" in sys.argv and _unshare_namespaces()

import numpy as np  # noqa: E402
import torch  # noqa: E402

import wire  # noqa: E402

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAPBSET_DROP = 24
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNS = 0x10000000, 0x20000000, 0x00020000
CLONE_NEWIPC = 0x08000000  # System V shared memory and queues would outlive the job otherwise
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC = 1, 2, 4, 32, 4096, 16384
MADV_COLLAPSE = 25       # Linux 6.1+: back a range with huge pages now, whatever the THP setting
HUGE_PAGE = 1 << 21
CAPTURE_BYTES = 8192
MAX_REPLAYS = 6          # job restarts after deaths/hangs before the rest is given up
ORACLE_CALLS = 64        # oracle questions one case may ask
PROCESS_BUDGET = 64      # processes in the sandbox while a job runs (the kit's own use ~20)
_libc = ctypes.CDLL(None, use_errno=True)


# --- process plumbing ------------------------------------------------------------------

def _prctl(option, value):
    return _libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0)


def _named(role):
    """The process's name in ps, top and perf (`gb-<role>`): which part of the sandbox costs what."""
    _libc.prctl(15, ctypes.c_char_p(f"gb-{role}"[:15].encode()), 0, 0, 0)  # PR_SET_NAME


def _reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _set_limits(limits):
    mem = int(limits["memory_mb"]) * 1024 * 1024
    cpu = int(limits["cpu_seconds"])
    for res, value in ((resource.RLIMIT_AS, mem), (resource.RLIMIT_CPU, cpu),
                       (resource.RLIMIT_FSIZE, int(limits["file_mb"]) * 1024 * 1024),
                       (resource.RLIMIT_CORE, 0), (resource.RLIMIT_NOFILE, 256)):
        with contextlib.suppress(ValueError, OSError):
            hard = resource.getrlimit(res)[1]
            soft = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(res, (soft, soft if res != resource.RLIMIT_CPU else
                                     (soft + 2 if hard == resource.RLIM_INFINITY else hard)))


def _drop_capabilities():
    """The job's processes hold capabilities in their own user namespace (to mount its /tmp):
    student code gets none."""
    for cap in range(64):
        if _prctl(PR_CAPBSET_DROP, cap) != 0:
            break

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    _libc.capset(ctypes.byref(Header(0x20080522, 0)), ctypes.byref((Data * 2)()))
    _prctl(PR_SET_NO_NEW_PRIVS, 1)


def _status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _last_line(exc):
    """The student's last traceback line, e.g. 'line 3, in mse_grad: inp.g = ...'."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith("<cell")]
    if not frames:
        return ""
    f = frames[-1]
    return f"{f.filename} line {f.lineno}, in {f.name}: {(f.line or '').strip()}"[:300]


def _error_info(exc):
    info = {"type": type(exc).__name__, "message": str(exc)[:500], "last_line": _last_line(exc)}
    text = str(exc)
    if isinstance(exc, MemoryError) or "can't allocate memory" in text or "not enough memory" in text:
        info["memory"] = True
    return info


# --- converting what student code left behind into plain data --------------------------

def _plain_array(value):
    """(a plain numpy copy of a tensor or array, read without running any user override,
    whether it came from a Tensor subclass); (None, False) when it is not numeric."""
    if isinstance(value, torch.Tensor):
        with torch._C.DisableTorchFunction():
            t = torch.Tensor.detach(value)
            if t.dtype in (torch.bfloat16, torch.float16):
                t = t.to(torch.float32)
            arr = np.array(t.cpu().resolve_conj().resolve_neg().numpy(), copy=True)
        return arr, type(value) not in (torch.Tensor, torch.nn.Parameter)
    arr = np.array(value, copy=True) if isinstance(value, (np.ndarray, list, tuple)) else None
    return (arr, False) if arr is not None and arr.dtype.kind in "biuf" else (None, False)


def _record_outputs(outputs, blobs):
    arrays, values, missing, notes = [], {}, [], []
    for key, value in (outputs or {}).items():
        key = str(key)[:64]
        if value is None:
            missing.append(key)
            continue
        if isinstance(value, (bool, int, float, str)) and not isinstance(value, np.ndarray):
            values[key] = value if not isinstance(value, str) else value[:4000]
            continue
        try:
            arr, subclass = _plain_array(value)
        except Exception as exc:  # noqa: BLE001 - a lying object must not stop the harness
            arr, subclass = None, False
            notes.append(f"{key}: could not read ({type(exc).__name__})")
        if arr is None:
            values[key + ".type"] = type(value).__name__[:64]
            continue
        if subclass:
            notes.append(f"{key}: a {type(value).__name__}, not a plain tensor")
        blobs.append(wire.array_bytes(arr))
        arrays.append(key)
        if isinstance(value, torch.Tensor) and (value.requires_grad or value.grad_fn is not None):
            values[key + ".requires_grad"] = True
    return {"arrays": arrays, "values": values, "missing": missing, "notes": notes}


# --- the autograd tripwire (second line; the static check is the first) -------------------

class _Tripwire:
    """Tells the supervisor, at once, whenever autograd runs in a job process: the flag lives
    in the supervisor, so nothing done afterwards in the process can take it back. It fails
    closed: when the report cannot go out (no stack left, a patched library, a signal), the
    process ends before autograd runs."""

    def __init__(self, chan):
        # Encoded now and sent by one C call: sending needs no Python frame, no json and no
        # attribute a cell could have replaced by then.
        self.frame, self.sendall = wire.encode_frame({"op": "autograd"}), chan.sendall

    def wrap(self, fn):
        frame, sendall = self.frame, self.sendall

        def guarded(*args, **kwargs):
            try:
                sendall(frame)
            except BaseException:  # noqa: BLE001 - unreported autograd must not run
                os._exit(70)
            return fn(*args, **kwargs)
        return guarded

    def guard_engine(self):
        """The C engine behind every backward pass, reached by `Variable._execution_engine`."""
        from torch.autograd.variable import Variable
        engine = Variable._execution_engine
        run_backward = self.wrap(engine.run_backward)

        class GuardedEngine:
            __slots__ = ()

            def run_backward(self, *args, **kwargs):
                return run_backward(*args, **kwargs)

            def __getattr__(self, name):
                return getattr(engine, name)

        Variable._execution_engine = GuardedEngine()

    def install(self):
        self.guard_engine()
        torch.Tensor.backward = self.wrap(torch.Tensor.backward)
        torch.autograd.backward = self.wrap(torch.autograd.backward)
        torch.autograd.grad = self.wrap(torch.autograd.grad)
        for mod in (torch.autograd, torch.autograd.graph):
            if hasattr(mod, "_engine_run_backward"):
                mod._engine_run_backward = self.wrap(mod._engine_run_backward)
        for name in ("grad", "vjp", "jvp", "jacrev", "jacfwd", "vmap", "hessian", "grad_and_value"):
            if hasattr(torch.func, name):
                setattr(torch.func, name, self.wrap(getattr(torch.func, name)))
        for name in ("jacobian", "hessian", "vjp", "jvp"):
            mod = torch.autograd.functional
            if hasattr(mod, name):
                setattr(mod, name, self.wrap(getattr(mod, name)))


# --- the job's executor: runs what the supervisor asks, one question at a time ------------

class Executor:
    """Runs in the job's processes. Holds the notebook's namespace and nothing that decides
    a score: no plan, no other case's inputs, no oracle, no clock."""

    def __init__(self, chan, probes, base_ns):
        self.chan, self.reader = chan, wire.FrameReader(accept_fds=True)
        self.probes = probes
        import builtins
        self.ns = {"__name__": "__main__", "__builtins__": builtins}
        self.ns.update(base_ns or {})
        self.bound = {}       # cell index -> names that cell (re)bound
        self.snapshots = {}   # part -> (pid, wake pipe write fd)

    def send(self, header, blobs=()):
        self.chan.sendall(wire.encode_frame(header, blobs))

    def recv(self):
        return wire.recv_frame(self.chan, self.reader)

    def serve(self):
        """The holder's loop: cells, snapshots, probers."""
        while True:
            header, _ = self.recv()
            op = header.get("op")
            if op == "cell":
                self.send(self.run_cell(header))
            elif op == "snapshot":
                self.snapshot(str(header.get("part")))
            elif op == "enter":
                self.enter(str(header.get("part")))
            elif op == "prober":
                self.prober(header.get("parts") or [])
            elif op == "probe_here":
                # This process's state is not needed any more: it answers the cases itself,
                # which spares a fork (a crash costs a replay of the job instead).
                self.probe_loop(header.get("parts") or [])
                self.send({"op": "prober_exit", "code": 0})
            elif op == "leave":
                os._exit(0)

    # -- cells --

    def run_cell(self, cell):
        index = int(cell["index"])
        started = time.monotonic()
        status = {"op": "cell_done", "index": index, "status": "ok"}
        stand_ins = cell.get("stand_ins") or {}
        used = [n for n, attr in stand_ins.items() if n not in self.ns and hasattr(self.probes, attr)]
        for n in used:  # what an earlier part should have defined, so this part stands alone
            self.ns[n] = getattr(self.probes, stand_ins[n])
        name = f"<cell {cell.get('label') or index}>"
        source = str(cell.get("source", ""))
        linecache.cache[name] = (len(source), None, source.splitlines(True), name)
        before = {k: id(v) for k, v in self.ns.items()}
        try:
            exec(compile(source, name, "exec"), self.ns)  # noqa: S102 - the student's cell, sandboxed
        except BaseException as exc:  # noqa: BLE001 - SystemExit too: Jupyter keeps going
            status.update(status="error", error=_error_info(exc))
        status["seconds"] = round(time.monotonic() - started, 4)
        status["stand_ins"] = used
        self.bound[index] = {k for k, v in self.ns.items() if before.get(k) != id(v)}
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        return status

    # -- snapshots: the state right after a part's cell, for probing it later --

    def snapshot(self, part):
        wake_r, wake_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                _named("snapshot")
                os.close(wake_w)
                for _, (_, fd) in self.snapshots.items():
                    os.close(fd)
                self.snapshots = {}
                if os.read(wake_r, 1) == b"g":
                    os.close(wake_r)
                    # The supervisor sends nothing more until this arrives, so no frame
                    # meant for this process can sit unread in the executor's buffer.
                    self.send({"op": "entered", "part": part})
                    self.serve()
            finally:
                os._exit(0)
        os.close(wake_r)
        self.snapshots[part] = (pid, wake_w)
        self.send({"op": "snapshot_done", "part": part})

    def enter(self, part):
        """Hand the channel to the part's snapshot until it leaves."""
        pid, fd = self.snapshots.pop(part, (None, None))
        if pid is None:
            self.send({"op": "left", "part": part, "code": -1})
            return
        with contextlib.suppress(OSError):
            os.write(fd, b"g")
            os.close(fd)
        self.send({"op": "left", "part": part, "code": _wait(pid)})

    # -- probers: answer one case at a time --

    def prober(self, parts):
        pid = os.fork()
        if pid == 0:
            try:
                _named("prober")
                for fd in [fd for _, fd in self.snapshots.values()]:
                    os.close(fd)
                self.snapshots = {}
                self.probe_loop(parts)
            finally:
                os._exit(0)
        self.send({"op": "prober_exit", "code": _wait(pid)})

    def probe_loop(self, parts):
        specs = {str(p.get("part")): p for p in parts if isinstance(p, dict)}
        for spec in specs.values():
            first, after = spec.get("first"), spec.get("after")
            if first is None or after is None:
                continue
            # Judged on its own cells: a name they did not bind is missing, not inherited.
            own = set().union(*(self.bound.get(i, set()) for i in range(int(first), int(after) + 1)))
            spec["drop"] = [n for n in spec.get("defines") or [] if n not in own]
        base = dict(self.ns)
        current = None
        self.send({"op": "prober_ready"})
        while True:
            header, blobs = self.recv()
            if header.get("op") != "case":
                self.ns.clear()
                self.ns.update(base)  # a holder probing in place goes on from the same state
                return
            part = str(header.get("part"))
            if part != current:
                self.ns.clear()
                self.ns.update(base)
                for name in specs.get(part, {}).get("drop", []):
                    self.ns.pop(name, None)
                current = part
            record, out_blobs = self.run_case(header, blobs)
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            self.send({"op": "case_done", "index": header.get("index"), "record": record}, out_blobs)

    def run_case(self, header, blobs):
        idx = header.get("index")
        started = time.monotonic()
        record, out_blobs = {"index": idx, "status": "ok"}, []
        names = header.get("inputs") or []
        try:
            inputs = {str(k): wire.load_array(b) for k, b in zip(names, blobs)}
            probe = getattr(self.probes, str(header.get("probe")))
            self.probes.ask = self.ask
            record.update(_record_outputs(probe(self.ns, inputs), out_blobs))
        except BaseException as exc:  # noqa: BLE001 - whatever student code raised
            record["status"] = "error"
            record["error"] = _error_info(exc)
            extra = getattr(exc, "probe_values", None)  # what a probe saw before it failed
            if isinstance(extra, dict):
                record["values"] = {str(k)[:64]: str(v)[:4000] for k, v in list(extra.items())[:8]}
        finally:
            self.probes.ask = None
        record["seconds"] = round(time.monotonic() - started, 4)
        return record, out_blobs

    def ask(self, name, *tensors):
        """Part 4's building blocks: the supervisor computes them, out of student reach."""
        blobs = [wire.array_bytes(_plain_array(t)[0]) for t in tensors]
        self.send({"op": "oracle", "fn": str(name)}, blobs)
        header, reply = self.recv()
        if header.get("op") != "oracle_result":
            raise RuntimeError(str(header.get("error") or "the reference step is not available here"))
        return [torch.from_numpy(wire.load_array(b)) for b in reply]


def _wait(pid):
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            return os.waitstatus_to_exitcode(status)
        except InterruptedError:
            continue
        except ChildProcessError:
            return -1


# --- the job's init --------------------------------------------------------------------

def _mount(source, target, fstype, flags, data=None):
    return _libc.mount(source and source.encode(), target.encode(), fstype and fstype.encode(),
                       ctypes.c_ulong(flags), data and data.encode())


def _private_mounts(limits, keep):
    """A fresh, size-capped /tmp and /dev/shm for this job, and /io hidden. A kit that lives
    under /tmp is bound back, read-only, on top of the new /tmp."""
    held = []
    for path in keep:
        with contextlib.suppress(OSError):
            held.append((path, os.open(path, os.O_PATH)))
    size = f"size={int(limits['tmpfs_mb'])}m,mode=1777"
    ok = _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, size) == 0
    for path, fd in held:
        with contextlib.suppress(OSError):
            os.makedirs(path, exist_ok=True)
            _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
            _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
        os.close(fd)
    if os.path.isdir("/dev/shm"):
        ok &= _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV,
                     f"size={int(limits['shm_mb'])}m,mode=1777") == 0
    if os.path.isdir("/io"):
        ok &= _mount("tmpfs", "/io", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k") == 0
    # bwrap's /dev is one tmpfs for every job: read-only here (its device nodes and the job's
    # own /dev/shm are mounts of their own and keep working).
    ok &= any(_mount(None, "/dev", None, MS_REMOUNT | MS_BIND | MS_RDONLY | extra) == 0
              for extra in (MS_NOSUID | MS_NODEV, MS_NOSUID, 0))
    return ok


# What the job's user namespace may hold, counted through every namespace above it: student
# code makes no namespace of its own (else it could use up the user's namespaces machine-wide,
# and every other job would start without its own), and few inotify or fanotify instances.
JOB_USER_LIMITS = {"max_user_namespaces": 0, "max_pid_namespaces": 0, "max_net_namespaces": 0,
                   "max_mnt_namespaces": 0, "max_ipc_namespaces": 0, "max_uts_namespaces": 0,
                   "max_cgroup_namespaces": 0, "max_time_namespaces": 0,
                   "max_inotify_instances": 8, "max_inotify_watches": 256,
                   "max_fanotify_groups": 0, "max_fanotify_marks": 0}


# System calls a job may not make, per architecture (seccomp's audit arch, the calls' numbers):
# a write lease (fcntl F_SETLEASE) on a file bound into the sandbox (the venv's, /sandbox's)
# stalls every other process that opens it, in another lane, sandbox or on the host, for the
# lease-break time (45 s); the key calls reach the keyrings of the sandbox's user on the host,
# a channel between lanes that outlives the sandbox. Both are open to a job because, under a
# kit run as root, its processes are root's on the host.
SECCOMP_ARCHES = {"x86_64": (0xC000003E, {"fcntl": 72, "add_key": 248, "request_key": 249,
                                          "keyctl": 250}),
                  "aarch64": (0xC00000B7, {"fcntl": 25, "add_key": 217, "request_key": 218,
                                           "keyctl": 219})}
F_SETLEASE = 1024


def _seccomp_filter():
    """The job's seccomp filter: those calls fail with EPERM, as do calls of another ABI (a
    32-bit or x32 entry point would have other numbers). None on an architecture not listed."""
    arch = SECCOMP_ARCHES.get(os.uname().machine)
    if arch is None:
        return None
    audit_arch, nr = arch
    ld_w_abs, jeq_k, jge_k, ret_k = 0x20, 0x15, 0x35, 0x06
    allow, deny = 0x7FFF0000, 0x00050000 | 1          # SECCOMP_RET_ALLOW, ERRNO(EPERM)
    prog = [(ld_w_abs, 0, 0, 4),                      # arch
            (jeq_k, 1, 0, audit_arch),
            (ret_k, 0, 0, deny),
            (ld_w_abs, 0, 0, 0),                      # syscall number
            (jge_k, 0, 1, 0x40000000),                # x32 numbers
            (ret_k, 0, 0, deny),
            (jeq_k, 0, 3, nr["fcntl"]),
            (ld_w_abs, 0, 0, 24),                     # args[1], low word (little-endian)
            (jeq_k, 5, 0, F_SETLEASE),
            (ret_k, 0, 0, allow),
            (jeq_k, 3, 0, nr["add_key"]),
            (jeq_k, 2, 0, nr["request_key"]),
            (jeq_k, 1, 0, nr["keyctl"]),
            (ret_k, 0, 0, allow),
            (ret_k, 0, 0, deny)]
    return prog


def _install_seccomp():
    """Install the job's filter (inherited by every process it forks); False when the kernel
    refuses it."""
    prog = _seccomp_filter()
    if prog is None:
        return True

    class Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                    ("k", ctypes.c_uint32)]

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(Filter))]

    filters = (Filter * len(prog))(*[Filter(*f) for f in prog])
    program = Program(len(prog), filters)
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    return _libc.prctl(22, 2, ctypes.byref(program), 0, 0) == 0   # PR_SET_SECCOMP, FILTER


def _no_more_namespaces():
    """Set the job's user-namespace limits (the job's init holds the capability in it;
    student code does not). A namespace kind this kernel lacks is no limit to set."""
    for name, value in JOB_USER_LIMITS.items():
        path = f"/proc/sys/user/{name}"
        if not os.path.exists(path):
            if name.endswith("_namespaces") and name not in ("max_time_namespaces", "max_cgroup_namespaces"):
                return False
            continue
        try:
            with open(path, "w") as f:
                f.write(str(value))
        except OSError:
            return False
    return True


def _job_init(chan, out_w, report_w, limits, workdir, probes, base_ns, keep, private):
    """PID 1 of the job's namespace: never runs student code; reaps, and reports the
    executor's death to the supervisor."""
    _named("job-init")
    if private and not (_private_mounts(limits, keep) and _no_more_namespaces()
                        and _install_seccomp()):
        # Fails closed: no executor, so no student code, without the job's own mounts and limits.
        os.write(report_w, wire.encode_line({"op": "setup_failed"}))
        os._exit(0)
    _prctl(PR_SET_DUMPABLE, 0)
    if not private:
        _prctl(PR_SET_CHILD_SUBREAPER, 1)  # no PID namespace: orphans must still re-attach here
    pid = os.fork()
    if pid == 0:
        try:
            _named("executor")
            os.close(report_w)
            os.dup2(out_w, 1)
            os.dup2(out_w, 2)
            os.close(out_w)
            with contextlib.suppress(OSError):
                with open("/proc/self/oom_score_adj", "w") as f:
                    f.write("1000")  # under memory pressure, the kernel kills student code first
            _drop_capabilities()
            # Not dumpable: no job process can read or write another's memory (a later
            # cell must not reach into the snapshot an earlier part is probed from).
            _prctl(PR_SET_DUMPABLE, 0)
            os.chdir(workdir)
            _set_limits(limits)
            sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", closefd=False), line_buffering=True,
                                          errors="replace")
            sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", closefd=False), line_buffering=True,
                                          errors="replace")
            signal.signal(signal.SIGINT, signal.default_int_handler)
            ex = Executor(chan, probes, base_ns)
            _Tripwire(chan).install()  # before any student code runs
            ex.serve()
        finally:
            os._exit(0)
    chan.close()
    os.close(out_w)
    while True:
        try:
            done, status = os.waitpid(-1, 0)
        except ChildProcessError:
            time.sleep(1)  # nothing left; wait to be killed
            continue
        except InterruptedError:
            continue
        if done == pid:
            with contextlib.suppress(OSError):
                os.write(report_w, wire.encode_line(
                    {"op": "executor_exit", "code": os.waitstatus_to_exitcode(status)}))


# --- the template ----------------------------------------------------------------------

def _warm_up():
    """Pay torch's lazy imports once here, not in every job. Not sympy: autograd imports it
    (half a second, 60 MB that every fork would map) only to check a tensor `grad_outputs`,
    which neither the probes nor the oracles pass, nor the lesson's code."""
    x = torch.randn(3, 2, requires_grad=True)
    torch.autograd.grad((x * 2).sum(), [x])
    (x.relu() ** 2).mean().backward()
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    torch.nn.functional.mse_loss(net(x.detach()).squeeze(-1), torch.zeros(3)).backward()
    torch.einsum("bi,bj->ij", x.detach(), x.detach())
    with contextlib.suppress(Exception):
        torch.func.vjp(lambda t: t.sin(), torch.ones(2))
    np.save(io.BytesIO(), np.zeros(2), allow_pickle=False)


def _huge_pages():
    """Back the template's heap and anonymous memory with 2 MB pages. Every job is a chain of
    forks from it (job, init, executor, snapshots, probers): a fork copies one entry per page
    table leaf and an exit unmaps them, so 512x fewer leaves make each fork and exit several
    times cheaper. A page a child writes is split back to 4 kB pages for it alone. Kernels
    without MADV_COLLAPSE refuse the call; nothing else changes then."""
    _libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    with open("/proc/self/maps") as maps:
        regions = [line.split() for line in maps]
    for fields in regions:
        name = fields[5] if len(fields) > 5 else ""
        if "w" not in fields[1] or name not in ("", "[heap]"):
            continue
        lo, hi = (int(v, 16) for v in fields[0].split("-"))
        lo = (lo + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1)
        hi &= ~(HUGE_PAGE - 1)
        if hi > lo:
            _libc.madvise(lo, hi - lo, MADV_COLLAPSE)


def _kept_under_tmp():
    """What of the interpreter lives under /tmp (a kit checked out there): kept visible."""
    exe_prefix = os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))
    paths = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix)} | {exe_prefix}
    here = os.path.dirname(os.path.abspath(__file__))
    paths.add(here)
    return sorted(p for p in paths if p.startswith("/tmp/"))


class Warm:
    """What every lane's template starts from, made once in the root before any lane (and
    any secret) exists: the probes, torch's lazy imports warmed, the locked prefix run, gc
    frozen, the memory backed with huge pages. Each lane forks its template from a copy."""

    def __init__(self, request, workdir):
        self.workdir = workdir
        module = types.ModuleType("probes")
        exec(compile(request["probes"], "<probes>", "exec"), module.__dict__)  # noqa: S102 - trusted
        self.probes = module
        _warm_up()
        self.base_ns = self._run_prefix(request.get("prefix") or [])
        self.keep = _kept_under_tmp()
        gc.collect()  # what the warm-up and the prefix left (torch's import is frozen already)
        gc.freeze()  # forked jobs neither traverse nor copy-on-write these objects for GC
        if request.get("huge_pages", True):
            _huge_pages()

    def _run_prefix(self, sources):
        """The instructor's leading locked cells (imports, data, weights) run once, here."""
        import builtins
        ns = {"__name__": "__main__", "__builtins__": builtins}
        here = os.getcwd()
        os.chdir(self.workdir)
        try:
            for i, source in enumerate(sources):
                exec(compile(source, f"<locked cell {i}>", "exec"), ns)  # noqa: S102 - trusted
        finally:
            os.chdir(here)
        return ns


class Template:
    """Forked from a lane's supervisor before any secret reaches it; forks one job per request."""

    def __init__(self, sock, warm, isolation):
        self.sock, self.isolation, self.workdir = sock, isolation, warm.workdir
        self.probes, self.base_ns, self.keep = warm.probes, warm.base_ns, warm.keep

    def serve(self):
        self.sock.sendall(b"R")
        while True:
            try:
                msg, fds, _, _ = socket.recv_fds(self.sock, 4096, 4)
            except OSError:
                os._exit(0)
            if not msg:
                os._exit(0)
            request = json.loads(msg.decode())
            self.spawn(request, fds)

    def spawn(self, request, fds):
        chan_fd, out_w, report_w = fds
        pid = os.fork()
        if pid == 0:
            try:
                _named("job-setup")
                self.sock.close()
                self._job(request, socket.socket(fileno=chan_fd), out_w, report_w)
            finally:
                os._exit(0)
        for fd in fds:
            os.close(fd)
        _wait(pid)

    def _job(self, request, chan, out_w, report_w):
        """Make the job's namespaces, start its init, and tell the supervisor its pid."""
        private = self.isolation == "bwrap"
        if private and not _unshare_as_self(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC):
            # Fails closed: under bwrap a job never runs in the sandbox's own namespaces.
            os.write(report_w, wire.encode_line({"op": "setup_failed"}))
            return
        limits = request["limits"]
        pid = os.fork()
        if pid == 0:
            try:
                _job_init(chan, out_w, report_w, limits, self.workdir, self.probes,
                          self.base_ns if request.get("use_base") else None, self.keep, private)
            finally:
                os._exit(0)
        os.write(report_w, wire.encode_line({"op": "spawned", "pid": pid, "private": private}))


# --- the supervisor --------------------------------------------------------------------

class JobLost(Exception):
    """The job's processes stopped answering as the protocol says (death, hang, garbage)."""

    def __init__(self, why, outcome="died"):
        super().__init__(why)
        self.why, self.outcome = why, outcome


class Job:
    """One job's processes as the supervisor sees them: a channel, the output pipe, and the
    init's reports. Every read checks who sent what (the kernel tells the sender's pid)."""

    def __init__(self, sup, limits):
        self.sup, self.limits = sup, limits
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        out_r, out_w = os.pipe()
        rep_r, rep_w = os.pipe()
        try:
            socket.send_fds(sup.template, [json.dumps({"op": "spawn", "limits": limits,
                                                       "use_base": bool(sup.skip_prefix)}).encode()],
                            [theirs.fileno(), out_w, rep_w])
        except OSError as exc:
            raise JobLost(f"the template is gone ({exc.strerror})", "sandbox") from None
        finally:
            theirs.close()
        os.close(out_w)
        os.close(rep_w)
        self.chan, self.out, self.rep = ours, out_r, rep_r
        for fd in (out_r, rep_r):
            os.set_blocking(fd, False)
        self.chan.setblocking(False)
        self.reader = wire.FrameReader()
        self.frames = []          # (pid, header, blobs) not yet consumed
        self.rep_buf = b""
        self.output = bytearray()  # what the job printed since the last take_output()
        self.dropped = 0
        self.keep_output = True
        self.pid = None            # the job init's pid
        self.private = False
        self.executor_dead = False
        self.autograd = False
        self.prober_pid = None
        self.frame_pid = None
        self.out_open = self.rep_open = True
        deadline = time.monotonic() + 30
        while self.pid is None:
            self._pump(deadline, "the job did not start")

    # -- reading --

    def _pump(self, deadline, why):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise JobLost(why, "timeout")
        ready = select.select([self.chan] + self._pipes(), [], [], min(remaining, 0.25))[0]
        _reap()
        if not ready and self.private and self.sup.isolation == "bwrap" and self.sup.too_many_processes():
            # A fork bomb spins at the pids limit until its case times out, taking the
            # machine's cores from every other submission meanwhile: it ends here instead.
            raise JobLost("it started more processes than grading allows", "processes")
        if self.out in ready:
            self._read_output()
        if self.rep in ready:
            self._read_reports()
        if self.chan in ready:
            self._read_chan()

    def _pipes(self):
        return [fd for fd, is_open in ((self.out, self.out_open), (self.rep, self.rep_open)) if is_open]

    def _read_output(self):
        while True:
            try:
                chunk = os.read(self.out, 1 << 16)
            except BlockingIOError:
                return
            if not chunk:
                self.out_open = False
                return
            if self.keep_output:
                room = max(CAPTURE_BYTES - len(self.output), 0)
                self.output += chunk[:room]
                self.dropped += max(len(chunk) - room, 0)

    def _read_reports(self):
        try:
            chunk = os.read(self.rep, 4096)
        except BlockingIOError:
            return
        self.rep_buf += chunk
        while b"\n" in self.rep_buf:
            line, self.rep_buf = self.rep_buf.split(b"\n", 1)
            with contextlib.suppress(ValueError):
                msg = json.loads(line)
                if msg.get("op") == "spawned" and self.pid is None:
                    self.pid, self.private = int(msg["pid"]), bool(msg.get("private"))
                elif msg.get("op") == "executor_exit":
                    self.executor_dead = True
                elif msg.get("op") == "setup_failed":
                    raise JobLost("the job's private namespaces could not be set up", "sandbox")
        if not chunk:
            self.rep_open = False
            if self.pid is None:
                raise JobLost("the template did not start the job", "sandbox")

    def _read_chan(self):
        while True:
            try:
                data, anc, _, _ = self.chan.recvmsg(1 << 20, socket.CMSG_SPACE(12))
            except BlockingIOError:
                return
            if not data:
                self.executor_dead = True  # every job process closed the channel
                return
            pid = None
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", payload[:12])[0]
            if self.reader.buf and pid != self.frame_pid:
                raise JobLost("two processes wrote into one message")
            self.frame_pid = pid
            try:
                frames = self.reader.feed(data)
            except wire.WireError as exc:
                raise JobLost(f"garbled message ({exc})") from None
            for header, blobs in frames:
                if header.get("op") == "autograd":
                    self.autograd = True  # the tripwire: recorded here, out of student reach
                else:
                    self.frames.append((pid, header, blobs))

    def expect(self, ops, deadline, why, *, pid=None):
        """The next frame whose op is one of `ops` (from `pid` when given); others are noise."""
        while True:
            while self.frames:
                sender, header, blobs = self.frames.pop(0)
                if header.get("op") in ops and (pid is None or sender == pid):
                    return sender, header, blobs
                self.sup.ignored += 1  # answers no question: evidence for the instructor
            if self.executor_dead:
                raise JobLost("the process running your code died")
            self._pump(deadline, why)

    def send(self, header, blobs=(), deadline=None):
        data = memoryview(wire.encode_frame(header, blobs))
        fds = wire.frame_fds(blobs)   # sent with the frame's first byte
        deadline = deadline or time.monotonic() + 30
        while data:
            if time.monotonic() > deadline:
                raise JobLost("the job stopped reading", "timeout")
            w = select.select(self._pipes(), [self.chan], [], 0.5)
            if self.out in w[0]:
                self._read_output()
            if self.rep in w[0]:
                self._read_reports()
            if self.chan in w[1]:
                try:
                    if fds:
                        data = data[self.chan.sendmsg([data], wire.rights(fds)):]
                        fds = []
                    else:
                        data = data[self.chan.send(data):]
                except BlockingIOError:
                    pass
                except OSError as exc:
                    raise JobLost(f"the job's channel broke ({exc.strerror})") from None
            if self.executor_dead:
                raise JobLost("the process running your code died")

    def take_output(self):
        with contextlib.suppress(Exception):
            self._read_output()
        text = bytes(self.output).decode("utf-8", "replace")
        if self.dropped:
            text += f"\n[... {self.dropped} more bytes of output not shown]"
        self.output, self.dropped = bytearray(), 0
        return text

    def kill(self):
        """SIGKILL the job's init: the kernel kills every process of its PID namespace."""
        if self.pid:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
            if self.private:
                _wait(self.pid)
            else:
                _kill_descendants(self.pid)
                _wait(self.pid)
        for thing in (self.chan,):
            with contextlib.suppress(OSError):
                thing.close()
        for fd in (self.out, self.rep):
            with contextlib.suppress(OSError):
                os.close(fd)
        _reap()


def _kill_descendants(root):
    """Weak isolation levels only (no PID namespace): the job init is a subreaper, so its
    strays are its descendants in /proc. The bwrap level never needs this."""
    for _ in range(50):
        victims = _tree(root) - {root}
        if not victims:
            return
        for pid in victims:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.005)


class Grading:
    """The supervisor's run of one submission: it asks, the job answers, it decides."""

    def __init__(self, sup, request):
        self.sup = sup
        self.limits = request["limits"]
        self.cells = request["cells"]
        self.parts = request["parts"]
        self.started = time.monotonic()
        self.deadline = self.started + float(self.limits["job_seconds"])
        self.skip = set()
        self.cell_status = {}
        self.cell_output = {}
        self.partruns = {}
        self.cases = {}
        # Probing plan: parts whose names a later cell rebinds are probed from a snapshot
        # taken right after their own cell; the rest from the state after the last cell.
        self.snap_after = {}
        for part, spec in self.parts.items():
            if not spec.get("deferred"):
                self.snap_after.setdefault(int(spec["after"]), []).append(part)
        order = sorted((p for p in self.parts if not self.parts[p].get("deferred")),
                       key=lambda p: self.parts[p]["after"])
        order += [p for p in self.parts if self.parts[p].get("deferred")]
        self.todo = [(p, c) for p in order for c in self.parts[p].get("cases", [])]
        # Parts probed in a forked prober rather than in the process holding their state: all
        # of them when the plan says to isolate parts (code the checker could not see through
        # sits in a function), and any part whose cases once killed their process.
        self.forked = {p for p in self.parts if self.parts[p].get("isolate")}
        self.pos = 0
        self.snapshots_live = 0  # snapshots of the current job not yet used (they are processes)
        self.asking = None      # what the job was last asked and has not answered
        self.job = None
        self.holder = None      # which state serves the channel: None (executor), or a part
        self.prober = None      # (part, pid, RSS when ready in kB, probing in place)
        self.part_started = {}
        self.lane_before = None  # the lane's memory usage when the memory case was asked
        self.status = "finished"

    # -- the whole run, with replays after a death or a hang --

    def run(self):
        replays = 0
        while True:
            leaving = True
            try:
                self.job = self.sup.take_job(self.limits)
                self.holder, self.prober, self.snapshots_live = None, None, 0
                self.run_cells()
                self.probe()
                break
            except JobLost as lost:
                if lost.outcome == "sandbox":
                    self.status = "sandbox_failure"
                    break
                if time.monotonic() >= self.deadline:
                    self.status = "timeout"
                    break
                self.lost(lost)
                replays += 1
                if replays > MAX_REPLAYS:
                    self.give_up("not run: the submission's processes kept dying")
                    break
                leaving = False
            finally:
                if self.job is not None:
                    if leaving:
                        # Ended after the report is sent (the host's suites run meanwhile);
                        # the host hears whether the sandbox is clean before the next job.
                        self.sup.retiring = self.job
                    else:
                        self.job.kill()
                    self.job = None
        self.give_up("not run: the submission ran out of time")
        return self.report()

    def lost(self, lost):
        """What was outstanding when the job was lost fails; the rest is asked again."""
        kind, key = self.asking or (None, None)
        self.asking = None
        outcome = lost.outcome if lost.outcome in ("timeout", "processes") else "died"
        if kind in ("cell", "snapshot"):
            self.skip.add(key)
            self.cell_status[key] = {"index": key, "status": "timeout" if outcome == "timeout" else "died",
                                     "error": {
                "type": "Timeout" if outcome == "timeout" else "Crash",
                "message": _death_message(outcome, self.limits, "cell"), "last_line": ""}}
            self.cell_output[key] = self.job.take_output() if self.job else ""
            for part in self.snap_after.get(key, []):
                self.partruns[part] = {"part": part, "status": "not_run",
                                       "reason": f"its cell {'timed out' if outcome == 'timeout' else 'died'}"}
        elif kind == "case" and self.pos < len(self.todo):
            part = self.todo[self.pos][0]
            self.fail_case(key, "timeout" if outcome == "timeout" else "crashed",
                           _death_message(outcome, self.limits, "case") if outcome == "processes" else None)
            self.pos += 1
            if outcome == "timeout":
                self.skip_rest_of_part(part, "not run: an earlier input of this part timed out")
            elif outcome == "processes":
                self.skip_rest_of_part(part, "not run: an earlier input of this part started "
                                             "more processes than grading allows")
        elif kind in ("prober", "enter") and self.pos < len(self.todo):
            self.skip_rest_of_part(self.todo[self.pos][0],
                                   "not run: the process holding this part's state died")

    # -- cells --

    def run_cells(self):
        job = self.job
        for index, cell in enumerate(self.cells):
            if index < int(self.sup.skip_prefix) or index in self.skip:
                continue
            self.asking = ("cell", index)
            job.take_output()
            job.send({"op": "cell", "index": index, "source": cell["source"],
                      "label": cell.get("grade_id"), "stand_ins": cell.get("stand_ins") or {}})
            _, header, _ = job.expect({"cell_done"}, min(self.deadline, time.monotonic()
                                                          + float(self.limits["cell_seconds"])),
                                      "the cell did not finish in time")
            if header.get("index") != index:
                raise JobLost("the cell's answer did not match the question")
            self.cell_status[index] = {k: header.get(k) for k in ("index", "status", "error",
                                                                   "seconds", "stand_ins")}
            self.cell_output[index] = job.take_output()
            for part in self.snap_after.get(index, []):
                self.asking = ("snapshot", index)
                job.send({"op": "snapshot", "part": part})
                job.expect({"snapshot_done"}, time.monotonic() + 30, "the snapshot did not start")
                self.snapshots_live += 1
            self.asking = None
        job.keep_output = False  # nothing printed while hidden inputs are out reaches anyone

    # -- probing --

    def probe(self):
        while self.pos < len(self.todo):
            part, case = self.todo[self.pos]
            spec = self.parts[part]
            if spec["after"] in self.skip and not spec.get("deferred"):
                self.fail_case(case["index"], "not_run", "not run: its cell died")
                self.pos += 1
                continue
            began = self.part_started.setdefault(part, time.monotonic())
            if time.monotonic() - began > float(self.limits["part_seconds"]):
                self.fail_case(case["index"], "timeout", "not run: this part used up its time")
                self.pos += 1
                continue
            fresh = bool(case.get("peak_mb"))
            self.ensure_prober(part, fresh=fresh)
            self.ask_case(part, case)
            if fresh and self.prober:
                self.end_prober()
        if self.prober:
            self.end_prober()
        if self.holder is not None:
            self.leave()
        for part in self.parts:
            self.partruns.setdefault(part, {"part": part, "status": "ran"})

    def ensure_prober(self, part, *, fresh):
        if self.prober and (self.prober[0] != part or fresh):
            self.end_prober()
        if self.prober:
            return
        want = None if self.parts[part].get("deferred") else part
        if self.holder != want:
            if self.holder is not None:
                self.leave()
            if want is not None:
                self.asking = ("enter", want)
                self.job.send({"op": "enter", "part": want})
                _, woke, _ = self.job.expect({"entered", "left"}, time.monotonic() + 30,
                                             "the snapshot did not wake")
                if woke.get("op") == "left":  # no snapshot of that part (its cell died)
                    raise JobLost("the part's snapshot is missing")
                self.holder = want
        spec = self.parts[part]
        specs = [{"part": part, "first": spec.get("first"), "after": spec["after"],
                  "defines": spec.get("defines") or []}]
        self.asking = ("prober", part)
        in_place = not fresh and part not in self.forked
        self.job.send({"op": "probe_here" if in_place else "prober", "parts": specs})
        pid, _, _ = self.job.expect({"prober_ready"}, time.monotonic() + 30,
                                    "the prober did not start")
        self.prober = (part, pid, _status_kb(pid, "VmRSS"), in_place)
        self.asking = None

    def end_prober(self):
        self.asking = ("prober_end", None)
        self.job.send({"op": "end"})
        self.job.expect({"prober_exit"}, time.monotonic() + 10, "the prober did not end")
        self.prober = None
        self.asking = None

    def leave(self):
        self.asking = ("leave", self.holder)
        self.job.send({"op": "leave"})
        self.job.expect({"left"}, time.monotonic() + 10, "the snapshot did not end")
        self.holder = None
        self.snapshots_live -= 1
        self.asking = None

    def ask_case(self, part, case):
        job, idx = self.job, case["index"]
        inputs = self.sup.inputs
        names = list(case["inputs"])
        blobs = [inputs[case["inputs"][k]] for k in names]
        self.asking = ("case", idx)
        job.autograd = False
        self.lane_before = self.sup.memory_mark() if case.get("peak_mb") else None
        deadline = min(self.deadline, time.monotonic() + float(self.limits["case_seconds"]))
        job.send({"op": "case", "index": idx, "part": part, "probe": case["probe"],
                  "inputs": names}, blobs, deadline=deadline)
        prober_pid = self.prober[1]
        oracle_calls = 0
        limit = 2 * sum(len(inputs[case["inputs"][k]]) for k in names) + 65536
        while True:
            try:
                sender, header, blobs = job.expect({"case_done", "oracle", "prober_exit", "left"},
                                                   deadline, "the case did not finish in time")
            except JobLost as lost:
                if self.prober and self.prober[3]:
                    self.forked.add(part)  # the holder itself died or hung: replay, then fork
                    raise
                if lost.outcome == "timeout" and self.stop_prober(prober_pid):
                    self.asking = None
                    self.fail_case(idx, "timeout")
                    self.pos += 1
                    self.skip_rest_of_part(part, "not run: an earlier input of this part timed out")
                    self.no_strays(part)
                    return
                raise
            op = header.get("op")
            if op == "left":  # the snapshot answering in place died: its state is gone
                self.asking, self.prober, self.holder = None, None, None
                self.snapshots_live -= 1
                self.fail_case(idx, "crashed")
                self.pos += 1
                self.forked.add(part)
                raise JobLost("the process holding this part's state died")
            if op == "prober_exit":
                self.prober = None
                self.asking = None
                self.fail_case(idx, "crashed")
                self.pos += 1
                self.no_strays(part)
                return
            if sender != prober_pid:
                self.sup.ignored += 1
                continue  # only the prober that was asked may answer
            if op == "oracle":
                oracle_calls += 1
                reply = self.sup.oracle(part, header, blobs, oracle_calls, limit)
                job.send(*reply, deadline=deadline)
                continue
            if header.get("index") != idx or not isinstance(header.get("record"), dict):
                raise JobLost("the case's answer did not match the question")
            record = header["record"]
            record["index"] = idx
            record["autograd_used"] = job.autograd
            files = {f"case_{idx}__{i}.npy": b for i, b in enumerate(blobs)}
            if case.get("peak_mb"):
                self.measure(record, case, prober_pid)
            self.cases[idx] = {"record": record, "files": files}
            self.asking = None
            self.pos += 1
            return

    def measure(self, record, case, pid):
        """Peak memory the case used, read by the supervisor from the kernel: not what the
        process says. The larger of the fresh prober's VmHWM minus its size when it was ready,
        and the growth of the lane's memory cgroup's peak over the case (the lane runs this
        case alone; another lane's process can reset a VmHWM, never that peak)."""
        base, peak = self.prober[2], _status_kb(pid, "VmHWM")
        lane_peak = self.sup.memory_peak()
        readings = []
        if base is not None and peak is not None:
            readings.append(max(peak - base, 0) / 1024)
        if self.lane_before is not None and lane_peak is not None:
            readings.append(max(lane_peak - self.lane_before, 0) / (1024 * 1024))
        if not readings:
            record.update(status="error", error={"type": "MemoryError", "memory": True, "last_line": "",
                                                 "message": "its memory use could not be measured"})
            return
        used = max(readings)
        record["peak_mb"] = round(used, 1)
        if used > float(case["peak_mb"]) and record.get("status") == "ok":
            record.update(status="error", error={
                "type": "MemoryError", "memory": True, "last_line": "",
                "message": f"it used {used:.0f} MB at its peak, more than the {case['peak_mb']} MB "
                           "this input allows"})

    def no_strays(self, part):
        """After a prober died: did it leave processes behind (a fork bomb, an orphan)? Then the
        rest of its part is not run, and the job is replayed for the other parts, so those
        processes die with it. Counted from the kernel's list: the lane's supervisor, its
        template, the job's init and executor, and the snapshots not yet used are all that may
        exist in the lane."""
        expected = 4 + self.snapshots_live
        for _ in range(5):
            alive = sum(1 for pid in self.sup.processes() if _status_kb(pid, "VmRSS") is not None)
            if alive <= expected or self.sup.isolation != "bwrap":
                return
            _reap()
            time.sleep(0.02)
        self.skip_rest_of_part(part, "not run: your code left processes running in the sandbox")
        raise JobLost("a prober left processes behind")

    def stop_prober(self, pid):
        """A hung prober: kill it (its pid came from the kernel) and wait for its holder's report."""
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        try:
            self.job.expect({"prober_exit"}, time.monotonic() + 5, "the prober's holder hung")
        except JobLost:
            return False
        self.prober = None
        return True

    def fail_case(self, idx, outcome, why=None):
        if idx is None or idx in self.cases:
            return
        typ = {"timeout": "Timeout", "crashed": "Crash"}.get(outcome, "NotRun")
        self.cases[idx] = {"record": {
            "index": idx, "status": "crashed" if outcome == "crashed" else "timeout",
            "autograd_used": bool(self.job and self.job.autograd),
            "error": {"type": typ, "last_line": "",
                      "message": why or _death_message(outcome, self.limits, "case")}}, "files": {}}

    def skip_rest_of_part(self, part, why):
        while self.pos < len(self.todo) and self.todo[self.pos][0] == part:
            self.fail_case(self.todo[self.pos][1]["index"], "timeout", why)
            self.pos += 1

    def give_up(self, why):
        for index in range(len(self.cells)):
            if index >= int(self.sup.skip_prefix) and index not in self.cell_status:
                self.cell_status[index] = {"index": index, "status": "not_run"}
        for _, case in self.todo:
            if case["index"] not in self.cases:
                self.fail_case(case["index"], "timeout", why)
                if self.status == "finished" and "time" in why:
                    self.status = "timeout"

    def report(self):
        return {"cells": list(self.cell_status.values()),
                "cell_outputs": [{"index": i, "text": t} for i, t in self.cell_output.items()],
                "partruns": list(self.partruns.values()), "part_outputs": [],
                "cases": list(self.cases.values()), "status": self.status}


def _pids():
    """Every process this PID namespace holds, from the kernel's list."""
    return {int(name) for name in os.listdir("/proc") if name.isdigit()}


def _parents():
    """Each process's parent, from the kernel's list (a process gone meanwhile is left out)."""
    parents = {}
    for pid in _pids():
        with contextlib.suppress(OSError, ValueError, IndexError):
            with open(f"/proc/{pid}/stat", "rb") as f:
                data = f.read()
            parents[pid] = int(data[data.rindex(b")") + 2:].split()[1])
    return parents


def _tree(root):
    """`root` and every process whose parents lead to it."""
    parents = _parents()
    children = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    out, todo = {root}, [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def _death_message(outcome, limits, what):
    if outcome == "processes":
        return ("it started more processes than grading allows (os.fork or subprocesses in "
                "a loop?), so it was stopped")
    if outcome == "timeout":
        return f"it did not finish within {limits[what + '_seconds']} s (an infinite loop?)"
    return "the process running it died (sys.exit/os._exit, a crash, or a memory or CPU limit)"


class Supervisor:
    """PID 1 of the sandbox: the host's only peer. Owns the plan, the inputs, the oracles,
    the clocks and the end of every job; runs no student code."""

    def __init__(self, proto_in, proto_out, isolation, workdir):
        self.proto_in, self.proto_out = proto_in, proto_out
        self.isolation, self.workdir = isolation, workdir
        self.inputs = {}
        self.oracles = None
        self.template = None
        self.template_pid = None
        self.skip_prefix = 0
        self.ignored = self.refused = 0
        self.retiring = None   # the last job, ended once its report is sent
        self.spare = None      # (key, Job): the next job, started ahead of its submission
        self.me = os.getpid()
        # The lane's memory cgroup (its peak, resettable, and its usage), opened by the host:
        # a peak that no process of the sandbox can reset, where VmHWM can be by any of them.
        self.memory = None

    def reply(self, payload):
        for chunk in wire.encode_report(payload):
            self.proto_out.write(chunk)
        self.proto_out.flush()

    def start(self, warm, close_fds):
        """Fork this lane's template from the warm state, then, and only then, take in the
        secrets: the hidden inputs and the oracles come on the lane's own channel."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:
            try:
                _named("template")
                ours.close()
                for fd in (self.proto_in.fileno(), self.proto_out.fileno(), *close_fds):
                    with contextlib.suppress(OSError):
                        os.close(fd)
                Template(theirs, warm, self.isolation).serve()
            finally:
                os._exit(0)
        theirs.close()
        self.template, self.template_pid = ours, pid
        line = self.proto_in.readline()
        request = json.loads(line) if line else {}
        if request.get("op") != "init":
            raise RuntimeError("expected the lane's init")
        folder = request["inputs_dir"]
        for name in sorted(os.listdir(folder)):
            if name.endswith(".npy"):
                with open(os.path.join(folder, name), "rb") as f:
                    self.inputs[name[:-4]] = wire.shareable(f.read())
        if request.get("oracles"):
            module = types.ModuleType("oracles")
            exec(compile(request["oracles"], "<oracles>", "exec"), module.__dict__)  # noqa: S102
            self.oracles = module
        self.oracle_parts = set(request.get("oracle_parts") or [])
        # The inputs and the oracles are never garbage either: the collector need not walk
        # them after every job.
        gc.freeze()
        if ours.recv(1) != b"R":
            raise RuntimeError("the template did not start")
        self.reply({"op": "ready", "pid": os.getpid(), "inputs": len(self.inputs),
                    "torch": torch.__version__, "isolation": self.isolation})

    def memory_mark(self):
        """Reset the lane's memory peak to its usage now, and return that usage (bytes)."""
        if self.memory is None:
            return None
        try:
            os.pwrite(self.memory[0], b"0", 0)
            return int(os.pread(self.memory[1], 64, 0))
        except (OSError, ValueError):
            return None

    def memory_peak(self):
        if self.memory is None:
            return None
        try:
            return int(os.pread(self.memory[0], 64, 0))
        except (OSError, ValueError):
            return None

    def processes(self):
        """This lane's processes, from the kernel's list: the ones whose parents lead here.
        Orphans of its jobs re-attach to this process (a subreaper) or to their job's init,
        so nothing a job started leaves the tree while it lives."""
        return _tree(self.me)

    def too_many_processes(self):
        """More processes in this lane than grading ever needs?"""
        try:
            return len(self.processes()) > PROCESS_BUDGET
        except OSError:
            return False

    def oracle(self, part, header, blobs, calls, limit_bytes):
        """Answer a part-4 building block's question, or refuse it. The supervisor's own time
        is bounded: at most two dimensions, and no more data than twice the case's inputs."""
        fn = getattr(self.oracles, str(header.get("fn")), None) if self.oracles else None
        if part not in self.oracle_parts or fn is None or str(header.get("fn")).startswith("_"):
            self.refused += 1
            return {"op": "oracle_refused", "error": "no reference steps for this part"}, []
        if calls > ORACLE_CALLS:
            return {"op": "oracle_refused", "error": "too many calls of the reference steps"}, []
        if sum(len(b) for b in blobs) > limit_bytes:
            return {"op": "oracle_refused", "error": "the reference step got tensors far larger "
                                                     "than this input's network"}, []
        arrays = [wire.load_array(b) for b in blobs]
        if any(a is None or a.ndim > 2 for a in arrays):
            return {"op": "oracle_refused", "error": "the reference step got something that is not a tensor"}, []
        try:
            result = fn(*[torch.from_numpy(a) for a in arrays])
            return {"op": "oracle_result"}, [wire.array_bytes(t.detach().numpy()) for t in result]
        except Exception as exc:  # noqa: BLE001 - shapes the student passed may not fit
            return {"op": "oracle_refused", "error": f"{type(exc).__name__}: {str(exc)[:300]}"}, []

    def grade(self, request):
        started = time.monotonic()
        self.skip_prefix = int(request.get("skip", 0))
        if self.template_pid is None or not _alive(self.template_pid):
            self.reply({"op": "done", "job": request["job"], "status": "sandbox_failure",
                        "cells": [], "cases": [], "partruns": [],
                        "cell_outputs": [], "part_outputs": []})
            self.reply({"op": "clean", "job": request["job"], "ok": False})
            return
        self.ignored = self.refused = 0
        report = Grading(self, request).run()
        report["ignored_messages"], report["refused_oracle_calls"] = self.ignored, self.refused
        report.update({"op": "done", "job": request["job"],
                       "seconds": round(time.monotonic() - started, 3)})
        self.reply(report)
        self.end_job(request)

    def end_job(self, request):
        """Kill what is left of the job, say whether the sandbox is provably clean, and start
        the next job's processes from the template while the host is busy."""
        if self.retiring is not None:
            self.retiring.kill()
            self.retiring = None
        ok = self.clean()
        self.reply({"op": "clean", "job": request["job"], "ok": ok})
        if ok:
            with contextlib.suppress(JobLost, OSError):
                self.spare = (self._job_key(request["limits"]), Job(self, request["limits"]))

    def _job_key(self, limits):
        return json.dumps([limits, bool(self.skip_prefix)], sort_keys=True)

    def take_job(self, limits):
        """The spare job when it was made for these limits and prefix, else a new one. A spare
        has run nothing: it is a fresh copy of the template, as a new job would be."""
        spare, self.spare = self.spare, None
        if spare is not None:
            if spare[0] == self._job_key(limits):
                return spare[1]
            spare[1].kill()
        return Job(self, limits)

    def clean(self):
        """Can the lane prove that nothing of the job is left? Only its supervisor and its
        template may exist in its tree (weaker levels cannot prove it). Other lanes' jobs are
        not its business: they are in trees of their own."""
        _reap()
        if self.isolation != "bwrap":
            return _alive(self.template_pid)
        return self.processes() <= {self.me, self.template_pid} and _alive(self.template_pid)

    def serve(self):
        for line in self.proto_in:
            request = json.loads(line)
            op = request.get("op")
            if op == "grade":
                self.grade(request)
            elif op == "ping":
                self.reply({"op": "pong", "clean": self.clean()})
            elif op == "quit":
                return


def _unshare_as_self(flags):
    """New namespaces (a user namespace among them) in which this process keeps its own uid
    and gid; False when the kernel refuses any of it."""
    uid, gid = os.getuid(), os.getgid()
    if _libc.unshare(flags) != 0:
        return False
    try:
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                           ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    except OSError:
        return False
    return True


class Root:
    """PID 1 of the sandbox: imports torch and makes the warm state once, then forks one
    supervisor per lane the host asks for. It never holds a secret (each lane's inputs and
    oracles reach that lane alone, after its template was forked) and runs no student code.

    Lanes share the warm pages and the machine's cores. Each has its own supervisor, template,
    jobs, process tree and (where the host could make them) pids and memory cgroups: one
    lane's submission cannot see into, starve of processes or memory, or end another's."""

    def __init__(self, proto_in, lanes_sock, isolation, workdir):
        self.proto_in, self.lanes_sock = proto_in, lanes_sock
        self.isolation, self.workdir = isolation, workdir
        self.warm = None
        self.lanes = {}        # index -> the pid of its supervisor

    def serve(self):
        line = self.proto_in.readline()
        request = json.loads(line) if line else {}
        if request.get("op") != "init":
            return
        # What importing torch made is never garbage: collected and frozen once, here, so that
        # no lane, template or job walks it again.
        gc.collect()
        gc.freeze()
        self.warm = Warm(request, self.workdir)
        host = self.proto_in.fileno()
        while True:
            ready = select.select([host, self.lanes_sock], [], [], 0.5)[0]
            self.reap()
            if host in ready:
                return       # the host asked to quit, or is gone: the sandbox ends with us
            if self.lanes_sock in ready:
                try:
                    msg, fds, _, _ = socket.recv_fds(self.lanes_sock, 4096, 8)
                except OSError:
                    return
                if not msg:
                    return
                self.fork_lane(json.loads(msg.decode()), fds)

    def fork_lane(self, request, fds):
        """A fresh supervisor for lane `index` on the channel that came with the request; it
        joins the lane's cgroups (the other fds: their cgroup.procs, opened by the host) before
        it forks anything. An earlier supervisor of that lane is ended with what it started."""
        index = int(request.get("index", 0))
        joins = int(request.get("join", len(fds) - 1))
        old = self.lanes.pop(index, None)
        if old is not None:
            with contextlib.suppress(OSError):
                os.kill(old, signal.SIGKILL)
            self.reap()
        chan, cgroups, memory = fds[0], fds[1:1 + joins], fds[1 + joins:]
        pid = os.fork()
        if pid == 0:
            try:
                _named("supervisor")
                for fd in cgroups:
                    os.write(fd, b"0")    # fails (and so ends the lane) rather than run outside them
                    os.close(fd)
                for fd in (self.lanes_sock.fileno(), self.proto_in.fileno()):
                    os.close(fd)          # the root's channels are not a lane's business
                # A network namespace of the lane's own (with the user namespace that owns it):
                # through one, a job could reach another lane's (an abstract socket, a port).
                if self.isolation == "bwrap" and not _unshare_as_self(CLONE_NEWUSER | CLONE_NEWNET):
                    raise RuntimeError("the lane's network namespace could not be made")
                _prctl(PR_SET_CHILD_SUBREAPER, 1)  # the lane's orphans re-attach here
                sock = socket.socket(fileno=chan)
                sup = Supervisor(sock.makefile("r"), sock.makefile("wb"), self.isolation, self.workdir)
                sup.memory = memory if len(memory) == 2 else None
                sup.start(self.warm, [chan, *memory])
                sup.serve()
            finally:
                os._exit(0)
        for fd in fds:
            os.close(fd)
        self.lanes[index] = pid

    def reap(self):
        """Reap what ended, and end what an ended lane left behind: its orphans re-attach to
        this process, whose only other children are the live lanes' supervisors. Looked for
        at every turn, not only when a lane's end is reaped: an orphan can re-attach late."""
        _reap()
        self.lanes = {i: p for i, p in self.lanes.items() if _alive(p)}
        live = set(self.lanes.values())
        for pid, parent in _parents().items():
            if parent == os.getpid() and pid not in live:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)


def _alive(pid):
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == 0


def _args(argv):
    opts = {"--isolation": "bwrap", "--workdir": "/home/student", "--lanes-fd": "3"}
    for key, value in zip(argv[::2], argv[1::2]):
        opts[key] = value
    return opts["--isolation"], opts["--workdir"], int(opts["--lanes-fd"])


def main():
    isolation, workdir, lanes_fd = _args(sys.argv[1:])
    if isolation == "namespaces" and not UNSHARED:
        isolation = "rlimits"
    proto_in = os.fdopen(os.dup(0), "r")   # the host's init line, then quit (the root answers nothing)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as PID 1, only handled signals arrive
    _prctl(PR_SET_CHILD_SUBREAPER, 1)  # outside bwrap, orphans re-attach here
    _prctl(PR_SET_DUMPABLE, 0)         # no /proc/<pid>/mem, fd or ptrace access from jobs
    torch.set_num_threads(1)
    _named("root")
    lanes_sock = socket.socket(fileno=lanes_fd)
    Root(proto_in, lanes_sock, isolation, workdir).serve()
    # Leave at once. Tearing down an interpreter that holds torch takes a while, and as the
    # namespace's init (or every lane's ancestor) this exit ends the rest.
    os._exit(0)


if __name__ == "__main__":
    main()
