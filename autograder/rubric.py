"""The rubric: points per part, read from the assignment folder (the single source of points)."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

KIT_ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENTS = KIT_ROOT / "assignments"


@dataclass(frozen=True)
class RubricPart:
    part: str
    title: str
    points: float
    test_cell: str
    autograd_allowed: bool
    defines: tuple[str, ...] = ()      # names the part's own cells must bind
    stand_ins: tuple[tuple[str, str], ...] = ()  # (name, probes attribute) if no earlier cell bound it
    own_backward: bool = False         # the part defines and calls its own backward() methods
    oracles: bool = False              # its probes may ask the supervisor for reference steps


@dataclass(frozen=True)
class Rubric:
    name: str
    folder: Path
    source: Path
    parts: tuple[RubricPart, ...]
    sandbox_files: tuple[Path, ...] = ()  # files next to the source notebook the sandbox may read

    @property
    def max_score(self) -> float:
        return float(sum(p.points for p in self.parts))

    def get(self, part: str) -> RubricPart:
        return next(p for p in self.parts if p.part == part)

    @property
    def part_names(self) -> list[str]:
        return [p.part for p in self.parts]


@lru_cache(maxsize=None)
def load(assignment: str = "gradient_backward", root: Path | None = None) -> Rubric:
    folder = (root or ASSIGNMENTS) / assignment
    data = tomllib.loads((folder / "assignment.toml").read_text())
    parts = tuple(
        RubricPart(part=name, title=p.get("title", name), points=float(p["points"]),
                   test_cell=p.get("test_cell", f"test_{name}"),
                   autograd_allowed=bool(p.get("autograd_allowed", False)),
                   defines=tuple(p.get("defines", ())),
                   stand_ins=tuple(p.get("stand_ins", {}).items()),
                   own_backward=bool(p.get("own_backward", False)),
                   oracles=bool(p.get("oracles", False)))
        for name, p in data["parts"].items())
    source = KIT_ROOT / data["source"]
    return Rubric(name=data.get("name", assignment), folder=folder, source=source, parts=parts,
                  sandbox_files=tuple(source.parent / f for f in data.get("sandbox_files", ())))
