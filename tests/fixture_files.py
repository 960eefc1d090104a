"""Reads submission fixtures: solution-cell code with `# grade_id:` and `# expect:` headers."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Fixture:
    name: str
    overrides: dict[str, str]
    expect: dict[str, str]       # part -> "0" | "full" | "partial" | "any"; "others" for the rest

    def expected(self, part: str) -> str:
        return self.expect.get(part, self.expect.get("others", "full"))


def read_fixture(path: Path, **substitutions: str) -> Fixture:
    """`# grade_id: X` starts a cell's code; `# expect: a=0 b=full others=full` states scores."""
    text = path.read_text()
    for key, value in substitutions.items():
        text = text.replace(f"__{key.upper()}__", value)
    overrides: dict[str, list[str]] = {}
    expect: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        m = re.match(r"#\s*grade_id:\s*(\S+)\s*$", line)
        if m:
            current = m.group(1)
            overrides[current] = []
            continue
        m = re.match(r"#\s*expect:\s*(.+)$", line)
        if m and current is not None and not overrides[current]:
            expect.update(dict(item.split("=", 1) for item in m.group(1).split()))
            continue
        if current is not None:
            overrides[current].append(line)
    return Fixture(path.stem, {k: "\n".join(v).strip() + "\n" for k, v in overrides.items()}, expect)


def check_scores(fixture: Fixture, result) -> list[str]:
    """Differences between a result and the fixture's expectations (empty when it matches)."""
    problems = []
    for p in result.parts:
        want = fixture.expected(p.part)
        ok = {"0": p.score == 0, "full": p.score == p.max_score,
              "partial": 0 < p.score < p.max_score, "less": p.score < p.max_score,
              "any": True}[want]
        if not ok:
            problems.append(f"{p.part}: expected {want}, got {p.score}/{p.max_score}: {p.output[:300]}")
    return problems
