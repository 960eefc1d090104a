"""`python -m autograder autograde ASSIGNMENT`: pre-grade in parallel, then nbgrader autograde per student, resumably."""
from __future__ import annotations

from . import lean  # noqa: F401  (before nbformat: skips what grading never uses)

import codecs
import hashlib
import json
import logging
import os
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import rubric as rubric_mod
from .gradebook import assignment_names
from .notebook import MAX_BYTES, NotebookError, parse_submission, read_submission_bytes
from .identity import key_of
from .safe_files import atomic_write, id_problem, shown, write_new
from .store import ResultStore, results_dir

log = logging.getLogger("autograder.autograde")



class AutogradeError(Exception):
    """Input the instructor has to fix (wrong assignment name, no release yet)."""


@dataclass
class Submission:
    student: str
    folder: Path
    notebook: Path | None      # None: nothing nbgrader can open (the reason says why)
    reason: str = ""


def main(*, assignment: str = "gradient_backward", jobs: int = 0, course: str = ".") -> int:
    try:
        summary = autograde(Path(course), assignment, jobs=jobs)
    except AutogradeError as e:
        log.error("%s", e)
        return 2
    return 1 if summary["failed"] else 0


def autograde(course: Path, assignment: str, *, jobs: int = 0, progress: str = "auto") -> dict:
    """The whole step; returns counts. Safe to kill at any instant and run again."""
    course = course.resolve()
    check_assignment(course, assignment, assignment_names(course / "gradebook.db"))
    subs = discover(course, assignment)
    if not subs:
        log.warning("no submissions under %s/submitted/*/%s/", course, assignment)
        return {"graded": 0, "skipped": 0, "failed": []}
    store = ResultStore(results_dir(course), assignment=assignment)
    t0 = time.monotonic()
    engine = EngineRun(subs, store, jobs=jobs, progress=progress)
    engine.start()
    try:
        from .nbgrader_integration.gradebook_api import backup_gradebook
        backup = backup_gradebook(course)
        if backup:
            log.info("gradebook backed up to %s", backup.name)
        t1, c1 = time.monotonic(), time.process_time()
        counts = run_nbgrader(course, assignment, subs, store, engine.wait_for)
    finally:
        engine.join()
    if engine.error is not None:
        raise engine.error
    log.info("engine %.0f s, nbgrader %.0f s (%.1f CPU s in this process), side by side: "
             "%.0f s in all", engine.seconds, time.monotonic() - t1, time.process_time() - c1,
             time.monotonic() - t0)
    return counts


def check_assignment(course: Path, assignment: str, known: list[str]) -> None:
    try:
        rubric_mod.load(assignment)
    except FileNotFoundError:
        raise AutogradeError(f"unknown assignment {assignment!r} (no assignments/{assignment}/); "
                             f"the gradebook knows {known or 'none'}") from None
    if assignment not in known:
        raise AutogradeError(f"assignment {assignment!r} is not in {course / 'gradebook.db'}: "
                             "run `make release` first")


def discover(course: Path, assignment: str) -> list[Submission]:
    """Every student folder under submitted/, with the notebook nbgrader will grade or why not.
    A symbolic link (a student folder, an assignment folder, a notebook) is never followed."""
    root = course / "submitted"
    if not root.is_dir() or root.is_symlink():
        return []
    expected = f"{rubric_mod.load(assignment).source.stem}.ipynb"
    subs = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        folder = Path(entry.path)
        if entry.is_symlink():
            log.warning("submitted/%s is a symbolic link, never followed: skipped", shown(entry.name))
            continue
        if not entry.is_dir(follow_symlinks=False) or not (folder / assignment).is_dir():
            continue
        why = id_problem(entry.name)
        if why:
            # never written to the gradebook: nbgrader's pages print student ids unescaped
            log.warning("submitted/%s: not a usable student id (it %s): skipped, rename the "
                        "folder", shown(entry.name), why)
            continue
        subs.append(_inspect(entry.name, folder / assignment, expected))
    return subs


