"""Cohort report: one self-contained HTML page from gradebook.db and the results store."""
from __future__ import annotations

import base64
import datetime as dt
import html
import io
import logging
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from . import diagnose
from . import gradebook as gradebook_db
from . import rubric as rubric_mod
from .rubric import Rubric
from .scoring import Result
from .store import ResultStore, results_dir

log = logging.getLogger(__name__)

# flags that mean a person should look at the submission, with the words the page uses
ATTENTION = {
    "crashed": "crashed", "timeout": "timed out", "autograd": "suspected autograd use",
    "unreadable": "unreadable notebook", "engine_failure": "grader failure",
}


@dataclass
class Student:
    """One student's row of the report, merged from the gradebook and the results store."""
    id: str
    scores: dict[str, float] = field(default_factory=dict)   # part -> score
    mistakes: dict[str, list[str]] = field(default_factory=dict)
    flags: dict[str, list[str]] = field(default_factory=dict)
    seconds: float | None = None
    error: str | None = None
    engine_failure: bool = False

    @property
    def total(self) -> float:
        return round(sum(self.scores.values()), 2)

    def attention(self, autograd_allowed: frozenset[str] = frozenset()) -> list[str]:
        """Why someone should look at this submission (empty when nothing stands out)."""
        found = []
        for part, flags in self.flags.items():
            found += [f"{ATTENTION[f]} ({part})" for f in flags if f in ATTENTION and f != "unreadable"
                      and not (f == "autograd" and part in autograd_allowed)]
        if self.error or any("unreadable" in f for f in self.flags.values()):
            found.insert(0, ATTENTION["unreadable"] + (f": {self.error}" if self.error else ""))
        if self.engine_failure:
            found.insert(0, ATTENTION["engine_failure"])
        return found


# --- reading ---------------------------------------------------------------------------
def read_gradebook(db: Path, rubric: Rubric) -> dict[str, dict[str, float]]:
    """student -> part -> score, as nbgrader counts it (gradebook.cell_score; no score yet is 0)."""
    by_cell = {p.test_cell: p.part for p in rubric.parts}
    return {student: {by_cell[cell]: score or 0.0 for cell, score in cells.items() if cell in by_cell}
            for student, cells in gradebook_db.scores(db, rubric.name).items()}


def read_results(folder: Path) -> list[tuple[str, Result, bool]]:
    """(submission id, Result, engine_failure) for every readable record, whatever its kit version."""
    if not folder.is_dir():
        return []
    store = ResultStore(folder, fingerprint="report-reads-any")
    return [(rec.id, rec.result, rec.engine_failure) for rec in store.records()]


def read_catalogue(folder: Path) -> dict[str, str]:
    """mistake id -> title (or message) from catalogue.toml, wherever in the file the entry sits."""
    try:
        data = diagnose.catalogue_data(folder)
    except FileNotFoundError:
        return {}
    titles: dict[str, str] = {}

    def walk(keys: tuple[str, ...], node) -> None:
        if isinstance(node, dict):
            label = node.get("title") or node.get("message")
            if isinstance(label, str) and keys:
                label = label.strip().splitlines()[0]
                # `[mse_grad.missing_factor_2]` nests in TOML: the id may be the path or the leaf
                ids = [node["id"]] if isinstance(node.get("id"), str) else [".".join(keys), keys[-1]]
                for key in ids:
                    titles.setdefault(key, label)
            for k, v in node.items():
                walk((*keys, k), v)
        elif isinstance(node, list):
            for item in node:
                walk(keys, item)

    walk((), data)
    return titles


def merge(rubric: Rubric, gradebook: dict[str, dict[str, float]],
          results: list[tuple[str, Result, bool]]) -> list[Student]:
    """One row per student; the gradebook's scores win (they include manual grading)."""
    rows: dict[str, Student] = {}
    for sid, result, failed in results:
        s = rows.setdefault(sid, Student(sid))
        for p in result.parts:
            s.scores[p.part] = p.score
            s.mistakes[p.part] = list(p.mistakes)
            s.flags[p.part] = list(p.flags)
        s.seconds, s.error, s.engine_failure = result.seconds, result.error, failed
    for sid, scores in gradebook.items():
        rows.setdefault(sid, Student(sid)).scores.update(scores)
    for s in rows.values():
        for p in rubric.part_names:
            s.scores.setdefault(p, 0.0)
    return sorted(rows.values(), key=lambda s: s.id)


