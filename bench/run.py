"""Benchmark: one cold submission, a class and a cohort through the kit's commands, side by side with stock nbgrader and nbconvert."""
from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
KIT = HERE.parent
sys.path.insert(0, str(KIT))

import psutil  # noqa: E402  (comes with jupyter; the bench only)

from autograder import rubric as rubric_mod  # noqa: E402
from autograder.batch import shape_for  # noqa: E402
from cohort import STOCK_CONFIG, course_with, make_cohort, released_course  # noqa: E402

GB = 1024 ** 3
PY = sys.executable


class MemorySampler:
    """Peak PSS (and RSS) summed over every descendant of this process, sampled.

    RSS summed over processes counts pages that forked children share with a warm template
    once per process, so it overstates; PSS splits shared pages fairly and is the better
    estimate of what the machine needs. The bench process itself is left out."""

    def __init__(self, interval: float = 0.2):
        self.interval, self.peak_rss, self.peak_pss = interval, 0, 0
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
        while not self._stop.is_set():
            procs = me.children(recursive=True)
            rss = pss = 0
            for p in procs:
                try:
                    info = p.memory_full_info()
                    rss, pss = rss + info.rss, pss + info.pss
                except (psutil.Error, OSError):
                    pass            # ended between listing and reading
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self._stop.wait(self.interval)


@dataclass
class Measure:
    wall: float
    cpu: float                  # user+system of every waited-for descendant
    pss: int
    rss: int
    runs: int = 1               # commands behind these figures (a sample for the stock paths)
    notes: list[str] = field(default_factory=list)
    failures: int = 0


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


UNIFIED = Path("/sys/fs/cgroup/unified")     # cgroup2 (hybrid hosts); or /sys/fs/cgroup itself
CGROUP2 = UNIFIED if (UNIFIED / "cgroup.procs").exists() else Path("/sys/fs/cgroup")


class CpuAccount:
    """CPU time of every process a batch of commands starts, however it ends: a cgroup2 group
    they are started in (its cpu.stat counts processes that were never waited for, as a
    sandbox's jobs are not: killed with their PID namespace). Without a writable cgroup2, what
    the kernel accounts to waited-for descendants (RUSAGE_CHILDREN), which misses those."""

    def __init__(self):
        self.dir: Path | None = CGROUP2 / f"gbk-bench-{os.getpid()}-{time.monotonic_ns()}"
        try:
            self.dir.mkdir()
            (self.dir / "cpu.stat").read_text()
        except OSError:
            self.dir = None
        self.c0 = children_cpu()

    @property
    def how(self) -> str:
        return "cgroup2 cpu.stat (every process)" if self.dir else "RUSAGE_CHILDREN (waited-for processes only)"

    def wrap(self, cmd: list[str]) -> list[str]:
        if self.dir is None:
            return cmd
        return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.dir / "cgroup.procs"), *cmd]

    def seconds(self) -> float:
        if self.dir is None:
            return children_cpu() - self.c0
        for line in (self.dir / "cpu.stat").read_text().splitlines():
            if line.startswith("usage_usec "):
                return int(line.split()[1]) / 1e6
        return 0.0

    def close(self):
        if self.dir is not None:
            for _ in range(50):
                try:
                    self.dir.rmdir()
                    return
                except OSError:
                    time.sleep(0.1)


def measure(commands: list[tuple[list[str], Path, dict]], jobs: int = 1) -> tuple[Measure, list]:
    """Runs the commands `jobs` at a time; wall, CPU and peak memory of the whole batch.

    CPU counts every process the commands started (CpuAccount): on a machine shared with
    other work it is the steadier figure; wall time says as much about the neighbours as
    about the kit."""
    account = CpuAccount()

    def one(spec):
        cmd, cwd, env = spec
        return subprocess.run(account.wrap(cmd), cwd=cwd, env=env, capture_output=True, text=True)

    with MemorySampler() as mem:
        t0 = time.perf_counter()
        with ThreadPoolExecutor(jobs) as pool:
            outs = list(pool.map(one, commands))
        wall = time.perf_counter() - t0
        cpu = account.seconds()
    account.close()
    failures = sum(o.returncode != 0 for o in outs)
    return Measure(wall, cpu, mem.peak_pss, mem.peak_rss, runs=len(commands), failures=failures), outs


