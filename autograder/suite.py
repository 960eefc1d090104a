"""Runs an assignment's hidden pytest suites on the trusted side against one submission's results."""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from _pytest.runner import runtestprotocol

from . import assignment
from .feedback import Mistake
from .sandbox import wire


@dataclass
class ErrorInfo:
    type: str = ""
    message: str = ""
    last_line: str = ""
    memory: bool = False

    def describe(self) -> str:
        where = f" ({self.last_line})" if self.last_line else ""
        return f"{self.type}: {self.message}{where}" if self.message else f"{self.type}{where}"


@dataclass
class CaseResult:
    status: str = "not_run"        # ok | error | crashed | timeout | not_run
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    values: dict = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: ErrorInfo | None = None
    autograd_used: bool = False
    peak_mb: float | None = None   # measured by the supervisor, for cases with a memory bound


@dataclass
class PartRun:
    part: str
    cell_status: str = "not_run"   # ok | error | died | timeout | not_run
    cell_error: ErrorInfo | None = None
    stdout: str = ""               # what the part's cell and its probes printed (capped)
    static_findings: list[str] = field(default_factory=list)
    unverifiable: list[str] = field(default_factory=list)  # findings the checker can't see through
    source: str = ""               # the part's own solution cell, as it ran (for rules on the code)
    missing_cell: bool = False
    not_run_reason: str = ""
    stand_ins: list[str] = field(default_factory=list)  # earlier parts' names the kit supplied


def parse_case(payload: dict) -> tuple[int, CaseResult] | None:
    """One case record from the sandbox, checked field by field (`wire.decode_case`)."""
    rec = wire.decode_case(payload)
    if rec is None:
        return None
    err = rec["error"]
    return rec["index"], CaseResult(
        status=rec["status"], outputs=rec["outputs"], values=rec["values"], missing=rec["missing"],
        notes=rec["notes"], error=ErrorInfo(**err) if err else None,
        autograd_used=rec["autograd_used"], peak_mb=rec["peak_mb"])


class Student:
    """What one submission did, as the hidden tests see it (the `student` fixture)."""

    def __init__(self, cases_by_id: dict[str, CaseResult], parts: dict[str, PartRun], limits=None):
        self._cases = cases_by_id
        self._parts = parts
        self.limits = limits

    def result(self, case) -> CaseResult:
        return self._cases.get(case.id, CaseResult())

    def part(self, part: str) -> PartRun:
        return self._parts.get(part, PartRun(part=part))

    def require_ok(self, case) -> CaseResult:
        """The case's result, or a failed test that says plainly why there is none."""
        r = self.result(case)
        if r.status == "ok":
            return r
        run = self.part(case.part)
        if r.status == "timeout":
            raise Mistake("timeout", f"Your code did not finish in time on a {case.name} input "
                                     "(an infinite loop, or far too slow).")
        if r.status == "crashed":
            raise Mistake("crash", "The process running your code died on a "
                                   f"{case.name} input (sys.exit/os._exit, a crash, or a memory limit).")
        if r.status == "error" and r.error:
            if r.error.memory:
                raise Mistake("out_of_memory", "Your code ran out of memory on a "
                                               f"{case.name} input: {r.error.describe()}")
            if r.error.type == "NotImplementedError":
                raise Mistake("not_implemented", "This part is not written yet "
                                                 f"(NotImplementedError: {r.error.message}).")
            raise Mistake("exception", f"Your code raised {r.error.describe()}")
        reason = run.not_run_reason or (run.cell_error.describe() if run.cell_error else "")
        raise Mistake("cell_failed", "This part could not be tested"
                                     + (f": {reason}" if reason else "."))


