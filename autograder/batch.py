"""Grades a cohort: one warm Engine per worker process, results saved as they come, resumable, shardable."""
from __future__ import annotations

import gc
import hashlib
import json
import logging
import multiprocessing as mp
import os
import signal
import stat
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path

from . import rubric as rubric_mod
from .identity import key_of
from .progress import Progress
from .safe_files import atomic_write, id_problem, shown
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
# From this many submissions to grade on, N >= 2 cores get N + 1 workers: a submission that
# sleeps or waits (a student's time.sleep, the supervisor and the host answering each other)
# leaves its core idle, and the extra worker takes that core. On 2 cores, 300 bench
# submissions: 60.0-61.1 s -> 51.3-52.4 s for the same CPU; at 100, 16.9-21.3 -> 17.2-17.9 s;
# at 40 the extra worker's start (about 2 CPU s) is not repaid (11.1-11.6 -> 10.5-12.9 s).
EXTRA_WORKER_FROM = 100


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


def _worker(assignment: str, conn: Connection, many: bool = True) -> None:
    """Owns one Engine for its whole life and grades one submission at a time."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the driver's to handle
    try:
        from .engine import Engine
        engine = Engine(assignment, many=many)
        engine.__enter__()
        # This process lives for the engine: what it holds now (torch, the suites, the cases)
        # stays to the end, so the collector need not walk it after every submission.
        gc.collect()
        gc.freeze()
    except BaseException as e:  # noqa: BLE001 - reported to the driver, which stops the run
        conn.send(("fatal", f"{type(e).__name__}: {e}"))
        return
    try:
        conn.send(("ready",))
        while True:
            try:
                task = conn.recv()
            except EOFError:
                return
            if task is None:
                return
            sid, path = task
            try:
                result = engine.grade(Path(path))
            except Exception:  # noqa: BLE001 - an engine bug: report, then let a fresh worker retry
                conn.send(("crash", sid, traceback.format_exc(limit=5)))
                return
            conn.send(("done", sid, result.to_json()))
    finally:
        engine.__exit__(None, None, None)


# --- the driver -------------------------------------------------------------------------
@dataclass
class _Slot:
    proc: mp.process.BaseProcess
    conn: Connection
    born: float = field(default_factory=time.monotonic)
    ready: bool = False
    task: tuple[str, str] | None = None
    since: float = 0.0


@dataclass
class _Plan:
    """What is left to do: one grading per distinct key, fanned out to every id that has it."""
    queue: deque = field(default_factory=deque)            # (grading id, path)
    ids_by_key: dict[str, list[str]] = field(default_factory=dict)
    key_of_id: dict[str, str] = field(default_factory=dict)


def _plan(items, store: ResultStore, results: dict[str, Result]) -> _Plan:
    plan = _Plan()
    fp = store.fingerprint
    for sid, path in items:
        key = key_of(path, fp, store.assignment)
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
    return plan


def engine_failure(assignment: str, reason: str) -> Result:
    """Score 0 for every part with the reason, through the one scoring function."""
    rub = rubric_mod.load(assignment)
    text = f"Not graded: the grading engine failed on this submission ({reason})."
    res = score(rub, [], feedback={p: text for p in rub.part_names},
                flags={p: ["engine_failure"] for p in rub.part_names}, isolation="none",
                header="This submission could not be graded because the grading engine failed; "
                       "it was tried twice. Ask your instructor to regrade it.")
    return res.replace(error=f"engine failure: {reason}")


def workers_for(jobs: int, to_grade: int) -> int:
    """Worker processes for `jobs` cores and `to_grade` submissions (EXTRA_WORKER_FROM).
    One core stays one worker: `--jobs 1` grades strictly one submission at a time."""
    return jobs + 1 if jobs >= 2 and to_grade >= EXTRA_WORKER_FROM else jobs


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


class _Driver:
    def __init__(self, plan: _Plan, *, jobs: int, store: ResultStore, assignment: str,
                 progress: Progress, results: dict[str, Result], task_timeout: float,
                 context: str):
        self.plan, self.jobs, self.store, self.assignment = plan, jobs, store, assignment
        self.progress, self.results, self.task_timeout = progress, results, task_timeout
        self.ctx = mp.get_context(context)
        self.slots: list[_Slot] = []
        self.attempts: dict[str, int] = {}
        self.deaths_before_ready = 0

    def spawn_ahead(self, expected: int) -> None:
        """Starts the workers `expected` submissions need, before the plan exists."""
        for _ in range(min(self.jobs, expected)):
            self._spawn(expected)

    def run(self) -> None:
        try:
            for _ in range(min(self.jobs, len(self.plan.queue)) - len(self.slots)):
                self._spawn()
            while self.plan.queue or any(s.task for s in self.slots):
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
        proc = self.ctx.Process(target=_worker, args=(self.assignment, child, many), daemon=True,
                                name=f"grader-{len(self.slots)}")
        proc.start()
        child.close()
        self.slots.append(_Slot(proc, parent))

    def _dispatch(self) -> None:
        for slot in self.slots:
            if slot.ready and slot.task is None and self.plan.queue:
                slot.task = self.plan.queue.popleft()
                slot.since = time.monotonic()
                slot.conn.send(slot.task)

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
            self.deaths_before_ready = 0
        elif kind == "fatal":
            raise EngineUnavailable(f"the grading engine cannot start: {msg[1]}")
        elif kind == "done":
            slot.task = None
            self._finish(msg[1], Result.from_json(msg[2]))
        elif kind == "crash":
            log.debug("engine error on %s:\n%s", msg[1], msg[2])
            last = msg[2].strip().splitlines()[-1] if msg[2].strip() else "unknown error"
            self._bury(slot, f"engine error: {last}")

    def _watchdog(self) -> None:
        now = time.monotonic()
        for slot in list(self.slots):
            if slot.task and now - slot.since > self.task_timeout:
                slot.proc.kill()
                slot.proc.join()
                self._bury(slot, f"no answer within {self.task_timeout:.0f}s")
            elif not slot.ready and now - slot.born > STARTUP_TIMEOUT:
                raise EngineUnavailable(f"a worker did not start within {STARTUP_TIMEOUT:.0f}s")

    def _bury(self, slot: _Slot, reason: str) -> None:
        """Replace a dead worker; its submission is retried once, then recorded as failed."""
        self.slots.remove(slot)
        if slot.proc.is_alive():
            slot.proc.kill()
        slot.proc.join()
        slot.conn.close()
        if not slot.ready:
            self.deaths_before_ready += 1
            if self.deaths_before_ready > 2 * self.jobs + 1:
                raise EngineUnavailable(f"workers keep dying before they are ready ({reason})")
        if slot.task is not None:
            sid, path = slot.task
            self.attempts[sid] = self.attempts.get(sid, 0) + 1
            if self.attempts[sid] < ATTEMPTS:
                self.progress.note(f"{sid}: {reason}; retrying on a fresh worker")
                self.plan.queue.appendleft(slot.task)
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
    """Grade every (id, notebook) on `jobs` cores (workers_for: one warm worker per core, one
    more for a large cohort); skip what the store already holds.

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
    driver = _Driver(_Plan(), jobs=workers_for(cores, ahead), store=store, assignment=assignment,
                     progress=None, results=results, task_timeout=task_timeout, context=context)
    try:
        driver.spawn_ahead(ahead)
        plan = _plan(items, store, results)
        bar = Progress(len(items), mode=progress, done=len(results))
        try:
            if plan.queue:
                driver.jobs = workers_for(cores, len(plan.queue))
                log.info("%d to grade on %d worker%s", len(plan.queue), driver.jobs,
                         "s" * (driver.jobs > 1))
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
