"""The only code that runs next to student code: the warm zygote and its fork-chain harness.

Imports only the standard library, numpy and torch. It is started inside the sandbox, imports
torch once, then serves one submission at a time on its stdin/stdout (one JSON line each way).

Per submission the zygote forks a *chain*: each notebook cell runs in a fresh child of the
process that holds the state after the previous cell. A cell that crashes, exits or hangs is
killed and the chain goes on from the state before it, as if the cell had raised. After a
part's cells, a forked "part process" runs that part's cases through the assignment's probes
and records plain arrays. Nothing here decides a score: the trusted side reads the arrays.
"""
import base64
import contextlib
import ctypes
import gc
import io
import json
import linecache
import os
import re
import resource
import select
import shutil
import signal
import sys
import time
import traceback
import types


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

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
CAPTURE_BYTES = 8192
_libc = ctypes.CDLL(None, use_errno=True)


# --- process plumbing ------------------------------------------------------------------

def _prctl(option, value):
    _libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0)


def _stat(pid):
    """(state, ppid) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        fields = data[data.rindex(b")") + 2:].split()
        return fields[0].decode(), int(fields[1])
    except (OSError, ValueError, IndexError):
        return None


def _ppid_of(pid):
    st = _stat(pid)
    return st[1] if st else None


def _descendants(root):
    """All processes whose parent chain reaches `root` (the zygote is a subreaper, so
    orphans re-attach to it and stay findable even without a PID namespace)."""
    parents = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None and st[0] not in ("Z", "X"):  # the dead need reaping, not killing
                parents[int(name)] = st[1]
    found = set()
    for pid in parents:
        p, seen = pid, 0
        while p in parents and seen < 64:
            p, seen = parents[p], seen + 1
            if p == root:
                found.add(pid)
                break
    return found


def kill_tree(root, keep=()):
    """SIGKILL every descendant of `root` except `keep`, until none is left."""
    keep = set(keep) | {root}
    for _ in range(100):
        victims = _descendants(root) - keep
        if not victims:
            _reap()  # the ones killed in the last round are zombies by now
            break
        for pid in victims:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        _reap()
        time.sleep(0.002)


def _reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _vm_size():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _set_limits(limits, headroom_mb=None):
    """rlimits; with `headroom_mb`, the address space is what this process maps now plus that."""
    mem = int(limits["memory_mb"]) * 1024 * 1024
    if headroom_mb is not None:
        mem = _vm_size() + int(headroom_mb) * 1024 * 1024
    cpu = int(limits["cpu_seconds"])
    for res, value in ((resource.RLIMIT_AS, mem), (resource.RLIMIT_CPU, cpu),
                       (resource.RLIMIT_FSIZE, int(limits["file_mb"]) * 1024 * 1024),
                       (resource.RLIMIT_CORE, 0), (resource.RLIMIT_NOFILE, 256)):
        with contextlib.suppress(ValueError, OSError):
            hard = resource.getrlimit(res)[1]
            soft = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(res, (soft, soft if res != resource.RLIMIT_CPU else
                                     (soft + 2 if hard == resource.RLIM_INFINITY else hard)))


_MARK = re.compile(rb"\x1eGBK:([^\x1e\n]{1,64})\x1e\n")


def _mark(key):
    """Start a new output segment (one per cell, one per part's probes) on the capture pipe."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    with contextlib.suppress(OSError):
        os.write(1, b"\x1eGBK:" + key.encode() + b"\x1e\n")


class _Capture:
    """Drains a child's stdout/stderr pipe into segments (split at `_mark` lines), keeping the
    first bytes of each segment and counting the rest."""

    def __init__(self, fd):
        self.fd, self.key, self.pending = fd, None, b""
        self.segments = {}  # key -> [kept bytes, dropped count]

    def _add(self, data):
        seg = self.segments.setdefault(self.key, [bytearray(), 0])
        room = max(CAPTURE_BYTES - len(seg[0]), 0)
        seg[0] += data[:room]
        seg[1] += max(len(data) - room, 0)

    def _feed(self, chunk):
        buf, pos = self.pending + chunk, 0
        for m in _MARK.finditer(buf):
            self._add(buf[pos:m.start()])
            self.key, pos = m.group(1).decode("ascii", "replace"), m.end()
        rest = buf[pos:]
        cut = rest.rfind(b"\x1e")
        if cut != -1 and len(rest) - cut < 80:  # perhaps a marker cut in two: wait for the rest
            self._add(rest[:cut])
            self.pending = rest[cut:]
        else:
            self._add(rest)
            self.pending = b""

    def drain(self):
        try:
            chunk = os.read(self.fd, 65536)
        except BlockingIOError:
            return True
        if not chunk:
            self._add(self.pending)
            self.pending = b""
            return False
        self._feed(chunk)
        return True

    def keys(self):
        return [k for k in self.segments if k is not None]

    def text(self, key=None):
        kept, dropped = self.segments.get(key, [b"", 0])
        t = bytes(kept).decode("utf-8", "replace")
        return t + (f"\n[... {dropped} more bytes of output not shown]" if dropped else "")


def _spawn(fn, *args):
    """Fork a child whose stdout/stderr go to a pipe; returns (pid, ctl_read_fd, capture)."""
    ctl_r, ctl_w = os.pipe()
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ctl_r)
            os.close(out_r)
            os.dup2(out_w, 1)
            os.dup2(out_w, 2)
            os.close(out_w)
            sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", closefd=False), line_buffering=True,
                                          errors="replace")
            sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", closefd=False), line_buffering=True,
                                          errors="replace")
            fn(ctl_w, *args)
        except BaseException:  # noqa: BLE001 - the harness itself must never leak out
            pass
        os._exit(0)
    os.close(ctl_w)
    os.close(out_w)
    os.set_blocking(out_r, False)
    os.set_blocking(ctl_r, False)
    return pid, ctl_r, _Capture(out_r)