def _inspect(student: str, folder: Path, expected: str) -> Submission:
    why = id_problem(student)
    if why:
        return Submission(student, folder, None, f"student id {shown(student)} {why}: rename the folder")
    if student != student.strip() or " " in student or not student.isascii():
        log.warning("student id %r has spaces or non-ASCII letters: graded, but check that it "
                    "matches your LMS roster before exporting grades", student)
    if folder.is_symlink():
        return Submission(student, folder, None, f"{folder.name}/ is a symbolic link, never followed")
    nb = folder / expected
    try:
        st = nb.lstat()
    except FileNotFoundError:
        st = None
    if st is None:
        others = sorted(p.name for p in folder.glob("*.ipynb"))
        why = (f"found {others} but not {expected} (rename it, or collect with "
               "`make collect`, which does)") if others else f"no notebook in {folder}"
        return Submission(student, folder, None, why)
    if stat.S_ISLNK(st.st_mode):
        return Submission(student, folder, None, f"{expected} is a symbolic link, not a file: "
                          "links are never followed")
    if not stat.S_ISREG(st.st_mode):
        return Submission(student, folder, None, f"{expected} is not a regular file")
    if st.st_size > MAX_BYTES:
        return Submission(student, folder, None,
                          f"{expected} is {st.st_size / 2**20:.0f} MB (limit "
                          f"{MAX_BYTES // 2**20} MB): clear its outputs and resubmit")
    normalize_for_nbgrader(nb)
    return Submission(student, folder, nb)


def normalize_for_nbgrader(nb: Path) -> bool:
    """nbgrader reads notebooks strictly (a UTF-8 BOM or UTF-16 is "not JSON" to it) while the
    engine reads them liberally: a notebook the engine can read but nbgrader could not is
    rewritten as plain nbformat-4 JSON, the student's bytes kept beside it
    (`<name>.as-submitted`), so both grade the same file instead of nbgrader failing on every run."""
    try:
        raw = read_submission_bytes(nb)
        parsed = parse_submission(raw)
    except NotebookError:
        return False            # the engine records 0 with the reason; nbgrader never opens it
    try:
        data = json.loads(raw.decode("utf-8")) if not raw.startswith(codecs.BOM_UTF8) else None
        cells = data.get("cells") if isinstance(data, dict) and data.get("nbformat") == 4 else None
        # what nbgrader reads as is: nbformat 4, every cell an object with its metadata and source
        if isinstance(cells, list) and len(cells) == len(parsed.cells) and all(
                isinstance(c, dict) and isinstance(c.get("metadata"), dict) and "source" in c for c in cells):
            return False
    except (UnicodeDecodeError, ValueError, AttributeError, RecursionError):
        pass
    import nbformat
    keep = nb.with_name(nb.name + ".as-submitted")
    if not keep.exists():
        write_new(keep, raw)
    atomic_write(nb, nbformat.writes(parsed), mode=0o644)
    log.info("%s: rewritten as plain nbformat-4 JSON for nbgrader (the original is %s)",
             nb, keep.name)
    return True


def pregrade(subs: list[Submission], store: ResultStore, *, jobs: int, progress: str) -> None:
    """Grades every gradable notebook with the engine, in parallel, into the store."""
    from .batch import grade_many
    items = sorted((s.student, s.notebook) for s in subs if s.notebook is not None)
    if items:
        log.info("grading %d submissions with the engine (%s cores)", len(items), jobs or "all")
        grade_many(items, jobs=jobs, store=store, progress=progress)


class EngineRun(threading.Thread):
    """The engine's grading of the cohort (pregrade), in the background: nbgrader's pass takes
    each student as soon as that student's result is stored, in the same order, so the two
    share the machine instead of running one after the other."""

    def __init__(self, subs: list[Submission], store: ResultStore, *, jobs: int, progress: str):
        super().__init__(name="engine", daemon=True)
        self.subs, self.store, self.jobs, self.progress = subs, store, jobs, progress
        self.error: BaseException | None = None
        self.seconds = 0.0

    def run(self) -> None:
        started = time.monotonic()
        try:
            pregrade(self.subs, self.store, jobs=self.jobs, progress=self.progress)
        except BaseException as exc:  # noqa: BLE001 - raised again by autograde() after nbgrader's pass
            self.error = exc
        finally:
            self.seconds = time.monotonic() - started

    def wait_for(self, sub: Submission) -> bool:
        """Waits until the engine's result for `sub` is stored; False when the engine stopped
        without it (it could not start: nothing more is converted)."""
        key = key_of(sub.notebook, self.store.fingerprint, self.store.assignment)
        while self.store.find_key(key) is None:
            if not self.is_alive():
                return self.error is None and self.store.find_key(key) is not None
            time.sleep(0.02)
        return True


# --- nbgrader, one student at a time, with a ledger of what is done ---------------------------
def ledger_path(course: Path, assignment: str) -> Path:
    return course / ".kit" / "autograde" / f"{assignment}.json"


def read_ledger(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}


