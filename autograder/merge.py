"""Folds the result folders of shard runs into one store, refusing anything that does not add up."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from .batch import MANIFEST
from .safe_files import atomic_write
from .store import Record, ResultStore

log = logging.getLogger(__name__)


class MergeConflict(ValueError):
    """The shards cannot be merged as they are; the message says what to regrade."""


@dataclass
class Source:
    """One folder taking part in a merge: a shard's results (or the target's earlier ones)."""
    root: Path
    records: list[Record]
    manifest: dict | None = None

    @property
    def label(self) -> str:
        if self.manifest and "shard" in self.manifest:
            k, n = self.manifest["shard"]
            return f"{self.root} (shard {k}/{n})"
        return str(self.root)


@dataclass
class Merged:
    records: dict[str, Record] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def read_source(root: Path) -> Source:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such results folder")
    manifest = None
    if (root / MANIFEST).is_file():
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    return Source(root, list(ResultStore(root, fingerprint="").records()), manifest)


def _short(fp: str) -> str:
    return fp[:12] or "(none)"


def check_fingerprints(sources: list[Source]) -> str | None:
    """The one fingerprint all records share; mixed ones mean different kit versions graded them."""
    seen: dict[str, list[str]] = {}
    for src in sources:
        for fp in sorted({r.fingerprint for r in src.records}):
            seen.setdefault(fp, []).append(src.label)
    if len(seen) > 1:
        lines = [f"  fingerprint {_short(fp)}: {', '.join(where)}" for fp, where in seen.items()]
        raise MergeConflict(
            "these results were graded by different versions of the grading code or assignment, "
            "so their scores are not comparable:\n" + "\n".join(lines) +
            "\nRegrade the outdated shards with the current kit (grade-all regrades only what is stale).")
    return next(iter(seen), None)


def combine(sources: list[Source]) -> Merged:
    """All records by id; an id graded twice must have the same result both times."""
    merged = Merged()
    where: dict[str, Source] = {}
    conflicts = []
    for src in sources:
        for rec in src.records:
            old = merged.records.get(rec.id)
            if old is None:
                merged.records[rec.id], where[rec.id] = rec, src
            elif old.canonical() != rec.canonical():
                conflicts.append(f"  {rec.id!r}: {old.result.score:g} in {where[rec.id].label}, "
                                 f"{rec.result.score:g} in {src.label}"
                                 + ("" if old.key == rec.key else " (different notebooks)"))
    if conflicts:
        raise MergeConflict(
            f"{len(conflicts)} submission(s) appear in several folders with different results:\n"
            + "\n".join(conflicts[:20]) + ("\n  ..." if len(conflicts) > 20 else "") +
            "\nKeep one copy of each (e.g. delete the stale folder) and merge again.")
    merged.warnings += coverage_warnings(sources, merged.records)
    failed = sorted(i for i, r in merged.records.items() if r.engine_failure)
    if failed:
        merged.warnings.append(f"{len(failed)} engine failure(s) scored 0 (rerun grade-all to "
                               f"retry them): {', '.join(failed[:10])}")
    return merged


def coverage_warnings(sources: list[Source], records: dict[str, Record]) -> list[str]:
    """Shards that are missing or stopped early, from the manifests grade-all leaves behind."""
    warnings = []
    manifests = [s.manifest for s in sources if s.manifest and "shard" in s.manifest]
    for n in sorted({m["shard"][1] for m in manifests}):
        have = {m["shard"][0] for m in manifests if m["shard"][1] == n}
        missing = sorted(set(range(1, n + 1)) - have)
        if missing and n > 1:
            warnings.append(f"shard(s) {', '.join(f'{k}/{n}' for k in missing)} not given: "
                            "their students have no result in the merged store")
    for src in sources:
        if src.manifest:
            left = [i for i in src.manifest.get("ids", []) if i not in records]
            if left:
                warnings.append(f"{src.label} stopped early: {len(left)} submission(s) without "
                                "a result; rerun that shard (it resumes) and merge again")
    return warnings


def merge(shards: list[Path], out: Path) -> Merged:
    """Check everything first, then write: a refused merge leaves `out` untouched."""
    out = Path(out)
    sources = [read_source(Path(s)) for s in shards]
    if out.is_dir() and all(out.resolve() != s.root.resolve() for s in sources):
        sources.append(read_source(out))           # earlier merges must agree too
    fingerprint = check_fingerprints(sources)
    merged = combine(sources)
    target = ResultStore(out, fingerprint=fingerprint or "")
    present = target.snapshot() if out.is_dir() else {}
    for rec in merged.records.values():
        if present.get(rec.id) != rec.canonical():
            target.put(rec)
    if not merged.warnings:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / MANIFEST, json.dumps(
            {"shard": [1, 1], "fingerprint": fingerprint, "ids": sorted(merged.records)},
            ensure_ascii=False))
    return merged


def main(*, shards: list[str], out: str) -> int:
    try:
        merged = merge([Path(s) for s in shards], Path(out))
    except FileNotFoundError as e:
        log.error("%s", e)
        return 2
    except MergeConflict as e:
        log.error("merge refused, nothing written: %s", e)
        return 1
    for w in merged.warnings:
        log.warning("%s", w)
    log.info("merged %d result(s) from %d folder(s) into %s", len(merged.records), len(shards), out)
    return 0