def kit_env(kit: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(kit), "CI": "1"}


# --- the scenarios ----------------------------------------------------------------------------
def cold(kits: dict[str, Path], notebook: Path, folder: Path, reps: int) -> dict:
    """(a): `python -m autograder grade NB --json` from cold vs `jupyter nbconvert --execute`,
    interleaved rep by rep so that both see the same neighbours."""
    jupyter = str(Path(PY).with_name("jupyter"))
    shutil.copy(notebook, folder / notebook.name)
    rows: dict[str, list[Measure]] = {}
    phases: dict[str, list[dict]] = {}
    for _ in range(reps):
        for name, kit in kits.items():
            m, outs = measure([([PY, "-m", "autograder", "grade", str(notebook), "--json"],
                                kit, kit_env(kit))])
            rows.setdefault(name, []).append(m)
            found = re.search(r"timings: (.*)", outs[0].stderr)
            if found:
                phases.setdefault(name, []).append(
                    {k: float(v[:-1]) for k, v in (x.split(" ") for x in found.group(1).split(", "))})
            if m.failures:
                print(f"  {name}: grade failed: {outs[0].stderr[-400:]}", flush=True)
        m, _ = measure([([jupyter, "nbconvert", "--to", "notebook", "--execute", "--allow-errors",
                          "--output", "out", notebook.name], folder, dict(os.environ))])
        rows.setdefault("nbconvert --execute", []).append(m)
    return {"rows": {k: _median(v) for k, v in rows.items()}, "phases": phases}


def _median(ms: list[Measure]) -> Measure:
    return Measure(wall=statistics.median(m.wall for m in ms), cpu=statistics.median(m.cpu for m in ms),
                   pss=max(m.pss for m in ms), rss=max(m.rss for m in ms), runs=len(ms),
                   failures=sum(m.failures for m in ms))


def autograde_run(kit: Path, course: Path, jobs: int) -> Measure:
    """What `make autograde` runs, in the given course folder (engine, then the nbgrader step),
    with that kit's own nbgrader_config.py (its pipeline names its own modules)."""
    shutil.copy(kit / "nbgrader_config.py", course / "nbgrader_config.py")
    m, outs = measure([([PY, "-m", "autograder", "autograde", "gradient_backward", "--jobs",
                         str(jobs)], course, kit_env(kit))])
    err = outs[0].stderr
    for pattern in (r"grading finished: .*", r"engine \d+ s, nbgrader \d+ s[^\n]*", r"nbgrader autograde: .*"):
        found = re.search(pattern, err)
        if found:
            m.notes.append(found.group(0))
    if m.failures:
        m.notes.append("FAILED: " + err[-600:])
    return m


def stock_nbconvert(sample, folder: Path, jobs: int, timeout: int) -> Measure:
    """Kernel per notebook, `jobs` at a time, as the kit runs `jobs` workers."""
    jupyter = str(Path(PY).with_name("jupyter"))
    cmds = []
    for m in sample:
        shutil.copy(m.path, folder / m.path.name)
        cmds.append(([jupyter, "nbconvert", "--to", "notebook", "--execute", "--allow-errors",
                      f"--ExecutePreprocessor.timeout={timeout}", "--output", m.path.stem + ".out",
                      m.path.name], folder, dict(os.environ)))
    return measure(cmds, jobs)[0]


def stock_nbgrader(released: Path, sample, dest: Path) -> Measure:
    """`nbgrader autograde` with its default preprocessors (Execute: a kernel per notebook),
    as it runs: one process, one student after another."""
    course = course_with(released, dest, sample)
    (course / "nbgrader_config.py").write_text(STOCK_CONFIG)
    m, outs = measure([([PY, "-m", "nbgrader", "autograde", "gradient_backward"], course,
                        {**os.environ, "PYTHONPATH": ""})])
    m.runs = len(sample)
    if m.failures:
        m.notes.append("FAILED: " + outs[0].stderr[-600:])
    return m


