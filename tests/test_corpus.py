"""The corpus: each submission variant in tests/corpus/ graded by the real engine, as its header
expects, and a feedback audit: how many wrong variants get a message that names their mistake."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from autograder import diagnose
from autograder.synth import read_variant, write_submission

CORPUS = Path(__file__).parent / "corpus"
AUDIT_TARGET = 0.90  # share of wrong variants whose feedback must name every declared mistake

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]


VARIANTS = [read_variant(p) for p in sorted(CORPUS.glob("*.py"))]
WRONG = [v for v in VARIANTS if v.mistakes]


def _named_in(feedback: str, template: str) -> bool:
    """Does the feedback carry the catalogue message (its longest fixed stretch of words)?"""
    pieces = [p.strip(" .,:()") for p in re.split(r"\{[^}]*\}", template)]
    return max(pieces, key=len) in feedback


@pytest.fixture(scope="session")
def engine(shared_engine):
    return shared_engine


@pytest.fixture(scope="session")
def catalogue():
    return diagnose.load("gradient_backward")


@pytest.fixture(scope="session")
def graded(engine, tmp_path_factory):
    """variant -> its Result, graded once per session whichever test asks first."""
    cache = {}
    folder = tmp_path_factory.mktemp("corpus")

    def grade(variant):
        if variant.name not in cache:
            nb = write_submission(folder / f"{variant.name}.ipynb", variant.overrides)
            cache[variant.name] = engine.grade(nb)
        return cache[variant.name]
    return grade


def _problems(variant, result, catalogue) -> list[str]:
    """Every way the result differs from what the variant's header expects (empty: as expected)."""
    problems = []
    for part in result.parts:
        got = f"{part.part}: {part.score}/{part.max_score}, mistakes {part.mistakes}, " \
              f"flags {part.flags}\n{part.output}"
        if not variant.accepts(part.part, part.score, part.max_score):
            problems.append(f"expected {variant.expected_score(part.part)}; {got}")
        for mistake_id in variant.mistakes.get(part.part, ()):
            if mistake_id not in part.mistakes:
                problems.append(f"mistake {mistake_id} not found; {got}")
            elif not _named_in(part.output, catalogue.entries[mistake_id].message):
                problems.append(f"mistake {mistake_id} found but its message is not shown; {got}")
        for flag in variant.flags.get(part.part, ()):
            if flag not in part.flags:
                problems.append(f"flag {flag} missing; {got}")
    return problems


def test_corpus_names_are_unique_and_parse(catalogue):
    """Does every corpus file expect something about each part, and every wrong part declare
    the catalogued mistake its feedback must name?"""
    assert len({v.name for v in VARIANTS}) == len(VARIANTS) >= 20
    for v in VARIANTS:
        assert v.expect, f"{v.name}: no '# expect:' line"
        for part in v.mistakes:
            assert v.expected_score(part) != "full", f"{v.name}: a mistake in a full-score part"
        wrong_parts = {p for p, want in v.expect.items() if want not in ("full", "any")}
        wrong_parts -= {"others", "all"}
        # A part scored 0 for code the checker flags says so with `# flags:` instead.
        assert wrong_parts <= set(v.mistakes) | set(v.flags), \
            f"{v.name}: no '# mistakes:' or '# flags:' for {wrong_parts}"
        for ids in v.mistakes.values():
            assert ids <= set(catalogue.entries), f"{v.name}: unknown ids {ids - set(catalogue.entries)}"


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_corpus_variant_grades_as_expected(variant, graded, catalogue):
    """Does the engine give each part the score, mistakes and flags the corpus file expects?"""
    problems = _problems(variant, graded(variant), catalogue)
    if problems and variant.pending:
        pytest.xfail(f"pending ({variant.pending}): {problems[0][:300]}")
    assert not problems, "\n".join(problems)


def test_feedback_audit_names_the_mistake_of_most_wrong_variants(graded, catalogue):
    """Of the corpus's wrong variants, how many get feedback naming every mistake they declare
    (id recorded and its catalogue message shown)? At least 90%."""
    missed = [v.name for v in WRONG
              if any(p.startswith("mistake") for p in _problems(v, graded(v), catalogue))]
    named = len(WRONG) - len(missed)
    share = named / len(WRONG)
    print(f"\nfeedback audit: {named}/{len(WRONG)} wrong variants named ({share:.0%}); "
          f"not named: {', '.join(missed) or 'none'}")
    assert share >= AUDIT_TARGET, f"only {named}/{len(WRONG)} named; not named: {missed}"