def _supervise(pid, ctl_r, cap, deadline_for):
    """Follow a child's control messages until it reports `done`, dies or runs out of time.

    `deadline_for(last_message)` gives the absolute deadline after each message (None at
    the start). Returns (messages, outcome) with outcome in done | died | timeout."""
    state = {"msgs": [], "buf": b"", "done": False, "ctl_open": True}
    deadline = deadline_for(None)
    out_open, exited = True, False

    def read_ctl():
        nonlocal deadline
        while state["ctl_open"]:
            try:
                chunk = os.read(ctl_r, 4096)
            except BlockingIOError:
                return
            if not chunk:
                state["ctl_open"] = False
                return
            state["buf"] += chunk
            while b"\n" in state["buf"]:
                line, state["buf"] = state["buf"].split(b"\n", 1)
                msg = line.decode("ascii", "replace")[:200]
                state["msgs"].append(msg)
                deadline = deadline_for(msg)
                if msg == "done":
                    state["done"] = True

    outcome = None
    while outcome is None:
        fds = [ctl_r] if state["ctl_open"] else []
        fds += [cap.fd] if out_open else []
        wait = deadline - time.monotonic()
        ready = select.select(fds, [], [], max(min(wait, 0.2), 0))[0] if fds else time.sleep(0.01) or []
        if cap.fd in ready:
            out_open = cap.drain()
        if ctl_r in ready:
            read_ctl()
        if state["done"]:
            outcome = "done"
            break
        if not exited:
            try:
                exited = os.waitpid(pid, os.WNOHANG)[0] == pid
            except ChildProcessError:
                exited = True
        if exited:
            read_ctl()  # it may have said "done" just before exiting
            outcome = "done" if state["done"] else "died"
        elif time.monotonic() >= deadline:
            outcome = "timeout"
    while out_open:
        if not select.select([cap.fd], [], [], 0)[0]:
            break
        out_open = cap.drain()
    os.close(ctl_r)
    os.close(cap.fd)
    return state["msgs"], outcome