# --- plots -----------------------------------------------------------------------------
def _png(fig) -> str:
    from matplotlib.ticker import MaxNLocator
    for ax in fig.axes:  # counts of students are whole numbers
        (ax.xaxis if ax.get_xlabel() == "students" else ax.yaxis).set_major_locator(
            MaxNLocator(integer=True))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    import matplotlib.pyplot as plt
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")  # no display on servers and in CI
    import matplotlib.pyplot as plt
    return plt


def plot_totals(rubric: Rubric, students: list[Student]) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.hist([s.total for s in students], bins=20, range=(0, rubric.max_score), color="#3b6ea8",
            edgecolor="white")
    ax.set_xlabel(f"total score (out of {rubric.max_score:g})")
    ax.set_ylabel("students")
    ax.set_title("Total scores")
    return _png(fig)


def plot_parts(rubric: Rubric, students: list[Student]) -> str:
    """Per part: how many students got full, partial and no credit."""
    plt = _pyplot()
    labels = [p.title for p in rubric.parts]
    full = [sum(s.scores[p.part] >= p.points for s in students) for p in rubric.parts]
    zero = [sum(s.scores[p.part] <= 0 for s in students) for p in rubric.parts]
    partial = [len(students) - f - z for f, z in zip(full, zero)]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(labels) + 1))
    y = range(len(labels))
    ax.barh(y, full, color="#2e8b57", label="full credit")
    ax.barh(y, partial, left=full, color="#e0a030", label="partial")
    ax.barh(y, zero, left=[f + p for f, p in zip(full, partial)], color="#c0392b", label="no credit")
    ax.set_yticks(list(y), labels)
    ax.invert_yaxis()
    ax.set_xlabel("students")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12 - 0.3 / len(labels)), ncol=3, fontsize=8)
    ax.set_title("Credit per part")
    return _png(fig)


def plot_part_histograms(rubric: Rubric, students: list[Student]) -> str:
    plt = _pyplot()
    n = len(rubric.parts)
    cols = 4
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(10, 2.2 * rows), squeeze=False)
    for ax, p in zip(axes.flat, rubric.parts):
        ax.hist([s.scores[p.part] for s in students], bins=10, range=(0, p.points),
                color="#3b6ea8", edgecolor="white")
        ax.set_title(p.title, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    return _png(fig)


def plot_times(seconds: list[float]) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 2.6))
    ax.hist(seconds, bins=20, color="#7d5ba6", edgecolor="white")
    ax.set_xlabel("seconds per submission")
    ax.set_ylabel("submissions")
    ax.set_title("Grading time")
    return _png(fig)


