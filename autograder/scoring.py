"""The one scoring function, and the result objects every output format is made from."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .rubric import Rubric


@dataclass
class TestOutcome:
    """One hidden pytest test, as the trusted side saw it."""
    nodeid: str
    part: str
    passed: bool
    message: str = ""          # plain feedback (first line of the assertion) when failed
    mistake: str | None = None  # catalogue id when a known mistake was recognised
    weight: float = 1.0        # the test's share of its part (the case's `weight`)


@dataclass
class PartResult:
    part: str
    name: str                  # the test cell's grade_id (contract: `tests[].name`)
    title: str
    score: float
    max_score: float
    output: str
    tests_passed: int = 0
    tests_total: int = 0
    mistakes: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # autograd, timeout, crashed, not_run, ...

    @property
    def status(self) -> str:
        return "passed" if self.score >= self.max_score and self.max_score > 0 else "failed"


@dataclass
class Result:
    score: float
    max_score: float
    output: str
    parts: list[PartResult]
    isolation: str = "none"
    seconds: float = 0.0
    sha256: str = ""
    error: str | None = None   # the submission could not be graded at all (unreadable file)

    def to_json(self) -> dict:
        """Gradescope's results.json schema (the contract's JSON); kit data in extra_data."""
        return {
            "score": self.score,
            "max_score": self.max_score,
            "output": self.output,
            "execution_time": round(self.seconds, 3),
            "tests": [
                {
                    "name": p.name,
                    "score": p.score,
                    "max_score": p.max_score,
                    "status": p.status,
                    "output": p.output,
                    "extra_data": {
                        "part": p.part, "title": p.title, "mistakes": p.mistakes,
                        "flags": p.flags, "tests_passed": p.tests_passed,
                        "tests_total": p.tests_total,
                    },
                }
                for p in self.parts
            ],
            "extra_data": {"isolation": self.isolation, "sha256": self.sha256,
                           "error": self.error},
        }

    @classmethod
    def from_json(cls, d: dict) -> "Result":
        parts = []
        for t in d.get("tests", []):
            x = t.get("extra_data", {})
            parts.append(PartResult(
                part=x.get("part", t["name"].removeprefix("test_")), name=t["name"],
                title=x.get("title", t["name"]), score=t["score"], max_score=t["max_score"],
                output=t.get("output", ""), tests_passed=x.get("tests_passed", 0),
                tests_total=x.get("tests_total", 0), mistakes=list(x.get("mistakes", [])),
                flags=list(x.get("flags", []))))
        x = d.get("extra_data", {})
        return cls(score=d["score"], max_score=d["max_score"], output=d.get("output", ""),
                   parts=parts, isolation=x.get("isolation", "none"),
                   seconds=d.get("execution_time", 0.0), sha256=x.get("sha256", ""),
                   error=x.get("error"))

    def part(self, part: str) -> PartResult:
        return next(p for p in self.parts if p.part == part)

    def replace(self, **kw) -> "Result":
        return dataclasses.replace(self, **kw)


def part_score(points: float, passed: float, total: float, *, forbidden: bool) -> float:
    """Points x (weighted) fraction of the part's hidden tests passed; a forbidden tool scores 0."""
    if forbidden or total <= 0:
        return 0.0
    return round(points * passed / total, 2)


def score(rubric: Rubric, outcomes: list[TestOutcome], *, feedback: dict[str, str],
          flags: dict[str, list[str]], isolation: str, seconds: float = 0.0,
          sha256: str = "", header: str = "") -> Result:
    """The one scoring function: every score that leaves the kit is computed here."""
    parts = []
    for rp in rubric.parts:
        mine = [o for o in outcomes if o.part == rp.part]
        passed = sum(o.passed for o in mine)
        part_flags = list(flags.get(rp.part, []))
        # Autograd in a by-hand part, or code the checker cannot see through: 0, with the reason.
        forbidden = ("autograd" in part_flags and not rp.autograd_allowed) or "unverifiable" in part_flags
        s = part_score(rp.points, sum(o.weight for o in mine if o.passed),
                       sum(o.weight for o in mine), forbidden=forbidden)
        # One failed test may report several mistakes, their ids joined by "+".
        mistakes = sorted({m for o in mine if o.mistake for m in o.mistake.split("+")})
        parts.append(PartResult(
            part=rp.part, name=rp.test_cell, title=rp.title, score=s, max_score=rp.points,
            output=feedback.get(rp.part, ""), tests_passed=passed, tests_total=len(mine),
            mistakes=mistakes, flags=part_flags))
    total = round(sum(p.score for p in parts), 2)
    return Result(score=total, max_score=rubric.max_score, output=header, parts=parts,
                  isolation=isolation, seconds=seconds, sha256=sha256)


def unreadable(rubric: Rubric, reason: str, *, sha256: str = "", isolation: str = "none") -> Result:
    """A file that is not a gradable notebook: score 0 everywhere, with the reason."""
    parts = [PartResult(part=rp.part, name=rp.test_cell, title=rp.title, score=0.0,
                        max_score=rp.points, output=f"Not graded: {reason}",
                        flags=["unreadable"]) for rp in rubric.parts]
    return Result(score=0.0, max_score=rubric.max_score,
                  output=f"This submission could not be graded: {reason}", parts=parts,
                  isolation=isolation, sha256=sha256, error=reason)
