"""Grades a cohort: one warm Engine per worker process, results saved as they come, resumable, shardable."""
from __future__ import annotations

import gc
import hashlib
import json
import logging
import multiprocessing as mp
import os
import queue
import signal
import stat
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path

from . import rubric as rubric_mod
from .identity import key_and_hint_of
from .progress import Progress
from .safe_files import atomic_write, id_problem, shown
from .sandbox.launcher import lanes_possible
from .scoring import Result, score
from .store import ResultStore

log = logging.getLogger(__name__)

ATTEMPTS = 2                 # a submission whose worker dies is retried once, then recorded
TASK_TIMEOUT = 600.0         # the engine has its own per-cell limits; this catches a wedged worker
STARTUP_TIMEOUT = 180.0
# Submissions per engine from which its sandbox's huge pages pay for themselves (engine.py:
# 1.3 s once against about 0.03 s saved per submission).
MANY_SUBMISSIONS = 45
MANIFEST = ".shard.json"     # which slice a results folder holds, so merge can spot a missing one
# Sandbox lanes per core (docs/scaling.md): several submissions in flight per worker, so a
# student's sleep, a wait between the two sides or the trusted side's own work leaves the core
# to another lane, for the cost of a forked supervisor rather than another worker's start
# (torch imported twice, a pytest session). On 2 cores, 40 bench submissions (make autograde,
# three runs each): 2 workers of one lane 7.7-8.0 s; 1 worker of 4 lanes 6.1-6.2 s; of 6 lanes
# 5.8-5.9 s. 300: 32.3-33.2 s against 33.7-36.8 s, peak memory 1.15 against 1.52 GB.
LANES_PER_CORE = 3


class EngineUnavailable(RuntimeError):
    """The engine cannot start at all (a setup problem, not a submission's fault)."""