def _progress(what: str, m: Measure) -> None:
    """Each figure as soon as it exists: a long run cut short still says what it measured."""
    print(f"  {what}: {m.wall:.1f}s wall, {m.cpu:.1f}s CPU, {m.pss / GB:.2f} GB PSS, "
          f"{m.runs} run(s){f', {m.failures} failed' if m.failures else ''}", flush=True)


def _cpu_how() -> str:
    account = CpuAccount()
    account.close()
    return account.how


def pick_sample(members, size: int):
    """Every k-th member: the cohort is shuffled, so kinds appear in about their shares."""
    if size >= len(members):
        return list(members)
    step = len(members) / size
    return [members[int(i * step)] for i in range(size)]


# --- the table --------------------------------------------------------------------------------
def row(label: str, runner: str, m: Measure, n: int, base: float | None, *, extrapolated=False):
    scale = n / m.runs if extrapolated else 1
    wall, cpu = m.wall * scale, m.cpu * scale
    how = f"EXTRAPOLATED x{scale:g} from {m.runs}" if extrapolated else (
        f"median of {m.runs}" if m.runs > 1 and n == 1 else "measured")
    vs = f"{base / wall:.1f}x" if base else ""
    fail = f"  ({m.failures} FAILED)" if m.failures else ""
    print(f"{label:22}{runner:34}{wall:>9.1f}{cpu:>9.1f}{m.pss / GB:>9.2f}{vs:>9}  {how}{fail}")
    return wall