def write_ledger(path: Path, ledger: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(ledger, ensure_ascii=False, indent=1, sort_keys=True))


def state_key(sub: Submission, store: ResultStore, gradebook_id: str) -> str:
    """Changes when the submission, its timestamp, the engine, or the gradebook itself changes."""
    h = hashlib.sha256(gradebook_id.encode())
    if sub.notebook is not None:
        h.update(key_of(sub.notebook, store.fingerprint, store.assignment).encode())
    else:
        h.update(b"none\0" + sub.reason.encode())
    ts = sub.folder / "timestamp.txt"
    h.update(ts.read_bytes() if ts.is_file() else b"no timestamp")
    return h.hexdigest()


def run_nbgrader(course: Path, assignment: str, subs: list[Submission], store: ResultStore,
                 wait_for) -> dict:
    """One pass of nbgrader over every student not up to date: one converter, one gradebook
    session (nbgrader_integration: CohortAutograde, shared_gradebook). The ledger is written as
    each student is stored, so a kill -9 loses at most the student in progress. `wait_for(sub)`
    is asked before each student is converted: it waits for the engine's result (False: it is
    never coming)."""
    from .nbgrader_integration import gradebook_api as gb
    from .nbgrader_integration.cohort_autograde import autograde_cohort
    from .nbgrader_integration.shared_gradebook import shared_gradebook
    path = ledger_path(course, assignment)
    ledger = read_ledger(path)
    counts = {"graded": 0, "skipped": 0, "failed": []}
    with shared_gradebook(course) as durable:
        gb_id = gb.gradebook_id(course, assignment)
        present = gb.submitted_students(course, assignment)
        keys, pending = {}, {}

        def zero(sub: Submission) -> bool:
            """Scores 0, with the reason, a notebook nbgrader never opens (False: it is converted)."""
            reason = _zero_reason(sub, store)
            if reason is not None:
                gb.record_zero(course, assignment, sub.student, reason)
                durable()
                _done(ledger, path, sub.student, keys[sub.student], counts)
            return reason is not None

        def ready(student: str) -> bool:
            sub = pending[student]
            if not wait_for(sub):
                return False              # left pending: reported as failed below
            if zero(sub):
                del pending[student]
                return False
            return True

        def stored(student: str) -> None:
            result = store.load(student)
            review = [p.name for p in result.parts if "manual_review" in p.flags] if result else []
            if review:  # code the checker could not verify: 0 until the instructor reads it
                gb.mark_manual_review(course, assignment, student, review)
            durable()   # on disk before the ledger says this student is done
            _done(ledger, path, student, keys[student], counts)
            del pending[student]

        for sub in subs:
            keys[sub.student] = key = state_key(sub, store, gb_id)
            if ledger.get(sub.student, {}).get("key") == key and sub.student in present:
                counts["skipped"] += 1
                continue
            if sub.notebook is None:
                zero(sub)
            else:
                pending[sub.student] = sub     # its result may still be on its way: see ready()

        out = autograde_cohort(course, assignment, sorted(pending), stored, ready)
    for student in sorted(pending):           # what nbgrader could not store
        counts["failed"].append(student)
    if counts["failed"]:
        log.error("nbgrader autograde failed for %s:\n%s", ", ".join(counts["failed"]),
                  (out.get("error") or out.get("log") or "")[-3000:])
    log.info("nbgrader autograde: %d graded, %d already up to date, %d failed%s",
             counts["graded"], counts["skipped"], len(counts["failed"]),
             f" ({', '.join(counts['failed'])})" if counts["failed"] else "")
    log.info("gradebook: %s; autograded notebooks: %s", course / "gradebook.db",
             course / "autograded")
    return counts


def _done(ledger: dict, path: Path, student: str, key: str, counts: dict) -> None:
    ledger[student] = {"key": key, "at": time.strftime("%Y-%m-%d %H:%M:%S")}
    write_ledger(path, ledger)   # after each student: a kill -9 loses at most one
    counts["graded"] += 1


def _zero_reason(sub: Submission, store: ResultStore) -> str | None:
    """Why nbgrader never opens this submission (it is scored 0 with the reason), or None."""
    if sub.notebook is None:
        log.warning("%s: not graded, scored 0: %s", sub.student, sub.reason)
        return sub.reason
    stored = store.load(sub.student)
    if stored is not None and stored.error:
        # the engine could not read it (broken JSON...): nbgrader would only fail on it too
        log.warning("%s: unreadable notebook, scored 0: %s", sub.student, stored.error)
        return stored.error
    return None
