"""A folder of per-submission results: one JSON file per id, atomic writes, lookups by id and key."""
from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .safe_files import atomic_write
from .scoring import Result

log = logging.getLogger(__name__)
FORMAT = 1
_KEYS = "by-key"          # key -> id pointers, so a cache lookup is one file read, not a scan
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def results_dir(course: Path) -> Path:
    """Where the engine's results for an nbgrader course are stored (`autograde` pre-grades
    into it; its nbgrader step reads them back)."""
    return Path(course) / ".kit" / "results"


@dataclass(frozen=True)
class Record:
    """One stored result with what it is valid for."""
    id: str
    key: str
    fingerprint: str
    result: Result
    engine_failure: bool = False

    def canonical(self) -> dict:
        """What two gradings of the same submission agree on (wall-clock time left out)."""
        r = self.result.to_json()
        r.pop("execution_time", None)
        return {"id": self.id, "key": self.key, "fingerprint": self.fingerprint, "result": r,
                "engine_failure": self.engine_failure}


def file_name(submission_id: str) -> str:
    """A portable file name for any id: a readable ASCII slug plus a hash of the exact id.

    The hash keeps ids apart that a case-insensitive file system or the slug would merge
    ("Zoë" / "Zoe", "Ann" / "ann"); the slug is only there for people listing the folder.
    """
    slug = _UNSAFE.sub("_", submission_id).strip("._")[:60] or "id"
    digest = hashlib.sha256(submission_id.encode("utf-8")).hexdigest()[:16]
    return f"{slug}-{digest}.json"


class ResultStore:
    """Results of one assignment's submissions, valid for one grading fingerprint.

    `fingerprint=None` means "the kit's current one", computed on first use, so merging
    (which reads raw records of any fingerprint) never needs the engine.
    """

    def __init__(self, root: Path, fingerprint: str | None = None,
                 assignment: str = "gradient_backward"):
        self.root = Path(root)
        self.assignment = assignment
        self._fingerprint = fingerprint

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            from .identity import fingerprint  # read only when needed: merging never computes it
            self._fingerprint = fingerprint(self.assignment)
        return self._fingerprint

    def path(self, submission_id: str) -> Path:
        return self.root / file_name(submission_id)

    # --- reading ------------------------------------------------------------------------
    def record(self, submission_id: str) -> Record | None:
        """The stored record for this id whatever its fingerprint, or None."""
        return _read(self.path(submission_id))

    def load(self, submission_id: str) -> Result | None:
        """The result for this id, or None when missing or graded by another kit version."""
        rec = self.record(submission_id)
        if rec is None or rec.fingerprint != self.fingerprint:
            return None
        return rec.result

    def find_key(self, key: str) -> Result | None:
        """A result graded from a submission with this key (any id), or None."""
        rec = self.find_key_record(key)
        return rec.result if rec else None

    def find_key_record(self, key: str) -> Record | None:
        try:
            submission_id = (self.root / _KEYS / _key_name(key)).read_text(encoding="utf-8")
        except (FileNotFoundError, UnicodeDecodeError):
            return None
        rec = self.record(submission_id)
        # the id may have been regraded from another notebook since the pointer was written
        if rec is None or rec.key != key or rec.fingerprint != self.fingerprint \
                or rec.engine_failure:
            return None
        return rec

    def records(self) -> Iterator[Record]:
        """Every readable record in the folder, whatever its fingerprint, in file-name order."""
        for path in sorted(self.root.glob("*.json")):
            if path.name.startswith("."):
                continue                  # run manifests and temporary files are not records
            rec = _read(path)
            if rec is not None:
                yield rec

    def __iter__(self) -> Iterator[tuple[str, Result]]:
        """(id, Result) for every result valid for the current fingerprint."""
        for rec in self.records():
            if rec.fingerprint == self.fingerprint:
                yield rec.id, rec.result

    def snapshot(self) -> dict[str, dict]:
        """id -> canonical record: two stores with equal snapshots hold the same grades."""
        return {rec.id: rec.canonical() for rec in self.records()}

    # --- writing ------------------------------------------------------------------------
    def save(self, submission_id: str, result: Result, *, key: str,
             fingerprint: str | None = None, engine_failure: bool = False) -> Path:
        """Store a result atomically; the key pointer follows so find_key() sees it."""
        doc = {"format": FORMAT, "id": submission_id, "key": key,
               "fingerprint": fingerprint or self.fingerprint, "engine_failure": engine_failure,
               "saved_at": time.time(), "result": result.to_json()}
        path = self.path(submission_id)
        (self.root / _KEYS).mkdir(parents=True, exist_ok=True)   # reading never creates folders
        atomic_write(path, json.dumps(doc, ensure_ascii=False, indent=1))
        atomic_write(self.root / _KEYS / _key_name(key), submission_id)
        return path

    def put(self, rec: Record) -> Path:
        return self.save(rec.id, rec.result, key=rec.key, fingerprint=rec.fingerprint,
                         engine_failure=rec.engine_failure)


def _key_name(key: str) -> str:
    # keys are hex digests today; hashing again keeps any future key format a safe file name
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _read(path: Path) -> Record | None:
    """A record, or None for a missing file; a corrupt file (not written by save) also reads as None."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return Record(id=doc["id"], key=doc["key"], fingerprint=doc["fingerprint"],
                      result=Result.from_json(doc["result"]),
                      engine_failure=bool(doc.get("engine_failure", False)))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as e:
        log.warning("ignoring %s: not a result record (%s)", path, e)
        return None