# --- what to grade ----------------------------------------------------------------------
def discover(folder: Path, assignment: str = "gradient_backward") -> list[tuple[str, Path]]:
    """(id, notebook) pairs from a flat folder (id = file stem) or nbgrader's submitted/ (id = student).

    Only regular files and real folders count: a symbolic link (to a solution, to another
    student's folder) is never followed, and is logged with the reason."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    if (folder / "submitted").is_dir() and not any(folder.glob("*.ipynb")):
        folder = folder / "submitted"          # the course root was given
    entries = sorted(os.scandir(folder), key=lambda e: e.name)
    flat = [Path(e.path) for e in entries if e.name.endswith(".ipynb") and _kind(e) == "file"]
    if flat:
        for e in entries:
            if e.name.endswith(".ipynb") and _kind(e) != "file":
                log.warning("%s: %s, skipped", shown(e.name), _kind(e))
        return [(p.stem, p) for p in flat if _safe(p.stem)]
    items = []
    for e in entries:
        if e.name.startswith(".") or _kind(e) == "file":
            continue
        if _kind(e) != "folder":
            log.warning("%s: %s, skipped", shown(e.name), _kind(e))
            continue
        if not _safe(e.name):
            continue
        nb = _pick_notebook(Path(e.path) / assignment, assignment)
        if nb is not None:
            items.append((e.name, nb))
        else:
            log.warning("%s: no notebook under %s/, skipped", shown(e.name), assignment)
    return items


def _safe(sid: str) -> bool:
    """Ids become file names, log words and report cells: nothing that could act there."""
    why = id_problem(sid)
    if why:
        log.warning("%s: not a usable id (it %s): skipped, rename it", shown(sid), why)
    return why is None


def _kind(entry: os.DirEntry) -> str:
    mode = entry.stat(follow_symlinks=False).st_mode
    if stat.S_ISLNK(mode):
        return "a symbolic link, never followed"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISREG(mode):
        return "file"
    return "not a regular file"


def _pick_notebook(folder: Path, assignment: str) -> Path | None:
    if folder.is_symlink() or not folder.is_dir():
        return None
    notebooks, links = [], []
    for e in sorted(os.scandir(folder), key=lambda e: e.name):
        if e.name.endswith(".ipynb"):
            (notebooks if _kind(e) == "file" else links).append(Path(e.path))
    for p in links:
        log.warning("%s: %s is a symbolic link or not a regular file, never followed", folder, shown(p.name))
    if not notebooks:
        return None
    preferred = rubric_mod.load(assignment).source.name
    named = [p for p in notebooks if p.name == preferred]
    if not named and len(notebooks) > 1:
        log.warning("%s: several notebooks, grading %s", folder, notebooks[0].name)
    return (named or notebooks)[0]


def parse_shard(spec: str) -> tuple[int, int]:
    """'K/N' with 1 <= K <= N (1-based like jest/playwright; JOB_COMPLETION_INDEX needs +1)."""
    try:
        k, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise ValueError(f"--shard wants K/N, e.g. 2/4, not {spec!r}") from None
    if not 1 <= k <= n:
        raise ValueError(f"--shard {spec}: K must be between 1 and N")
    return k, n


def select_shard(items: list[tuple[str, Path]], k: int, n: int) -> list[tuple[str, Path]]:
    """The K-th of N disjoint slices whose sizes differ by at most one.

    Ids are ordered by a hash (not by name, so one slice does not get all the late "zz_"
    resubmissions) and dealt round-robin; the slices depend only on the set of ids, so every
    shard job of a CI matrix computes the same partition without talking to the others.
    """
    order = sorted(items, key=lambda it: (hashlib.sha256(it[0].encode("utf-8")).hexdigest(), it[0]))
    return sorted(order[k - 1::n], key=lambda it: it[0])


# --- the worker process -----------------------------------------------------------------
def _die_with_parent() -> None:
    """A worker must not outlive a driver that was killed with -9."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _worker(assignment: str, conn: Connection, many: bool = True, lanes: int = 1) -> None:
    """Owns one Engine for its whole life and grades one submission per sandbox lane at a
    time, one thread per lane: while one lane's submission sleeps or waits, another's runs."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the driver's to handle
    try:
        from .engine import Engine
        engine = Engine(assignment, many=many, lanes=lanes)
        engine.__enter__()
        # This process lives for the engine: what it holds now (torch, the suites, the cases)
        # stays to the end, so the collector need not walk it after every submission.
        gc.collect()
        gc.freeze()
    except BaseException as e:  # noqa: BLE001 - reported to the driver, which stops the run
        conn.send(("fatal", f"{type(e).__name__}: {e}"))
        return
    outbox: queue.Queue = queue.Queue()
    wake_r, wake_w = os.pipe()

    def lane_main(lane: int, inbox: queue.Queue) -> None:
        while (task := inbox.get()) is not None:
            sid, path = task
            try:
                msg = ("done", sid, engine.grade(Path(path), lane=lane).to_json())
            except Exception:  # noqa: BLE001 - an engine bug: report, then let a fresh worker retry
                msg = ("crash", sid, traceback.format_exc(limit=5))
            outbox.put((lane, msg))
            os.write(wake_w, b".")

    inboxes = [queue.Queue() for _ in range(engine.lanes)]
    for lane, inbox in enumerate(inboxes):
        threading.Thread(target=lane_main, args=(lane, inbox), daemon=True,
                         name=f"lane-{lane}").start()
    free = list(range(engine.lanes))
    try:
        conn.send(("ready", engine.lanes))
        while True:
            for ready in wait([conn, wake_r]):
                if ready is conn:
                    try:
                        task = conn.recv()
                    except EOFError:
                        return
                    if task is None or not free:
                        return            # the end, or a driver that broke the protocol
                    inboxes[free.pop(0)].put(task)
                    continue
                os.read(wake_r, 256)
                while not outbox.empty():
                    lane, msg = outbox.get()
                    conn.send(msg)
                    if msg[0] == "crash":
                        return
                    free.append(lane)
    finally:
        for inbox in inboxes:
            inbox.put(None)
        engine.__exit__(None, None, None)


# --- the driver -------------------------------------------------------------------------
@dataclass
class _Slot:
    proc: mp.process.BaseProcess
    conn: Connection
    born: float = field(default_factory=time.monotonic)
    ready: bool = False
    lanes: int = 1
    tasks: dict[str, tuple[tuple[str, str], float]] = field(default_factory=dict)  # sid -> (task, since)


@dataclass
class _Plan:
    """What is left to do: one grading per distinct key, fanned out to every id that has it."""
    queue: deque = field(default_factory=deque)            # (grading id, path)
    ids_by_key: dict[str, list[str]] = field(default_factory=dict)
    key_of_id: dict[str, str] = field(default_factory=dict)


def _plan(items, store: ResultStore, results: dict[str, Result]) -> _Plan:
    plan = _Plan()
    fp = store.fingerprint
    hints: dict[str, float] = {}
    for sid, path in items:
        key, hints[sid] = key_and_hint_of(path, fp, store.assignment)
        rec = store.record(sid)
        if rec and rec.key == key and rec.fingerprint == fp and not rec.engine_failure:
            results[sid] = rec.result
            continue
        same = store.find_key_record(key)       # an identical notebook under another id
        if same is not None:
            store.save(sid, same.result, key=key)
            results[sid] = same.result
            continue
        plan.key_of_id[sid] = key
        if key not in plan.ids_by_key:
            plan.ids_by_key[key] = []
            plan.queue.append((sid, str(path)))
        plan.ids_by_key[key].append(sid)
    plan.queue = deque(_slow_early(list(plan.queue), hints))
    return plan


def _slow_early(tasks: list, hints: dict[str, float]) -> list:
    """Likely-slow submissions early, each followed by an ordinary one: a run ends when its
    last submission does, and one that sleeps or loops is best started early; but started
    all at once, several that sleep would leave the cores idle together. Slow means a hint
    above the cohort's median (everyone's code has some loops). The rest keep their order."""
    if not tasks:
        return tasks
    values = sorted(hints.get(t[0], 0.0) for t in tasks)
    typical = values[len(values) // 2]
    slow = sorted((t for t in tasks if hints.get(t[0], 0.0) > typical + 0.1),
                  key=lambda t: -hints[t[0]])
    chosen = {t[0] for t in slow}
    rest = [t for t in tasks if t[0] not in chosen]
    out = []
    for i, task in enumerate(slow):
        out.append(task)
        if i < len(rest):
            out.append(rest[i])
    return out + rest[len(slow):]


def engine_failure(assignment: str, reason: str) -> Result:
    """Score 0 for every part with the reason, through the one scoring function."""
    rub = rubric_mod.load(assignment)
    text = f"Not graded: the grading engine failed on this submission ({reason})."
    res = score(rub, [], feedback={p: text for p in rub.part_names},
                flags={p: ["engine_failure"] for p in rub.part_names}, isolation="none",
                header="This submission could not be graded because the grading engine failed; "
                       "it was tried twice. Ask your instructor to regrade it.")
    return res.replace(error=f"engine failure: {reason}")


def shape_for(cores: int, to_grade: int) -> tuple[int, int]:
    """(worker processes, sandbox lanes per worker) for `cores` and `to_grade` submissions.
    One core is one worker of one lane: `--jobs 1` grades strictly one submission at a time.
    Otherwise one worker per two cores (its trusted side, one thread at a time, keeps up with
    six lanes), LANES_PER_CORE lanes per core, and no more lanes than submissions; where a
    sandbox can have only one lane (no bwrap, or no cgroups for this user), one per core."""
    if cores <= 1:
        return 1, 1
    if not lanes_possible():        # one lane per sandbox here: one worker per core, as before lanes
        return max(1, min(cores, to_grade or 1)), 1
    workers = max(1, min(cores // 2, to_grade or 1))
    lanes = min(LANES_PER_CORE * cores // workers, max(1, -(-to_grade // workers)))
    return workers, lanes


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


class _Driver:
    def __init__(self, plan: _Plan, *, jobs: int, store: ResultStore, assignment: str,
                 progress: Progress, results: dict[str, Result], task_timeout: float,
                 context: str, lanes: int = 1):
        self.plan, self.jobs, self.store, self.assignment = plan, jobs, store, assignment
        self.progress, self.results, self.task_timeout = progress, results, task_timeout
        self.ctx = mp.get_context(context)
        self.slots: list[_Slot] = []
        self.attempts: dict[str, int] = {}
        self.deaths_before_ready = 0
        self.lanes = lanes

    def spawn_ahead(self, expected: int) -> None:
        """Starts the workers `expected` submissions need, before the plan exists."""
        for _ in range(min(self.jobs, expected)):
            self._spawn(expected)

    def run(self) -> None:
        try:
            for _ in range(min(self.jobs, len(self.plan.queue)) - len(self.slots)):
                self._spawn()
            while self.plan.queue or any(s.tasks for s in self.slots):
                self._dispatch()
                self._step()
        finally:
            self.shutdown()

    def _spawn(self, expected: int | None = None) -> None:
        parent, child = self.ctx.Pipe()
        # Will each worker grade enough to repay what a many-submission sandbox costs at start?
        queued = len(self.plan.queue) if expected is None else expected
        many = queued >= MANY_SUBMISSIONS * self.jobs
        # The trusted side compares small arrays: one BLAS thread. OpenBLAS's own threads would
        # spin after each call, taking CPU from the sandboxes (0.4 s per worker on 40 submissions).
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, "1")
        proc = self.ctx.Process(target=_worker, args=(self.assignment, child, many, self.lanes),
                                daemon=True, name=f"grader-{len(self.slots)}")
        proc.start()
        child.close()
        self.slots.append(_Slot(proc, parent))

    def _dispatch(self) -> None:
        for slot in self.slots:
            while slot.ready and len(slot.tasks) < slot.lanes and self.plan.queue:
                task = self.plan.queue.popleft()
                slot.tasks[task[0]] = (task, time.monotonic())
                slot.conn.send(task)

    def _step(self) -> None:
        waitables = {}
        for slot in self.slots:
            waitables[slot.conn] = slot
            waitables[slot.proc.sentinel] = slot
        for ready in wait(list(waitables), timeout=1.0):
            slot = waitables[ready]
            if slot not in self.slots:
                continue                      # already buried via its other handle
            if ready is slot.conn:
                self._receive(slot)
            elif not slot.conn.poll():        # a last message is read before the death
                self._bury(slot, "the worker process died")
        self._watchdog()

    def _receive(self, slot: _Slot) -> None:
        try:
            msg = slot.conn.recv()
        except (EOFError, OSError):
            self._bury(slot, "the worker process died")
            return
        kind = msg[0]
        if kind == "ready":
            slot.ready = True
            slot.lanes = max(1, int(msg[1]) if len(msg) > 1 else 1)
            self.deaths_before_ready = 0
        elif kind == "fatal":
            raise EngineUnavailable(f"the grading engine cannot start: {msg[1]}")
        elif kind == "done":
            slot.tasks.pop(msg[1], None)
            self._finish(msg[1], Result.from_json(msg[2]))
        elif kind == "crash":
            log.debug("engine error on %s:\n%s", msg[1], msg[2])
            last = msg[2].strip().splitlines()[-1] if msg[2].strip() else "unknown error"
            self._bury(slot, f"engine error: {last}", culprit=msg[1])

    def _watchdog(self) -> None:
        now = time.monotonic()
        for slot in list(self.slots):
            if any(now - since > self.task_timeout for _, since in slot.tasks.values()):
                slot.proc.kill()
                slot.proc.join()
                self._bury(slot, f"no answer within {self.task_timeout:.0f}s")
            elif not slot.ready and now - slot.born > STARTUP_TIMEOUT:
                raise EngineUnavailable(f"a worker did not start within {STARTUP_TIMEOUT:.0f}s")

    def _bury(self, slot: _Slot, reason: str, culprit: str | None = None) -> None:
        """Replace a dead worker; its submissions are retried once, then recorded as failed.
        When the engine named the submission it failed on, the others it held (other lanes)
        are retried without counting an attempt against them."""
        self.slots.remove(slot)
        if slot.proc.is_alive():
            slot.proc.kill()
        slot.proc.join()
        slot.conn.close()
        if not slot.ready:
            self.deaths_before_ready += 1
            if self.deaths_before_ready > 2 * self.jobs + 1:
                raise EngineUnavailable(f"workers keep dying before they are ready ({reason})")
        for task, _ in slot.tasks.values():
            sid = task[0]
            self.attempts[sid] = self.attempts.get(sid, 0) + (culprit in (None, sid))
            if self.attempts[sid] < ATTEMPTS:
                self.progress.note(f"{sid}: {reason}; retrying on a fresh worker")
                self.plan.queue.appendleft(task)
            else:
                self.progress.note(f"{sid}: {reason} again; recorded as an engine failure")
                self._finish(sid, engine_failure(self.assignment, reason), failed=True)
        if self.plan.queue and len(self.slots) < self.jobs:
            self._spawn()

    def _finish(self, grading_id: str, result: Result, failed: bool = False) -> None:
        key = self.plan.key_of_id[grading_id]
        for sid in self.plan.ids_by_key[key]:
            self.store.save(sid, result, key=key, engine_failure=failed)
            self.results[sid] = result
            self.progress.advance(f"{sid}: {result.score:g}/{result.max_score:g}")

    def shutdown(self) -> None:
        for slot in self.slots:
            try:
                slot.conn.send(None)
            except (OSError, BrokenPipeError):
                pass
        deadline = time.monotonic() + 10
        for slot in self.slots:
            slot.proc.join(max(0.0, deadline - time.monotonic()))
            if slot.proc.is_alive():
                slot.proc.kill()
                slot.proc.join()
            slot.conn.close()
        self.slots.clear()


def grade_many(items: list[tuple[str, Path]], *, jobs: int = 0, store: ResultStore,
               progress: str = "auto", assignment: str | None = None,
               task_timeout: float = TASK_TIMEOUT, context: str = "spawn") -> dict[str, Result]:
    """Grade every (id, notebook) on `jobs` cores (shape_for: warm workers, each grading
    several submissions at once in its sandbox's lanes); skip what the store already holds.

    Each result is saved the moment it arrives, so a run killed at any point resumes where it
    stopped. Identical notebooks (equal submission keys) are graded once.
    """
    ids = [sid for sid, _ in items]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"duplicate submission ids: {dup[:5]}")
    assignment = assignment or store.assignment
    cores = jobs or default_jobs()
    results: dict[str, Result] = {}
    # Workers take seconds to start and planning reads every notebook: the workers that the
    # ids with no result of this kit will need start first, and start up while the plan is made.
    ahead = _surely_to_grade(items, store)
    workers, lanes = shape_for(cores, ahead)
    driver = _Driver(_Plan(), jobs=workers, lanes=lanes, store=store, assignment=assignment,
                     progress=None, results=results, task_timeout=task_timeout, context=context)
    try:
        driver.spawn_ahead(ahead)
        plan = _plan(items, store, results)
        bar = Progress(len(items), mode=progress, done=len(results))
        try:
            if plan.queue:
                driver.jobs, driver.lanes = shape_for(cores, len(plan.queue))
                log.info("%d to grade on %d worker%s of %d lane%s", len(plan.queue), driver.jobs,
                         "s" * (driver.jobs > 1), driver.lanes, "s" * (driver.lanes > 1))
                driver.plan, driver.progress = plan, bar
                driver.run()
        finally:
            bar.close()
    finally:
        driver.shutdown()
    return {sid: results[sid] for sid in ids}


def _surely_to_grade(items, store: ResultStore) -> int:
    """How many ids have no usable result of this kit at all, from the store alone (no
    notebook is read): the plan queues fewer when notebooks are identical (graded once) and
    more when some changed since they were graded."""
    n = 0
    for sid, _ in items:
        rec = store.record(sid)
        n += rec is None or rec.fingerprint != store.fingerprint or rec.engine_failure
    return n


# --- the verb ---------------------------------------------------------------------------
def main(*, submissions: str, out: str = ".kit/results", jobs: int = 0, shard: str | None = None,
         assignment: str = "gradient_backward", progress: str = "auto") -> int:
    try:
        items = discover(Path(submissions), assignment)
        k, n = parse_shard(shard) if shard else (1, 1)
    except (ValueError, FileNotFoundError) as e:
        log.error("%s", e)
        return 2
    items = select_shard(items, k, n)
    store = ResultStore(Path(out), assignment=assignment)
    store.root.mkdir(parents=True, exist_ok=True)
    atomic_write(store.root / MANIFEST, json.dumps(
        {"shard": [k, n], "assignment": assignment, "fingerprint": store.fingerprint,
         "ids": [sid for sid, _ in items]}, ensure_ascii=False))
    try:
        results = grade_many(items, jobs=jobs, store=store, progress=progress,
                             assignment=assignment)
    except EngineUnavailable as e:
        log.error("%s", e)
        return 1
    _summary(results, shard, store.root)
    return 0


def _summary(results: dict[str, Result], shard: str | None, root: Path) -> None:
    if not results:
        log.info("nothing to grade%s", f" in shard {shard}" if shard else "")
        return
    scores = [r.score for r in results.values()]
    failed = sorted(sid for sid, r in results.items() if (r.error or "").startswith("engine failure"))
    log.info("%d submissions%s: mean %.1f/%g, %d full marks; results in %s", len(scores),
             f" (shard {shard})" if shard else "", sum(scores) / len(scores),
             next(iter(results.values())).max_score,
             sum(r.score >= r.max_score for r in results.values()), root)
    if failed:
        log.warning("engine failures (regraded on the next run): %s", ", ".join(failed))