def _last_line(exc):
    """The student's last traceback line, e.g. 'line 3, in mse_grad: inp.g = ...'."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith("<cell")]
    if not frames:
        return ""
    f = frames[-1]
    return f"{f.filename} line {f.lineno}, in {f.name}: {(f.line or '').strip()}"[:300]


def _error_info(exc):
    return {"type": type(exc).__name__, "message": str(exc)[:500], "last_line": _last_line(exc)}


# --- the autograd tripwire -------------------------------------------------------------

class _Tripwire:
    """Records autograd use in this process; trusted oracles can open an allowance."""

    def __init__(self):
        self.used, self.allowed = False, 0

    @contextlib.contextmanager
    def allow(self):
        self.allowed += 1
        try:
            with torch.enable_grad():
                yield
        finally:
            self.allowed -= 1

    def wrap(self, fn):
        trip = self

        def guarded(*args, **kwargs):
            if not trip.allowed:
                trip.used = True
            return fn(*args, **kwargs)
        return guarded

    def install(self):
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


def _record_outputs(outputs, prefix, files):
    arrays, values, missing, notes = [], {}, [], []
    for key, value in (outputs or {}).items():
        key = str(key)[:64]
        if value is None:
            missing.append(key)
            continue
        if isinstance(value, (bool, int, float, str)) and not isinstance(value, np.ndarray):
            values[key] = value if not isinstance(value, str) else value[:2000]
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
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        files[f"{prefix}__{len(arrays)}.npy"] = buf.getvalue()
        arrays.append(key)
        if isinstance(value, torch.Tensor) and (value.requires_grad or value.grad_fn is not None):
            values[key + ".requires_grad"] = True
    return {"arrays": arrays, "values": values, "missing": missing, "notes": notes}


# --- one submission --------------------------------------------------------------------

def _send_line(fd, line):
    data = (line + "\n").encode()
    while data:
        data = data[os.write(fd, data):]


def _send(fd, kind, payload):
    _send_line(fd, f"json {kind} " + json.dumps(payload, separators=(",", ":")))


def _redirect_to_devnull():
    """Once a child hands over, its old capture pipe has no reader any more."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.close(null)


def _ancestors():
    chain, pid = set(), os.getpid()
    while pid and pid not in chain:
        chain.add(pid)
        pid = _ppid_of(pid)
    return chain


