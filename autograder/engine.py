"""Grades one submission: restore, sandboxed run, hidden suites, scoring. One Engine per worker."""
from __future__ import annotations

import hashlib
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from . import lean  # noqa: F401  (before nbformat: skips what grading never uses)

import nbformat

from . import assignment as assignment_mod
from . import rubric as rubric_mod
from . import autograd_scan, scoring
from .identity import fingerprint, source_notebook  # noqa: F401  (fingerprint: kept importable here)
from .notebook import (NotebookError, Plan, parse_submission, read_submission_bytes, restore,
                       top_level_bindings)
from .sandbox import Limits, Sandbox, wire
from .suite import CaseResult, ErrorInfo, PartRun, Student, SuiteRunner, parse_case

log = logging.getLogger("autograder.engine")
PART_OUTPUT_CHARS = 4000
STUDENT_OUTPUT_CHARS = 1500


class Engine:
    """A warm sandbox plus the assignment's suites; grades submissions one at a time."""

    def __init__(self, assignment: str = "gradient_backward", *, limits: Limits | None = None,
                 level: str | None = None, many: bool = True, lanes: int = 1):
        """`many=False`: this engine grades one submission (a cold `grade`), so its sandbox
        skips what only pays off over many. `lanes`: submissions it may grade at once, one
        thread each (`grade(..., lane=i)`); `self.lanes` says how many the sandbox gave."""
        clock = _Clock()
        self.timings = clock.phases
        self.assignment = assignment
        self.rubric = rubric_mod.load(assignment)
        self.limits = limits or Limits()
        folder = self.rubric.folder
        self.source = source_notebook(assignment)
        oracles = folder / "oracles.py"
        clock.mark("source")
        # Launched first: the sandbox imports torch and warms its template on one core while
        # this (trusted) side builds the hidden inputs and collects the suites on the other.
        # It loads the inputs only when they are handed over, after its template was forked.
        self.sandbox = Sandbox(inputs=None, probes_source=(folder / "probes.py").read_text(),
                               workdir_files=list(self.rubric.sandbox_files), limits=self.limits,
                               level=level, prefix=self._locked_prefix(),
                               oracles_source=oracles.read_text() if oracles.is_file() else "",
                               oracle_parts=[p.part for p in self.rubric.parts if p.oracles],
                               many=many, lanes=lanes)
        self.lanes = len(self.sandbox.lanes)
        clock.mark("sandbox_launch")
        try:
            self.cases, self._make_inputs = assignment_mod.cases_and_inputs(folder)
            clock.mark("cases")
            self.case_wire, inputs = self._wire_cases()
            self.sandbox.provide_inputs(inputs)
            clock.mark("inputs")
            locked = [c.source for c in restore(self.source, self.source, self.rubric.part_names).cells
                      if c.origin == "source"]
            self.locked_modules = autograd_scan.locked_modules(locked)
            self.suite = SuiteRunner(folder, self.rubric.part_names)
            clock.mark("suites")
            self.sandbox.wait_ready()
            clock.mark("sandbox_wait")
        except BaseException:
            self.sandbox.close()
            raise
        self.timings["sandbox_ready_after"] = self.sandbox.timings.get("ready_after", 0.0)

    def _wire_cases(self):
        wire, inputs = {}, {}
        for index, case in enumerate(self.cases):
            names = {}
            for key, arr in self._make_inputs(case).items():
                names[key] = f"c{index}_{key}"
                inputs[names[key]] = arr
            wire.setdefault(case.part, []).append({
                "index": index, "probe": case.probe, "inputs": names,
                "peak_mb": float(getattr(case, "peak_mb", 0) or 0)})
        return wire, inputs

    def _locked_prefix(self) -> list[str]:
        """The source notebook's leading locked cells, up to the first student cell."""
        prefix = []
        for cell in restore(self.source, self.source, self.rubric.part_names).cells:
            if cell.origin != "source":
                break
            prefix.append(cell.source)
        return prefix

    @property
    def isolation(self) -> str:
        return self.sandbox.description

    # -- one submission --

    def grade(self, path: str | Path, *, read: "Submission | None" = None,
              lane: int = 0) -> scoring.Result:
        """Never raises for bad input: an unreadable file is a result with score 0.
        `read` is `read_file(path)` when the caller already read it; `lane`: which of the
        sandbox's lanes runs it (one submission per lane at a time)."""
        started = time.monotonic()
        path = Path(path)
        read = read or read_file(path)
        sha, nb = read.sha256, read.notebook
        if nb is None:
            log.warning("%s: not graded: %s", path, read.error)
            return scoring.unreadable(self.rubric, read.error, sha256=sha, isolation=self.isolation)
        plan = restore(nb, self.source, self.rubric.part_names)
        findings = self._findings(plan)
        parts_wire = self._parts_wire(plan, findings)
        box = self.sandbox.lanes[lane]
        report = box.grade(uuid.uuid4().hex[:12], self._cells_wire(plan), parts_wire)
        if report.get("status") == "sandbox_failure":
            # Never the student's result on its own: regrade on the fresh sandbox the launcher
            # started; only a repeat there counts against the submission.
            log.warning("%s: sandbox failure; regrading on a fresh sandbox", path.name)
            report = box.grade(uuid.uuid4().hex[:12], self._cells_wire(plan), parts_wire)
        static, unattributed = self._attribute(plan, parts_wire, findings)
        student, flags = self._student(plan, report, static)
        outcomes = [scoring.TestOutcome(nodeid=n, part=p, passed=ok, message=m, mistake=k, weight=w)
                    for n, p, ok, m, k, w in self.suite.run(student)]
        feedback = {p: self._feedback(p, student, outcomes, flags.get(p, []))
                    for p in self.rubric.part_names}
        result = scoring.score(self.rubric, outcomes, feedback=feedback, flags=flags,
                               isolation=self.sandbox.level, seconds=time.monotonic() - started,
                               sha256=sha, header=self._header(plan, report, unattributed))
        log.info("%s: %.2f/%.0f in %.2fs", path.name, result.score, result.max_score, result.seconds)
        return result

    def _cells_wire(self, plan: Plan) -> list[dict]:
        cells = plan.wire()
        for rp in self.rubric.parts:
            for cell in cells:
                if rp.stand_ins and cell["grade_id"] == rp.part:
                    cell["stand_ins"] = dict(rp.stand_ins)
        return cells

    def _parts_wire(self, plan: Plan, findings: dict[int, list]) -> dict:
        """Per part: its cases, where its cells end, and (when its solution cell is there)
        where they start and which names they must define themselves. A part is probed from
        the final state ("deferred", cheaper) only when no later cell rebinds its names and
        no later cell holds code the checker cannot see through; else from a snapshot taken
        right after its own cell, which later cells cannot reach."""
        unverifiable = [i for i, fs in findings.items()
                        if any(f.kind == "unverifiable" and not f.contained for f in fs)]
        isolate = any(f.kind == "unverifiable" for fs in findings.values() for f in fs)
        wire = {}
        for p in self.rubric.part_names:
            if p not in plan.part_after:
                continue
            first = next((i for i, c in enumerate(plan.cells) if c.label == p), None)
            after, defines = plan.part_after[p], list(self.rubric.get(p).defines)
            wire[p] = {"after": after, "cases": self.case_wire.get(p, []),
                       "first": None if p in plan.missing else first, "defines": defines,
                       "deferred": not _rebound_later(plan, after, defines)
                       and not any(i > after for i in unverifiable),
                       # Code the checker could not see through sits in a function: probe every
                       # part in a process of its own, so one part's calls never reach another.
                       "isolate": isolate}
        return wire

    def _findings(self, plan: Plan) -> dict[int, list[autograd_scan.Finding]]:
        """Every cell the student controls, checked exactly as the sandbox will run it."""
        out = {}
        for i, cell in enumerate(plan.cells):
            if cell.origin != "student":
                continue
            rp = self.rubric.get(cell.label) if cell.label in self.rubric.part_names else None
            found = autograd_scan.scan(
                cell.source, autograd_allowed=rp.autograd_allowed if rp else False,
                own_backward=rp.own_backward if rp else True, modules=self.locked_modules)
            if found:
                out[i] = found
        return out

    def _attribute(self, plan: Plan, parts_wire: dict,
                   findings: dict[int, list]) -> tuple[dict[str, list[autograd_scan.Finding]], list[str]]:
        """Which parts each finding costs. Autograd: the part of its own cell (an added cell:
        every by-hand part it reaches; the run-time tripwire watches the rest). Code the
        checker cannot see through: every part whose probes run from a state that holds the
        cell when it runs with the cell (it could switch the tripwire off); when it sits only
        inside functions, the parts whose code uses what that cell defines."""
        out: dict[str, list[autograd_scan.Finding]] = {p: [] for p in self.rubric.part_names}
        unattributed: list[str] = []
        for i, found in findings.items():
            cell = plan.cells[i]
            own = next((p for p, w in parts_wire.items() if cell.label == p or (
                w["first"] is not None and w["first"] <= i <= w["after"])), None)
            reached = [p for p, w in parts_wire.items() if w["deferred"] or i <= w["after"]]
            where = f"your `{cell.label}` cell" if cell.label in out else f"your cell {cell.label}"
            unverifiable = [f for f in found if f.kind == "unverifiable"]
            if unverifiable and all(f.contained for f in unverifiable):
                users = self._users(plan, parts_wire, i)
                reached_u = reached if users is None else [p for p in users if p in reached]
            else:
                reached_u = reached
            for f in found:
                if f.kind == "autograd":
                    targets = [own] if own else [p for p in reached
                                                 if not self.rubric.get(p).autograd_allowed]
                else:
                    targets = reached_u + ([own] if own and own not in reached_u else [])
                if not targets:
                    # No part's probes can run it: shown, but costs nothing.
                    unattributed.append(f"{where} {f.text}")
                for p in targets:
                    item = autograd_scan.Finding(f.kind, f"{where} {f.text}")
                    if item not in out[p]:
                        out[p].append(item)
        return out, unattributed

    def _users(self, plan: Plan, parts_wire: dict, index: int) -> list[str] | None:
        """The parts whose own cells (or probes) use a name that cell `index` defines, directly
        or through later cells that use it; None when a cell cannot be read to tell."""
        source = plan.cells[index].source
        tainted = top_level_bindings(source)
        if tainted is None:
            return None
        tainted -= autograd_scan.imported_names(source)
        touched = {index}
        for j in range(index + 1, len(plan.cells)):
            loaded = autograd_scan.names_loaded(plan.cells[j].source)
            if loaded is None:
                return None
            if loaded & tainted:
                bound = top_level_bindings(plan.cells[j].source)
                if bound is None:
                    return None
                tainted |= bound
                touched.add(j)
        users = []
        for p, w in parts_wire.items():
            span = range(w["first"], w["after"] + 1) if w["first"] is not None else range(0)
            if any(j in touched for j in span) or tainted & set(self.rubric.get(p).defines):
                users.append(p)
        return users

    def _student(self, plan: Plan, report: dict, static: dict) -> tuple[Student, dict[str, list[str]]]:
        by_index = {}
        for payload in report.get("cases", []):
            parsed = parse_case(payload)
            if parsed and 0 <= parsed[0] < len(self.cases):
                by_index[parsed[0]] = parsed[1]
        cases = {c.id: by_index.get(i, CaseResult()) for i, c in enumerate(self.cases)}
        parts = self._part_runs(plan, report, static)
        flags: dict[str, list[str]] = {}
        for p in self.rubric.part_names:
            rp, run = self.rubric.get(p), parts[p]
            mine = [cases[c.id] for c in self.cases if c.part == p]
            f = []
            if any(x.kind == "unverifiable" for x in static[p]):
                f += ["unverifiable", "manual_review"]
            if not rp.autograd_allowed and (any(x.kind == "autograd" for x in static[p]) or any(
                    r.autograd_used or any(k.endswith(".requires_grad") for k in r.values) for r in mine)):
                f.append("autograd")
            if any(r.status == "timeout" for r in mine) or run.cell_status == "timeout":
                f.append("timeout")
            if any(r.status == "crashed" for r in mine) or run.cell_status == "died":
                f.append("crashed")
            if any(r.error and r.error.memory for r in mine):
                f.append("out_of_memory")
            if run.missing_cell:
                f.append("missing_cell")
            if report.get("status") == "sandbox_failure":
                f.append("sandbox_failure")
            flags[p] = f
        return Student(cases, parts, self.limits), flags

    def _part_runs(self, plan: Plan, report: dict, static: dict) -> dict[str, PartRun]:
        cells = {c.get("index"): c for c in report.get("cells", []) if isinstance(c, dict)}
        outputs = {c.get("index"): str(c.get("text", "")) for c in report.get("cell_outputs", [])
                   if isinstance(c, dict)}
        not_run = {c.get("part"): str(c.get("reason", "")) for c in report.get("partruns", [])
                   if isinstance(c, dict) and c.get("status") == "not_run"}
        runs = {}
        for p in self.rubric.part_names:
            idx = plan.part_after.get(p)
            cell = cells.get(idx, {}) if idx is not None else {}
            err = wire.decode_error(cell.get("error"))
            runs[p] = PartRun(
                part=p, cell_status=str(cell.get("status", "not_run")),
                cell_error=ErrorInfo(type=err["type"], message=err["message"],
                                     last_line=err["last_line"]) if err else None,
                # Only what the cells printed: nothing printed while hidden inputs were out
                # (the probes) reaches the student.
                stdout=outputs.get(idx, "")[:8000],
                static_findings=[f.text for f in static[p]],
                unverifiable=[f.text for f in static[p] if f.kind == "unverifiable"],
                source=next((c.source for c in plan.cells if c.label == p), ""),
                missing_cell=p in plan.missing, not_run_reason=not_run.get(p, ""),
                stand_ins=[str(n)[:40] for n in cell.get("stand_ins") or []][:5])
        return runs

    def _feedback(self, part, student: Student, outcomes, flags) -> str:
        """One or two plain sentences per problem, the student's own output last, capped."""
        run = student.part(part)
        mine = [o for o in outcomes if o.part == part]
        passed = sum(o.passed for o in mine)
        lines = []
        if "unverifiable" in flags:
            lines.append("Score 0 for now, marked for manual review: the grader cannot verify "
                         "this part because " + "; ".join(run.unverifiable) + ". Your instructor "
                         "can give the points back after reading it; to be graded automatically, "
                         "remove that code.")
        elif "autograd" in flags:
            found = "; ".join(f for f in run.static_findings if f not in run.unverifiable)
            lines.append("Score 0: this part must be done by hand with the chain rule, " + (
                f"without autograd: {found}." if found else
                "but autograd was called while your code ran."))
        if run.missing_cell:
            lines.append(f"Your notebook has no `{part}` solution cell (deleted, or its metadata "
                         "changed); graded what your other cells defined.")
        if run.stand_ins:
            names = ", ".join(f"`{n}`" for n in run.stand_ins)
            lines.append(f"No earlier cell of yours defined {names}, so this part was graded "
                         "with the kit's stand-in for it (fix the earlier part for that one).")
        if run.cell_error and run.cell_status != "ok":
            lines.append(f"Your cell for this part failed: {run.cell_error.describe()}")
        lines.append(f"{passed}/{len(mine)} hidden checks passed.")
        lines += _failure_lines(mine)
        if run.stdout.strip():
            shown = run.stdout.strip()[:STUDENT_OUTPUT_CHARS]
            more = " [cut]" if len(run.stdout.strip()) > STUDENT_OUTPUT_CHARS else ""
            lines.append(f"Your code printed (shown as is, not used for grading):\n{shown}{more}")
        return "\n".join(lines)[:PART_OUTPUT_CHARS]

    def _header(self, plan: Plan, report: dict, unattributed: list[str]) -> str:
        lines = [f"Isolation: {self.sandbox.description}."]
        if self.sandbox.level != "bwrap":
            lines.append("WARNING: graded with weakened isolation (see above).")
        if report.get("status") == "timeout":
            lines.append("The whole submission ran out of time; parts not reached score 0.")
        if report.get("status") == "sandbox_failure":
            lines.append("The sandbox failed while grading this submission; please report it.")
        ignored, refused = report.get("ignored_messages"), report.get("refused_oracle_calls")
        if isinstance(ignored, int) and ignored > 0:
            lines.append(f"Note for the instructor: the sandbox ignored {ignored} message(s) from "
                         "this submission's code that answered no question it asked.")
        if isinstance(refused, int) and refused > 0:
            lines.append(f"Note for the instructor: the sandbox refused {refused} request(s) for "
                         "reference steps outside the part that may use them.")
        lines += plan.notes
        if unattributed:
            lines.append("Note: " + "; ".join(unattributed)[:600] + " (it reaches no graded "
                         "part, so it costs nothing).")
        return "\n".join(lines)

    def close(self):
        self.suite.close()
        self.sandbox.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Clock:
    """Seconds spent in each start-up phase, for `grade`'s breakdown and `make bench`."""

    def __init__(self):
        self.phases: dict[str, float] = {}
        self._last = time.monotonic()

    def mark(self, phase: str):
        now = time.monotonic()
        self.phases[phase] = round(now - self._last, 3)
        self._last = now


