"""Benchmark: a synthetic cohort graded by the kit and by stock kernel-per-notebook execution."""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))      # the kit, also for the spawned workers

import psutil  # noqa: E402  (comes with jupyter; the bench only)

from autograder import rubric as rubric_mod  # noqa: E402
from autograder.batch import grade_many, key_of  # noqa: E402
from autograder.store import ResultStore  # noqa: E402
from cohort import make_cohort  # noqa: E402

GB = 1024 ** 3


class MemorySampler:
    """Peak memory of this process and all its descendants (sandboxes included), sampled.

    RSS summed over processes counts pages that forked children share with the warm
    template once per process, so it overstates; PSS splits shared pages fairly and is
    the better estimate of what the machine actually needs. Both are reported.
    """

    def __init__(self, interval: float = 0.25):
        self.interval, self.peak_rss, self.peak_pss, self.cpu = interval, 0, 0, 0.0
        self.own_cpu = 0.0        # the sampler's CPU, left out of the measured CPU time
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        me = psutil.Process()
        tick = 0
        while not self._stop.is_set():
            procs = [me] + me.children(recursive=True)
            self.peak_rss = max(self.peak_rss, _sum(procs, lambda p: p.memory_info().rss))
            if tick % 4 == 0:   # PSS reads smaps: dearer, so once a second
                self.peak_pss = max(self.peak_pss, _sum(procs, lambda p: p.memory_full_info().pss))
            tick += 1
            self.own_cpu = time.thread_time()
            self._stop.wait(self.interval)


def _sum(procs, measure) -> int:
    total = 0
    for p in procs:
        try:
            total += measure(p)
        except (psutil.Error, OSError):
            pass            # the process ended between listing and reading
    return total


def cpu_seconds() -> float:
    """User+system CPU of this process and every child it has waited for (and theirs).

    On a machine shared with other work, wall time says as much about the neighbours as
    about the kit; CPU time of the tree does not, so it is reported next to it. It counts a
    sandbox only because the engine ends its template gracefully (bwrap reaps it); a template
    killed instead would be reaped outside the tree and its CPU left out.
    """
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def run_kit(members, jobs: int, workdir: Path, progress: str):
    store = ResultStore(workdir / "results")
    items = [(m.id, m.path) for m in members]
    with MemorySampler() as mem:
        c0, t0 = cpu_seconds(), time.perf_counter()
        results = grade_many(items, jobs=jobs, store=store, progress=progress)
        wall = time.perf_counter() - t0
        mem.cpu = cpu_seconds() - c0 - mem.own_cpu
    return results, wall, mem


def stock_folder(workdir: Path, assignment: str) -> Path:
    """What nbgrader autograde gives a notebook: the assignment's files next to it."""
    folder = workdir / "stock"
    src = rubric_mod.load(assignment).source.parent
    shutil.copytree(src, folder, ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints"),
                    dirs_exist_ok=True)
    return folder


def run_stock(sample, jobs: int, workdir: Path, assignment: str, timeout: int):
    folder = stock_folder(workdir, assignment)
    jupyter = Path(sys.executable).with_name("jupyter")

    def execute(member):
        nb = folder / member.path.name
        shutil.copy(member.path, nb)
        t0 = time.perf_counter()
        proc = subprocess.run(
            [str(jupyter), "nbconvert", "--to", "notebook", "--execute", "--allow-errors",
             f"--ExecutePreprocessor.timeout={timeout}", "--output", nb.stem + ".out",
             str(nb)], cwd=folder, capture_output=True, text=True)
        lines = [ln for ln in proc.stderr.strip().splitlines() if "Error" in ln]
        return member, time.perf_counter() - t0, proc.returncode, (lines or [""])[-1][:200]

    with MemorySampler() as mem:
        c0, t0 = cpu_seconds(), time.perf_counter()
        with ThreadPoolExecutor(jobs) as pool:     # same parallelism as the kit: a fair fight
            runs = list(pool.map(execute, sample))
        wall = time.perf_counter() - t0
        mem.cpu = cpu_seconds() - c0 - mem.own_cpu
    return runs, wall, mem


def pick_sample(members, size: int):
    """Every k-th member: the cohort is shuffled, so kinds appear in about their shares."""
    if size >= len(members):
        return list(members)
    step = len(members) / size
    return [members[int(i * step)] for i in range(size)]