class Job:
    """One submission's cells, its part -> cases plan and its limits, as sent by the trusted side.

    Results travel on the report pipe (`self.report`), which every process of the chain
    inherits; the zygote reads it. Student code can write there too, but it can only
    spoil its own submission's results, never make a wrong answer right.

    Cells run in *steps*: one forked child runs consecutive cells up to the next part that
    must be probed right after its own cell (because a later cell rebinds its names); parts
    whose names nothing rebinds are probed together at the end. If a step's child dies or
    hangs in cell j, the holder skips j and runs the step again: the cells before j run
    anew (their reports replace the first ones), exactly as if j had raised."""

    def __init__(self, request, inputs, probes, zygote, report_fd, base_ns=None):
        self.cells = request["cells"]
        self.parts = request["parts"]
        self.limits = request["limits"]
        self.inputs, self.probes = inputs, probes
        self.zygote, self.report = zygote, report_fd
        self.parts_after = {}  # cell index -> parts probed right after it
        for part, spec in self.parts.items():
            if not spec.get("deferred"):
                self.parts_after.setdefault(spec["after"], []).append(part)
        self.deferred = [p for p, spec in self.parts.items() if spec.get("deferred")]
        self.trip = _Tripwire()
        self.ns = None
        self.holder_parent = None
        self.bound = {}    # cell index -> names that cell (re)bound
        self.skip = set()  # cells whose process died or hung: not run again
        self.token = request["token"]
        self.start_at = int(request.get("skip", 0)) if base_ns is not None else 0
        self.base_ns = base_ns or {}

    def emit(self, kind, payload):
        with contextlib.suppress(OSError):
            _send(self.report, kind, payload)

    # -- the root of the chain (forked from the zygote) --

    def root(self):
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.chdir(self.limits.get("workdir", "/"))
        _set_limits(self.limits)
        self.trip.install()  # before any student code, so no cell can stash the originals
        import builtins
        self.ns = {"__name__": "__main__", "__builtins__": builtins}
        if self.start_at:
            self.ns.update(self.base_ns)  # the locked cells the zygote already ran
        self.ns["__grader_allow_autograd__"] = self.trip.allow
        self.chain_from(self.start_at)

    def chain_from(self, index):
        """Runs in the process that holds the state after cells[:index] (bar skipped ones)."""
        while index < len(self.cells):
            kill_tree(self.zygote, keep=_ancestors())  # strays of earlier cells
            end = self._step_end(index)
            pid, ctl, cap = _spawn(self._step_child, index, end)
            msgs, outcome = _supervise(pid, ctl, cap, self._step_deadline())
            for key in cap.keys():
                if key.startswith("cell:"):
                    self.emit("cell_output", {"index": int(key[5:]), "text": cap.text(key)})
            if outcome == "done":
                os._exit(0)  # the child holds the newer state and carries the chain on
            kill_tree(self.zygote, keep=_ancestors())
            failed = self._failed_cell(msgs, index, end)
            self.emit("cell", {"index": failed, "status": outcome, "error": {
                "type": "Timeout" if outcome == "timeout" else "Crash",
                "message": _death_message(outcome, self.limits, "cell"), "last_line": ""}})
            for part in self.parts_after.get(failed, []):
                self.emit("partrun", {"part": part, "status": "not_run",
                                      "reason": f"its cell {outcome}"})
            self.skip.add(failed)
        self.finish()

    def finish(self):
        if self.deferred:
            self.run_parts(self.deferred)
        # Let the process that supervised the last step report its output first.
        until = time.monotonic() + 2
        while os.getppid() == self.holder_parent and time.monotonic() < until:
            time.sleep(0.001)
        self.emit("finished", {"token": self.token})
        os._exit(0)

    def _step_end(self, index):
        for i in range(index, len(self.cells)):
            if i in self.parts_after:
                return i
        return len(self.cells) - 1

    def _failed_cell(self, msgs, index, end):
        """The cell that was running when the step's child died: started, never finished."""
        started = [int(m.split()[1]) for m in msgs if m.startswith("start ")]
        finished = {int(m.split()[1]) for m in msgs if m.startswith("ran ")}
        running = [i for i in started if i not in finished]
        if running:
            return running[-1]
        if started:  # every cell ran; it died while its part was probed: count it on the last
            return max(started)
        return next(i for i in range(index, end + 1) if i not in self.skip)

    def _step_deadline(self):
        lim = self.limits

        def deadline(msg):
            if msg is None or msg.startswith("start "):
                return time.monotonic() + lim["cell_seconds"]
            if msg.startswith("part "):
                return time.monotonic() + lim["part_seconds"] + lim["case_seconds"] + 5
            return time.monotonic() + 5
        return deadline

    def _step_child(self, ctl, index, end):
        self.holder_parent = os.getppid()
        for i in range(index, end + 1):
            if i in self.skip:
                continue
            _send_line(ctl, f"start {i}")
            _mark(f"cell:{i}")
            self.run_cell(i)
            _send_line(ctl, f"ran {i}")
        if end not in self.skip:
            for part in self.parts_after.get(end, []):
                _send_line(ctl, f"part {part}")
                self.run_parts([part])
        _redirect_to_devnull()
        _send_line(ctl, "done")
        os.close(ctl)
        self.chain_from(end + 1)

    def run_cell(self, index):
        cell = self.cells[index]
        started = time.monotonic()
        status = {"index": index, "status": "ok"}
        used = [n for n, attr in (cell.get("stand_ins") or {}).items()
                if n not in self.ns and hasattr(self.probes, attr)]
        for n in used:  # what an earlier part should have defined, so this part stands alone
            self.ns[n] = getattr(self.probes, cell["stand_ins"][n])
        name = f"<cell {cell.get('grade_id') or index}>"
        linecache.cache[name] = (len(cell["source"]), None, cell["source"].splitlines(True), name)
        before = {k: id(v) for k, v in self.ns.items()}
        try:
            code = compile(cell["source"], name, "exec")
            exec(code, self.ns)  # noqa: S102 - the student's notebook cell, sandboxed
        except BaseException as exc:  # noqa: BLE001 - SystemExit too: Jupyter keeps going
            status = {"index": index, "status": "error", "error": _error_info(exc)}
        status["seconds"] = round(time.monotonic() - started, 4)
        status["at"] = round(time.monotonic(), 4)
        status["stand_ins"] = used
        self.bound[index] = {k for k, v in self.ns.items() if before.get(k) != id(v)}
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        self.emit("cell", status)

    # -- parts' cases, in forked part processes --

    def run_parts(self, parts):
        """Probe these parts' cases in one forked process; after a crash a new one goes on
        at the next case, after a hang at the next part (a hang on one input is a hang on all)."""
        runnable = []
        for part in parts:
            spec = self.parts[part]
            if spec["after"] in self.skip:
                self.emit("partrun", {"part": part, "status": "not_run", "reason": "its cell died"})
            else:
                runnable.append(part)
        flat = [(p, c) for p in runnable for c in self.parts[p]["cases"]]
        start, texts = 0, {p: [] for p in runnable}
        while start < len(flat):
            pid, ctl, cap = _spawn(self._cases_child, runnable, flat, start)
            msgs, outcome = _supervise(pid, ctl, cap, self._case_deadline())
            for key in cap.keys():
                if key.startswith("part:") and key[5:] in texts:
                    texts[key[5:]].append(cap.text(key))
            if outcome == "done":
                break
            kill_tree(self.zygote, keep=_ancestors())
            started = [int(m.split()[1]) for m in msgs if m.startswith("start ")]
            position = started[-1] if started else start
            part, case = flat[position]
            self.emit("case", {"record": {
                "index": case["index"], "status": "timeout" if outcome == "timeout" else "crashed",
                "error": {"type": "Timeout" if outcome == "timeout" else "Crash",
                          "message": _death_message(outcome, self.limits, "case"), "last_line": ""},
                "autograd_used": False}, "files": {}})
            start = position + 1
            if outcome == "timeout":
                rest = [c for p, c in flat[start:] if p == part]
                self._skip_cases(rest, "not run: an earlier input of this part timed out")
                start += len(rest)
        for part in runnable:
            self.emit("part_output", {"part": part, "text": "".join(texts[part])[:CAPTURE_BYTES * 2]})
            self.emit("partrun", {"part": part, "status": "ran"})

    def _skip_cases(self, cases, why):
        for case in cases:
            self.emit("case", {"record": {
                "index": case["index"], "status": "timeout", "autograd_used": False,
                "error": {"type": "Timeout", "last_line": "", "message": why}}, "files": {}})

    def _case_deadline(self):
        def deadline(msg):
            return time.monotonic() + self.limits["case_seconds"]
        return deadline

    def _cases_child(self, ctl, parts, flat, start):
        _set_limits(self.limits, headroom_mb=self.limits["probe_headroom_mb"])
        for part in parts:
            spec = self.parts[part]
            if spec.get("first") is not None:
                # Judged on its own cells: a name they did not bind is missing, not inherited.
                own = set().union(*(self.bound.get(i, set())
                                    for i in range(spec["first"], spec["after"] + 1)))
                for name in spec.get("defines") or []:
                    if name not in own:
                        self.ns.pop(name, None)
        base = dict(self.ns)  # each part's probes start from the same bindings
        current, began = None, 0.0
        for pos in range(start, len(flat)):
            part, case = flat[pos]
            if part != current:
                if current is not None:
                    self.ns.clear()
                    self.ns.update(base)
                current, began = part, time.monotonic()
                _mark(f"part:{part}")
            if time.monotonic() - began > self.limits["part_seconds"]:
                self._skip_cases([case], "not run: this part used up its time")
                continue
            _send_line(ctl, f"start {pos}")
            self.emit("case", self.run_case(case))
        _send_line(ctl, "done")

    def run_case(self, case):
        idx = case["index"]
        self.trip.used = False
        started = time.monotonic()
        record, files = {"index": idx, "status": "ok"}, {}
        try:
            probe = getattr(self.probes, case["probe"])
            inputs = {k: np.array(self.inputs[v], copy=True) for k, v in case["inputs"].items()}
            record.update(_record_outputs(probe(self.ns, inputs), f"case_{idx}", files))
        except BaseException as exc:  # noqa: BLE001 - whatever student code raised
            record["status"] = "error"
            record["error"] = _error_info(exc)
            text = str(exc)
            if isinstance(exc, MemoryError) or "can't allocate memory" in text \
                    or "not enough memory" in text:
                record["error"]["memory"] = True
        record["autograd_used"] = bool(self.trip.used)
        record["seconds"] = round(time.monotonic() - started, 4)
        record["at"] = round(time.monotonic(), 4)  # for profiling the harness itself
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        return {"record": record, "files": {k: base64.b64encode(v).decode() for k, v in files.items()}}


