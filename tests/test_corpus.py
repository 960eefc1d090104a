"""The corpus: each submission variant in tests/corpus/ graded by the real engine, as its header expects."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from autograder import diagnose
from autograder.synth import read_variant, write_submission

CORPUS = Path(__file__).parent / "corpus"

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]


VARIANTS = [read_variant(p) for p in sorted(CORPUS.glob("*.py"))]


def _named_in(feedback: str, template: str) -> bool:
    """Does the feedback carry the catalogue message (its longest fixed stretch of words)?"""
    pieces = [p.strip(" .,:()") for p in re.split(r"\{[^}]*\}", template)]
    return max(pieces, key=len) in feedback


@pytest.fixture(scope="session")
def engine():
    from autograder.engine import Engine
    with Engine("gradient_backward") as eng:
        yield eng


@pytest.fixture(scope="session")
def catalogue():
    return diagnose.load("gradient_backward")


def test_corpus_names_are_unique_and_parse():
    """Does every corpus file name a real solution cell and expect something about each part?"""
    assert len({v.name for v in VARIANTS}) == len(VARIANTS) >= 20
    for v in VARIANTS:
        assert v.expect, f"{v.name}: no '# expect:' line"
        for part in v.mistakes:
            assert v.expected_score(part) != "full", f"{v.name}: a mistake in a full-score part"


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_corpus_variant_grades_as_expected(variant, engine, catalogue, tmp_path):
    """Does the engine give each part the score, mistakes and flags the corpus file expects?"""
    nb = write_submission(tmp_path / f"{variant.name}.ipynb", variant.overrides)
    result = engine.grade(nb)
    for part in result.parts:
        got = f"{part.part}: {part.score}/{part.max_score}, mistakes {part.mistakes}, " \
              f"flags {part.flags}\n{part.output}"
        assert variant.accepts(part.part, part.score, part.max_score), \
            f"expected {variant.expected_score(part.part)}; {got}"
        for mistake_id in variant.mistakes.get(part.part, ()):
            assert mistake_id in part.mistakes, got
            assert _named_in(part.output, catalogue.entries[mistake_id].message), got
        for flag in variant.flags.get(part.part, ()):
            assert flag in part.flags, got
