"""Checks a graded result against what its variant file expects (variants: autograder.synth)."""
from __future__ import annotations

from autograder.synth import Variant


def check_scores(variant: Variant, result) -> list[str]:
    """Differences between a result and the variant's expectations (empty when it matches)."""
    return [f"{p.part}: expected {variant.expected_score(p.part)}, got {p.score}/{p.max_score}: "
            f"{p.output[:300]}" for p in result.parts if not variant.accepts(p.part, p.score, p.max_score)]