def _death_message(outcome, limits, what):
    if outcome == "timeout":
        return f"it did not finish within {limits[what + '_seconds']} s (an infinite loop?)"
    return "the process running it died (sys.exit/os._exit, a crash, or a memory or CPU limit)"


# --- the zygote ------------------------------------------------------------------------

def _wipe(folder, keep=None):
    """Empty the private tmpfs. A kit that lives under /tmp is bound read-only inside it: keep
    those mounts, but still empty the folders around them (student code can write there)."""
    if keep is None:
        exe_prefix = os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))
        keep = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix)} | {exe_prefix}
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if path in keep:
            continue
        if any(k.startswith(path + "/") for k in keep):
            _wipe(path, keep)
            continue
        with contextlib.suppress(OSError):
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)


def _warm_up():
    """Pay torch's lazy imports once here, not in every forked child: the first
    autograd call alone pulls in sympy (about a second)."""
    x = torch.randn(3, 2, requires_grad=True)
    torch.autograd.grad((x * 2).sum(), [x], grad_outputs=torch.ones(()))
    (x.relu() ** 2).mean().backward()
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    torch.nn.functional.mse_loss(net(x.detach()).squeeze(-1), torch.zeros(3)).backward()
    torch.einsum("bi,bj->ij", x.detach(), x.detach())
    with contextlib.suppress(Exception):
        torch.func.vjp(lambda t: t.sin(), torch.ones(2))
    np.save(io.BytesIO(), np.zeros(2), allow_pickle=False)