# --- page ------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:62em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;
text-align:left;vertical-align:top}th{background:#f2f2f2}img{max-width:100%;display:block;margin:.5em 0}
.num{text-align:right}.muted{color:#777}code{font-size:.9em}
"""


def _e(x) -> str:
    return html.escape(str(x))


def _img(b64: str, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{b64}">'


def _table(head: list[str] | None, rows: list[list[str]]) -> str:
    """A table whose cells are already HTML (callers escape); no head for key-value tables."""
    th = "".join(f"<th>{h}</th>" for h in head or [])
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    thead = f"<thead><tr>{th}</tr></thead>" if head else ""
    return f"<table>{thead}<tbody>{body}</tbody></table>"


def _summary(rubric: Rubric, students: list[Student]) -> str:
    totals = [s.total for s in students]
    rows = [["students", str(len(students))],
            ["mean total", f"{statistics.fmean(totals):.1f} / {rubric.max_score:g}"],
            ["median total", f"{statistics.median(totals):.1f}"],
            ["full marks", str(sum(t >= rubric.max_score for t in totals))]]
    part_rows = [[_e(p.title), f"{p.points:g}",
                  f"{statistics.fmean(s.scores[p.part] for s in students):.2f}",
                  str(sum(s.scores[p.part] >= p.points for s in students))] for p in rubric.parts]
    return (_table(None, rows)
            + _table(["part", "points", "mean score", "full credit"], part_rows))


def _mistakes(rubric: Rubric, students: list[Student], titles: dict[str, str], top: int) -> str:
    rows = []
    for p in rubric.parts:
        counts = Counter(m for s in students for m in s.mistakes.get(p.part, []))
        for mid, n in counts.most_common(top):
            title = titles.get(mid)
            label = f"{_e(title)} <span class=muted><code>{_e(mid)}</code></span>" if title \
                else f"<code>{_e(mid)}</code>"
            rows.append([_e(p.title), label, f'<span class=num>{n}</span>'])
    if not rows:
        return "<p class=muted>No catalogued mistakes were recognised (or no results store).</p>"
    return _table(["part", "mistake", "students"], rows)


def _attention(rubric: Rubric, students: list[Student]) -> str:
    allowed = frozenset(p.part for p in rubric.parts if p.autograd_allowed)
    rows = [[_e(s.id), "<br>".join(_e(r) for r in s.attention(allowed)), f"{s.total:g}"]
            for s in students if s.attention(allowed)]
    if not rows:
        return "<p>Nobody: no crash, timeout, autograd use or unreadable notebook.</p>"
    return _table(["student", "why", f"score / {rubric.max_score:g}"], rows)


def _timing(students: list[Student]) -> tuple[str, list[float]]:
    secs = sorted(s.seconds for s in students if s.seconds)
    if not secs:
        return "<p class=muted>No grading times recorded (no results store).</p>", []
    p95 = secs[min(len(secs) - 1, int(0.95 * len(secs)))]
    rows = [["submissions timed", str(len(secs))], ["median", f"{statistics.median(secs):.1f} s"],
            ["95th percentile", f"{p95:.1f} s"], ["slowest", f"{secs[-1]:.1f} s"],
            ["total (one worker)", f"{sum(secs) / 60:.1f} min"]]
    return _table(None, rows), secs


def render(rubric: Rubric, students: list[Student], titles: dict[str, str], *,
           sources: str, top: int = 5) -> str:
    """The whole page as one string: inline CSS, images as base64 PNG, no external requests."""
    now = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    head = (f"<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<title>{_e(rubric.name)}: cohort report</title><style>{_CSS}</style></head><body>"
            f"<h1>{_e(rubric.name)}: cohort report</h1>"
            f"<p class=muted>Generated {now} from {_e(sources)}.</p>")
    if not students:
        return head + "<p>No graded submissions found.</p></body></html>"
    timing_html, secs = _timing(students)
    parts = [
        "<h2>Scores</h2>", _summary(rubric, students), _img(plot_totals(rubric, students), "total scores"),
        "<h2>Score distribution per part</h2>", _img(plot_parts(rubric, students), "credit per part"),
        _img(plot_part_histograms(rubric, students), "score histograms per part"),
        "<h2>Most common mistakes</h2>", _mistakes(rubric, students, titles, top),
        "<h2>Students who need attention</h2>", _attention(rubric, students),
        "<h2>Grading time</h2>", timing_html,
    ]
    if secs:
        parts.append(_img(plot_times(secs), "grading time"))
    return head + "".join(parts) + "</body></html>"


def build(course: Path, assignment: str, out: Path, results: Path | None = None) -> Path:
    rubric = rubric_mod.load(assignment)
    db = course / "gradebook.db"
    results = results or results_dir(course)
    gradebook = read_gradebook(db, rubric)
    stored = read_results(results)
    students = merge(rubric, gradebook, stored)
    sources = f"{db.name} ({len(gradebook)} students)" if gradebook else "no gradebook"
    sources += f", {results} ({len(stored)} results)" if stored else ", no results store"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(rubric, students, read_catalogue(rubric.folder), sources=sources),
                   encoding="utf-8")
    log.info("report: %d students -> %s", len(students), out)
    return out


def main(*, course: str = ".", assignment: str = "gradient_backward",
         out: str = "build/report.html") -> int:
    path = build(Path(course).resolve(), assignment, Path(out))
    print(path)
    return 0
