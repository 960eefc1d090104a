"""An attacker graded first on a worker harms none of the honest students graded after it on that worker."""
from __future__ import annotations

from pathlib import Path

import pytest

from autograder.batch import grade_many
from autograder.store import ResultStore
from autograder.synth import read_variant

HERE = Path(__file__).parent
CORPUS, ATTACKS = HERE / "corpus", HERE / "attacks"
# Five distinct honest notebooks, each written its own way.
HONEST = ["correct_instructor_solution", "correct_einsum", "correct_float64", "correct_numpy",
          "correct_where_mask"]

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]


@pytest.mark.parametrize("attack", ["mse_ghost_thread_outlives_job_scores_0",
                                    "mse_fills_dev_shm_and_tmp_scores_0",
                                    "mse_plants_files_for_the_next_student_scores_0"])
def test_attacker_first_then_five_honest_students_on_one_worker(attack, tmp_path):
    """With `grade-all --jobs 1`, does every honest notebook graded after the attacker get full marks?"""
    folder = tmp_path / "cohort"
    items = [("00-attacker", read_variant(ATTACKS / f"{attack}.py").build(folder / "00-attacker.ipynb"))]
    for i, name in enumerate(HONEST, 1):
        items.append((f"{i:02d}-{name}", read_variant(CORPUS / f"{name}.py").build(
            folder / f"{i:02d}-{name}.ipynb")))
    results = grade_many(items, jobs=1, store=ResultStore(tmp_path / "store"), progress="off")
    attacker = results["00-attacker"]
    assert attacker.score == 0, attacker.output
    # Positive evidence that the attack ran: its cell printed its marker into its feedback.
    assert "ATTACK RAN" in attacker.part("mse_grad").output, attacker.part("mse_grad").output
    for sid, result in results.items():
        if sid != "00-attacker":
            assert result.score == result.max_score, (sid, [(p.part, p.score, p.output[:300])
                                                            for p in result.parts if p.score < p.max_score])