class Zygote:
    """Imported torch once; forks one chain per submission and relays what it reports."""

    def __init__(self, proto_in, proto_out, isolation, workdir):
        self.proto_in, self.proto_out = proto_in, proto_out
        self.isolation, self.workdir = isolation, workdir
        self.inputs, self.probes = {}, None
        self.base_ns = None

    def reply(self, payload):
        self.proto_out.write(json.dumps(payload, separators=(",", ":")) + "\n")
        self.proto_out.flush()

    def init(self, request):
        folder = request["inputs_dir"]
        for name in sorted(os.listdir(folder)):
            if name.endswith(".npy"):
                self.inputs[name[:-4]] = np.load(os.path.join(folder, name), allow_pickle=False)
        module = types.ModuleType("probes")
        exec(compile(request["probes"], "<probes>", "exec"), module.__dict__)  # noqa: S102
        self.probes = module
        _warm_up()
        self.base_ns = self._run_prefix(request.get("prefix") or [])
        # Forked children then neither traverse nor copy-on-write the zygote's objects for GC.
        gc.collect()
        gc.freeze()
        self.reply({"op": "ready", "pid": os.getpid(), "inputs": len(self.inputs),
                    "torch": torch.__version__, "isolation": self.isolation})

    def _run_prefix(self, sources):
        """The instructor's leading locked cells (imports, data, weights) run once, here,
        so every submission starts from their state instead of paying for them again."""
        if not sources:
            return None
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

    def grade(self, request):
        started = time.monotonic()
        limits = request["limits"]
        limits["workdir"] = self.workdir
        report_r, report_w = os.pipe()
        # Only the chain's real end carries this: blind writes to inherited fds can't cut it short.
        request["token"] = os.urandom(16).hex()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(report_r)
                for fd in (self.proto_in.fileno(), self.proto_out.fileno()):
                    os.close(fd)  # student code must never reach the protocol stream
                os.setsid()
                Job(request, self.inputs, self.probes, os.getppid(), report_w, self.base_ns).root()
            finally:
                os._exit(0)
        os.close(report_w)
        collected, status = self.collect(report_r, started + limits["job_seconds"],
                                         limits["report_mb"] * 1024 * 1024, request["token"])
        kill_tree(os.getpid())
        os.close(report_r)
        if self.isolation == "bwrap":
            _wipe("/tmp")  # the sandbox's private tmpfs: nothing passes to the next submission
        collected.update({"op": "done", "job": request["job"], "status": status,
                          "seconds": round(time.monotonic() - started, 3)})
        self.reply(collected)

    def collect(self, fd, deadline, cap_bytes, token):
        out = {"cells": [], "cell_outputs": [], "partruns": [], "part_outputs": [], "cases": []}
        keys = {"cell": "cells", "cell_output": "cell_outputs", "partrun": "partruns",
                "part_output": "part_outputs", "case": "cases"}
        buf, total, status = b"", 0, "incomplete"
        os.set_blocking(fd, False)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return out, "timeout"
            ready, _, _ = select.select([fd], [], [], min(remaining, 0.2))
            _reap()  # chain processes that handed over end as our (subreaper's) children
            if not ready:
                continue
            try:
                chunk = os.read(fd, 1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                return out, status
            total += len(chunk)
            if total > cap_bytes:
                return out, "report_too_large"
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if not line.startswith(b"json "):
                    continue
                kind, _, payload = line[5:].partition(b" ")
                kind = kind.decode("ascii", "replace")
                if kind == "finished":
                    with contextlib.suppress(ValueError, AttributeError):
                        if json.loads(payload).get("token") == token:
                            return out, "finished"
                    continue
                if kind in keys:
                    with contextlib.suppress(ValueError):
                        out[keys[kind]].append(json.loads(payload))

    def serve(self):
        for line in self.proto_in:
            request = json.loads(line)
            op = request.get("op")
            if op == "init":
                self.init(request)
            elif op == "grade":
                self.grade(request)
            elif op == "ping":
                self.reply({"op": "pong"})
            elif op == "quit":
                return


def _args(argv):
    opts = {"--isolation": "bwrap", "--workdir": "/home/student"}
    for key, value in zip(argv[::2], argv[1::2]):
        opts[key] = value
    return opts["--isolation"], opts["--workdir"]


def main():
    isolation, workdir = _args(sys.argv[1:])
    if isolation == "namespaces" and not UNSHARED:
        isolation = "rlimits"
    proto_in = os.fdopen(os.dup(0), "r")
    proto_out = os.fdopen(os.dup(1), "w")
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as PID 1, only handled signals arrive
    _prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans of student code re-attach here, findable
    _prctl(PR_SET_DUMPABLE, 0)         # no /proc/<zygote>/mem or fd access from children
    torch.set_num_threads(1)
    Zygote(proto_in, proto_out, isolation, workdir).serve()


if __name__ == "__main__":
    main()