def report(members, results, kit_wall, kit_mem, stock, n, jobs, timeout_note) -> None:
    runs, stock_wall, stock_mem = stock
    kinds = {m.id: m.kind for m in members}
    stock_per = stock_wall / len(runs)
    stock_total = stock_per * n
    kit_per = kit_wall / n
    print()
    print(f"gradient_backward benchmark: {n} submissions, {jobs} workers, "
          f"{os.cpu_count()} cores on this machine")
    print(f"{'':28}{'kit (grade_many)':>22}{'stock (nbconvert --execute)':>32}")
    print(f"{'submissions run':28}{n:>22}{f'{len(runs)} (sample of {n})':>32}")
    print(f"{'wall time, whole cohort':28}{kit_wall:>21.1f}s{f'{stock_total:.1f}s (extrapolated)':>32}")
    print(f"{'wall time per submission':28}{kit_per:>21.3f}s{stock_per:>31.3f}s")
    print(f"{'CPU s per submission':28}{kit_mem.cpu / n:>21.3f}s{stock_mem.cpu / len(runs):>31.3f}s")
    print(f"{'idle-machine estimate':28}{kit_mem.cpu / jobs:>21.1f}s"
          f"{f'{stock_mem.cpu / len(runs) * n / jobs:.1f}s':>32}")
    print(f"{'peak memory, RSS sum':28}{kit_mem.peak_rss / GB:>19.2f} GB{stock_mem.peak_rss / GB:>29.2f} GB")
    print(f"{'peak memory, PSS sum':28}{kit_mem.peak_pss / GB:>19.2f} GB{stock_mem.peak_pss / GB:>29.2f} GB")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
          "(the idle-machine estimate is CPU time / workers: what the wall time would be alone)")
    print(f"speedup: {stock_total / kit_wall:.1f}x wall, "
          f"{stock_mem.cpu / len(runs) / (kit_mem.cpu / n):.1f}x CPU  (the stock time is EXTRAPOLATED from "
          f"{len(runs)} notebooks run {jobs} at a time: {stock_wall:.1f}s / {len(runs)} x {n})")
    print()
    by_kind = defaultdict(list)
    for sid, r in results.items():
        by_kind[kinds[sid]].append(r)
    print(f"{'kind':10}{'count':>7}{'mean score':>12}{'engine s p50':>14}{'p95':>8}{'max':>8}")
    for kind, rs in sorted(by_kind.items()):
        secs = sorted(r.seconds for r in rs)
        print(f"{kind:10}{len(rs):>7}{statistics.mean(r.score for r in rs):>12.1f}"
              f"{secs[(len(secs) - 1) // 2]:>14.2f}{secs[round(0.95 * (len(secs) - 1))]:>8.2f}"
              f"{secs[-1]:>8.2f}")
    engine_sum = sum(r.seconds for r in results.values())
    print(f"engine time summed over submissions: {engine_sum:.1f}s "
          f"(= {engine_sum / jobs:.1f}s per worker; the rest of the wall time is startup and driver)")
    failures = [sid for sid, r in results.items() if (r.error or "").startswith("engine failure")]
    print(f"engine failures: {len(failures)}  isolation: {Counter(r.isolation for r in results.values())}")
    bad = [(m.id, rc, err) for m, _, rc, err in runs if rc != 0]
    if bad:
        print(f"stock runs stopped by an error nbconvert does not allow (a cell over the "
              f"{timeout_note} timeout is one): {len(bad)} of {len(runs)}, e.g. {bad[0][0]}: "
              f"{bad[0][2]}; their time counts only up to that point, so the stock time is low")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=300, help="submissions in the synthetic cohort")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--sample", type=int, default=12, help="notebooks the stock path executes")
    p.add_argument("--hangs", type=int, default=0, help="submissions with an endless loop")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stock-timeout", type=int, default=30, help="nbconvert's per-cell timeout "
                   "(nbgrader's default is 30 s)")
    p.add_argument("--workdir", default=None, help="keep the cohort and results here")
    p.add_argument("--progress", choices=["auto", "on", "off"], default="auto")
    p.add_argument("--assignment", default="gradient_backward")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="gb-bench-"))
    shutil.rmtree(workdir / "results", ignore_errors=True)   # a benchmark grades from scratch
    t0 = time.perf_counter()
    members = make_cohort(workdir / "submissions", args.n, seed=args.seed, hangs=args.hangs,
                          assignment=args.assignment)
    store = ResultStore(workdir / "results")
    keys = {key_of(m.path, store.fingerprint) for m in members}
    print(f"cohort: {len(members)} notebooks, {len(keys)} distinct submission keys, "
          f"{dict(Counter(m.kind for m in members))}, built in {time.perf_counter() - t0:.1f}s",
          flush=True)

    results, kit_wall, kit_mem = run_kit(members, args.jobs, workdir, args.progress)
    sample = pick_sample(members, args.sample)
    print(f"stock path: executing {len(sample)} of the notebooks with nbconvert ...", flush=True)
    stock = run_stock(sample, args.jobs, workdir, args.assignment, args.stock_timeout)
    report(members, results, kit_wall, kit_mem, stock, args.n, args.jobs,
           f"{args.stock_timeout} s per cell")
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
