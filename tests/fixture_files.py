"""Checks a graded result against what its variant file expects (variants: autograder.synth)."""
from __future__ import annotations

from autograder.synth import Variant


def check_scores(variant: Variant, result) -> list[str]:
    """Differences between a result and the variant's expectations (empty when it matches)."""
    problems = []
    for p in result.parts:
        want = variant.expected_score(p.part)
        ok = {"0": p.score == 0, "full": p.score == p.max_score,
              "partial": 0 < p.score < p.max_score, "less": p.score < p.max_score,
              "any": True}[want]
        if not ok:
            problems.append(f"{p.part}: expected {want}, got {p.score}/{p.max_score}: {p.output[:300]}")
    return problems