class _Plugin:
    """Gives the suites their `student` fixture, records each test's outcome and mistake, and
    keeps one pytest session alive: collection happens once per worker, then every submission
    re-runs the same collected tests (as pytest-rerunfailures re-runs an item)."""

    def __init__(self, parts: list[str]):
        self._parts = set(parts)
        self.current: Student | None = None
        self.outcomes: list[tuple[str, str, bool, str, str | None, float]] = []
        self.requests: queue.Queue = queue.Queue()
        self.replies: queue.Queue = queue.Queue()
        self.loaded: list[str] = []   # the session's plugins, by name

    @pytest.fixture
    def student(self):
        return self.current

    def pytest_configure(self, config):
        # Failures are read off the exception itself (pytest_runtest_makereport below); pytest's
        # own long report of each failure re-parses the suite's source and was most of a warm
        # submission's time here. A plain traceback is kept for anyone reading a report.
        config.option.tbstyle = "native"
        self.loaded = sorted(name for name, _ in config.pluginmanager.list_name_plugin() if name)
        for part in sorted(self._parts):
            config.addinivalue_line("markers", f"{part}: hidden tests of the part '{part}'")

    @pytest.hookimpl(tryfirst=True)
    def pytest_pycollect_makemodule(self, module_path, parent):
        # The suites load as modules of their assignment's own package (relative imports of
        # their helpers, no sys.path entry, no clash with another assignment's suites).
        return _SuiteModule.from_parent(parent, path=module_path)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session):
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            self.replies.put(RuntimeError(f"the hidden suites failed to collect "
                                          f"({session.testsfailed} errors)"))
            return True
        self.replies.put(len(session.items))  # collected: ready for submissions
        while (student := self.requests.get()) is not None:
            self.current, self.outcomes = student, []
            try:
                items = session.items
                for i, item in enumerate(items):
                    item._initrequest()  # a fresh fixture request, as for a rerun
                    runtestprotocol(item, log=False, nextitem=items[i + 1] if i + 1 < len(items) else None)
                self.replies.put(list(self.outcomes))
            except BaseException as exc:  # noqa: BLE001 - reported to the grading thread
                self.replies.put(exc)
        return True

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        if report.when == "call" or (report.when == "setup" and report.failed):
            part = next((m.name for m in item.iter_markers() if m.name in self._parts), None)
            if part is None:
                return
            message, mistake = "", None
            if report.failed and call.excinfo is not None:
                exc = call.excinfo.value
                if isinstance(exc, Mistake):
                    message, mistake = exc.message, exc.id
                elif isinstance(exc, AssertionError):
                    message = str(exc).split("\nassert ")[0].strip() or "a check failed"
                else:
                    message = f"the checker could not read your result ({type(exc).__name__})"
            case = getattr(item, "callspec", None) and item.callspec.params.get("case")
            weight = float(getattr(case, "weight", 1.0) or 1.0)
            self.outcomes.append((item.nodeid, part, report.passed, message, mistake, weight))


class _SuiteModule(pytest.Module):
    """A hidden-suite file, imported by path under its assignment's package name."""

    def _getobj(self):
        try:
            return assignment.load(self.path.parent, self.path.stem)
        except Exception as exc:  # noqa: BLE001 - a broken suite is a collection error
            raise self.CollectError(f"{self.path.name} could not be imported: {exc!r}") from exc


class SuiteRunner:
    """One long-lived pytest session on an assignment folder, in this (trusted) process.

    pytest runs in a helper thread that waits for submissions; `run()` hands it one and
    waits for the outcomes, so each submission pays for its tests, not for collection."""

    def __init__(self, folder: Path, parts: list[str]):
        self.folder = Path(folder)
        self.plugin = _Plugin(parts)
        # Only pytest's own plugins and this one: whatever else the environment installs
        # (xdist, anyio...) the suites never use, and finding and loading it through the
        # packages' entry points was most of the session's start (0.4 s of CPU, now 0.1). No
        # conftest.py above the assignment folder either (a course's, or the kit's own tests/).
        self.args = [str(self.folder), "--disable-plugin-autoload", "-p", "no:cacheprovider",
                     "-p", "no:terminal", "-p", "no:faulthandler", "--capture=no",
                     "--rootdir", str(self.folder), "--confcutdir", str(self.folder),
                     "-o", "addopts=", "--import-mode=importlib",
                     "-W", "ignore::DeprecationWarning", "-p", "no:logging"]
        self.lock = threading.Lock()  # one submission at a time through the one session
        self.thread = threading.Thread(target=self._main, name="hidden-suites", daemon=True)
        self.thread.start()
        ready = self.plugin.replies.get()
        if isinstance(ready, BaseException) or not ready:
            raise RuntimeError(f"the hidden suites did not start: {ready}")

    def _main(self):
        # No redirect_stdout here: it is process-wide and would swallow the caller's output.
        # The terminal plugin is off, so pytest itself prints nothing.
        try:
            code = pytest.main(self.args, plugins=[self.plugin])
        except BaseException as exc:  # noqa: BLE001
            code = exc
        self.plugin.replies.put(RuntimeError(f"pytest ended (exit {code})"))

    def run(self, student: Student):
        if not self.thread.is_alive():
            raise RuntimeError("the hidden-suite session is not running")
        with self.lock:
            self.plugin.requests.put(student)
            reply = self.plugin.replies.get()
        if isinstance(reply, BaseException):
            raise RuntimeError(f"the hidden suites failed: {reply!r}") from reply
        if not reply:
            raise RuntimeError("the hidden suites ran no test")
        return reply

    def close(self):
        if self.thread.is_alive():
            self.plugin.requests.put(None)
            self.thread.join(timeout=30)