def _rebound_later(plan: Plan, after: int, names: list[str]) -> bool:
    """Does a cell after `after` bind one of `names`? If not, the part can be probed at the
    end of the run (cheaper) instead of right after its own cell, with the same result."""
    for cell in plan.cells[after + 1:]:
        bound = top_level_bindings(cell.source)
        if bound is None or bound & set(names):
            return True
    return False


def _failure_lines(outcomes, limit: int = 3) -> list[str]:
    """One line per kind of failure (per mistake id, else per message), with a count."""
    groups: dict[str, list[str]] = {}
    for o in outcomes:
        if not o.passed and o.message:
            groups.setdefault(o.mistake or o.message, []).append(o.message)
    lines = []
    for messages in list(groups.values())[:limit]:
        more = f" (and {len(messages) - 1} more inputs like it)" if len(messages) > 1 else ""
        lines.append(f"- {messages[0]}{more}")
    if len(groups) > limit:
        lines.append(f"- ... and {len(groups) - limit} more kinds of failure.")
    return lines


@dataclass(frozen=True)
class Submission:
    """A submission file as read from disk: its hash, and its notebook or why there is none."""
    sha256: str
    notebook: object | None
    error: str = ""


def read_file(path: str | Path) -> Submission:
    """Reads and parses a submission; never raises for bad input."""
    path, sha = Path(path), ""
    try:
        raw = read_submission_bytes(path)  # a regular file, never through a symlink
        sha = hashlib.sha256(raw).hexdigest()
        return Submission(sha, parse_submission(raw))
    except NotebookError as exc:
        return Submission(sha, None, str(exc))


def grade_notebook(path, assignment: str = "gradient_backward", *, timings: dict | None = None,
                   deliver=None, **kw) -> scoring.Result:
    """Grade one file with a fresh engine (a batch should keep one Engine instead). The file
    is read first: one that is not a readable notebook never starts an engine. `deliver(result)`
    is called before the engine is closed (a CLI prints without waiting for the shutdown);
    `timings`, when given, receives the seconds of each phase."""
    clock = _Clock()
    path = Path(path)
    read = read_file(path)
    clock.mark("read")
    if read.notebook is None:
        log.warning("%s: not graded: %s", path, read.error)
        result = scoring.unreadable(rubric_mod.load(assignment), read.error, sha256=read.sha256,
                                    isolation="none: the file was not run")
        if deliver:
            deliver(result)
    else:
        engine = Engine(assignment, many=False, **kw)
        try:
            clock.phases.update(engine.timings)
            clock.mark("engine_start")
            result = engine.grade(path, read=read)
            clock.mark("grade")
            if deliver:
                deliver(result)
                clock.mark("deliver")
        finally:
            engine.close()
            clock.mark("close")
    if timings is not None:
        timings.update(clock.phases)
    return result