def header():
    print(f"{'scenario':22}{'runner':34}{'wall s':>9}{'CPU s':>9}{'PSS GB':>9}{'vs ker.':>9}  figures")
    print("-" * 110)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n1", type=int, default=40, help="(b): a class")
    p.add_argument("--n", type=int, default=300, help="(c): a cohort")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--reps", type=int, default=3, help="(a): cold runs of each, interleaved")
    p.add_argument("--sample", type=int, default=8, help="notebooks nbconvert executes")
    p.add_argument("--stock-sample", type=int, default=4, help="students stock nbgrader autogrades")
    p.add_argument("--before", default=None, help="another checkout of the kit (e.g. the last "
                   "release) to measure in the same run, side by side")
    p.add_argument("--before-scenarios", default="abc", help="which scenarios also run --before")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stock-timeout", type=int, default=30, help="nbconvert's per-cell timeout "
                   "(nbgrader's default is 30 s)")
    p.add_argument("--workdir", default=None, help="keep the courses and results here")
    p.add_argument("--only", default="abc", help="scenarios to run, e.g. 'a' or 'bc'")
    args = p.parse_args(argv)

    kits = {"kit": KIT}
    if args.before:
        kits["kit BEFORE"] = Path(args.before).resolve()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="gb-bench-"))
    t0 = time.perf_counter()
    n_max = max(args.n, args.n1)
    members = make_cohort(workdir / "submissions", n_max, seed=args.seed)
    released = released_course(workdir, KIT, PY)
    stock = workdir / "stock"
    src = rubric_mod.load("gradient_backward").source.parent
    shutil.copytree(src, stock, ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints"),
                    dirs_exist_ok=True)
    print(f"cohort: {len(members)} distinct notebooks {dict(Counter(m.kind for m in members))}, "
          f"course released, in {time.perf_counter() - t0:.0f}s; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)

    results = {}
    if "a" in args.only:
        nb = next(m for m in members if m.kind == "correct").path
        print(f"(a) cold: {args.reps} x {' / '.join(kits)} / nbconvert, interleaved ...", flush=True)
        results["a"] = cold(kits, nb, stock, args.reps)
        for name, m in results["a"]["rows"].items():
            _progress(f"(a) {name}", m)
    sample = pick_sample(members[:n_max], args.sample)
    if "b" in args.only or "c" in args.only:
        # One kernel at a time is nbgrader autograde's own floor; several at once may be slower
        # still (torch's threads in each kernel contend for the cores). The faster is the base.
        for jobs in sorted({1, args.jobs}):
            print(f"stock: nbconvert on {len(sample)} notebooks, {jobs} at a time ...", flush=True)
            results[("nbconvert", jobs)] = m = stock_nbconvert(sample, stock, jobs, args.stock_timeout)
            _progress(f"nbconvert sample, {jobs} at a time", m)
        results["nbconvert"] = min((results[("nbconvert", j)] for j in sorted({1, args.jobs})),
                                   key=lambda m: m.wall)
        print(f"stock: nbgrader autograde on {args.stock_sample} students ...", flush=True)
        results["nbgrader"] = stock_nbgrader(released, pick_sample(members, args.stock_sample),
                                             workdir / "course-stock")
        _progress("stock nbgrader sample", results["nbgrader"])
    for key, n in (("b", args.n1), ("c", args.n)):
        if key not in args.only:
            continue
        for name, kit in kits.items():
            if name != "kit" and key not in args.before_scenarios:
                continue
            print(f"({key}) {n} submissions: {name} `make autograde` ...", flush=True)
            course = course_with(released, workdir / f"course-{key}", members[:n])
            results[(key, name)] = m = autograde_run(kit, course, args.jobs)
            _progress(f"({key}) {name}", m)
            shutil.rmtree(course, ignore_errors=True)

    print()
    shapes = ", ".join(f"{'x'.join(map(str, shape_for(args.jobs, n)))} at {n}" for n in (args.n1, args.n))
    print(f"gradient_backward benchmark, --jobs {args.jobs} (the kit's workers x lanes: {shapes}), "
          f"{os.cpu_count()} cores; load average now {os.getloadavg()[0]:.1f} (the machine may be "
          "shared: compare rows of one run, and CPU s before wall s)")
    header()
    if "a" in results:
        rows = results["a"]["rows"]
        base = rows["nbconvert --execute"].wall
        for name in kits:
            row("(a) 1 cold submission", f"{name}: grade NB --json", rows[name], 1, base)
        row("", "nbconvert --execute (same NB)", rows["nbconvert --execute"], 1, base)
    for key, n in (("b", args.n1), ("c", args.n)):
        if key not in args.only:
            continue
        base = results["nbconvert"].wall * n / results["nbconvert"].runs
        label = f"({key}) {n} submissions"
        for name in kits:
            if (key, name) in results:
                row(label, f"{name}: make autograde", results[(key, name)], n, base)
                label = ""
        for jobs in sorted({1, args.jobs}):
            row(label, f"nbconvert --execute, {jobs} at once", results[("nbconvert", jobs)], n, base,
                extrapolated=True)
            label = ""
        row("", "stock nbgrader autograde", results["nbgrader"], n, base, extrapolated=True)
    print("-" * 110)
    print(f"CPU s: {_cpu_how()}.")
    print("'vs ker.': the faster nbconvert (kernel per notebook) wall time of the scenario / this "
          "row's; EXTRAPOLATED rows scale a measured sample linearly (their PSS is the sample's peak).")
    if "a" in results:
        for name, runs in results["a"]["phases"].items():
            keys = list(runs[0])
            med = {k: statistics.median(r.get(k, 0.0) for r in runs) for k in keys}
            print(f"(a) {name} phases (median s): " + ", ".join(f"{k} {v:.2f}" for k, v in med.items()))
    for key in ("b", "c"):
        for name in kits:
            m = results.get((key, name))
            if m and m.notes:
                print(f"({key}) {name}: " + "; ".join(m.notes))
    for key in ("nbconvert", "nbgrader"):
        if key in results and results[key].notes:
            print(f"{key}: " + "; ".join(results[key].notes))
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
