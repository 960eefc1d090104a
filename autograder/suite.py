"""Runs an assignment's hidden pytest suites on the trusted side against one submission's results."""
from __future__ import annotations

import base64
import contextlib
import io
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from .feedback import Mistake

MAX_ARRAY_ELEMENTS = 64 * 1024 * 1024


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


@dataclass
class PartRun:
    part: str
    cell_status: str = "not_run"   # ok | error | died | timeout | not_run
    cell_error: ErrorInfo | None = None
    stdout: str = ""               # what the part's cell and its probes printed (capped)
    static_findings: list[str] = field(default_factory=list)
    missing_cell: bool = False
    not_run_reason: str = ""


def _plain(value, limit=2000):
    if isinstance(value, bool) or isinstance(value, (int, float)):
        return value
    return str(value)[:limit]


def load_array(blob: str) -> np.ndarray | None:
    """A plain numeric array from the sandbox's bytes, or None: never unpickles anything."""
    try:
        arr = np.load(io.BytesIO(base64.b64decode(blob, validate=True)), allow_pickle=False)
    except Exception:  # noqa: BLE001 - whatever the bytes are, they are not an array we take
        return None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf" or arr.size > MAX_ARRAY_ELEMENTS:
        return None
    return arr


def parse_case(payload: dict) -> tuple[int, CaseResult] | None:
    """One case record from the sandbox, checked field by field."""
    rec = payload.get("record") if isinstance(payload, dict) else None
    if not isinstance(rec, dict) or not isinstance(rec.get("index"), int):
        return None
    files = payload.get("files") if isinstance(payload.get("files"), dict) else {}
    idx = rec["index"]
    outputs = {}
    for pos, name in enumerate(rec.get("arrays") or []):
        blob = files.get(f"case_{idx}__{pos}.npy")
        arr = load_array(blob) if isinstance(blob, str) else None
        if arr is not None:
            outputs[str(name)[:64]] = arr
    values = {str(k)[:80]: _plain(v) for k, v in (rec.get("values") or {}).items()} \
        if isinstance(rec.get("values"), dict) else {}
    err = rec.get("error")
    error = ErrorInfo(type=str(err.get("type", ""))[:80], message=str(err.get("message", ""))[:500],
                      last_line=str(err.get("last_line", ""))[:300],
                      memory=bool(err.get("memory"))) if isinstance(err, dict) else None
    status = rec.get("status") if rec.get("status") in ("ok", "error", "crashed", "timeout") else "error"
    return idx, CaseResult(
        status=status, outputs=outputs, values=values,
        missing=[str(m)[:64] for m in rec.get("missing") or [] if isinstance(m, str)],
        notes=[str(n)[:200] for n in rec.get("notes") or []][:10], error=error,
        autograd_used=bool(rec.get("autograd_used")))


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
    """Gives the suites their `student` fixture and records each test's outcome and mistake."""

    def __init__(self, student: Student, parts: list[str]):
        self._student = student
        self._parts = set(parts)
        self.outcomes: list[tuple[str, str, bool, str, str | None]] = []

    @pytest.fixture
    def student(self):
        return self._student

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
            self.outcomes.append((item.nodeid, part, report.passed, message, mistake))


class SuiteRunner:
    """pytest on one assignment folder, run in this (trusted) process once per submission."""

    def __init__(self, folder: Path, parts: list[str]):
        self.folder = Path(folder)
        self.parts = parts
        self.args = [str(self.folder), "-p", "no:cacheprovider", "-p", "no:terminal",
                     "-p", "no:randomly", "--capture=sys", "--rootdir", str(self.folder), "-o", "addopts=",
                     "-W", "ignore::DeprecationWarning"]

    def run(self, student: Student):
        plugin = _Plugin(student, self.parts)
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            code = pytest.main(self.args, plugins=[plugin])
        if code not in (0, 1) or not plugin.outcomes:
            raise RuntimeError(f"the hidden suites did not run (pytest exit {code}): "
                               f"{sink.getvalue()[-2000:]}")
        return plugin.outcomes


def ensure_importable(folder: Path):
    """The suites import their helpers (`cases`, `reference`) by plain name."""
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
