"""The instructor notebook, the source of truth edited in JupyterLab: shaped as the CONTRACT says, and correct."""
from __future__ import annotations

import ast
import os
import re
import shutil
import time
import tomllib
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIR = ROOT / "source" / "gradient_backward"
SOURCE = SOURCE_DIR / "gradient_backward.ipynb"
RUBRIC = ROOT / "assignments" / "gradient_backward" / "assignment.toml"
SKIP_TAG = "grader:skip"

CONTRACT_PARTS = ["mse_grad", "relu_grad", "lin_grad", "forward_and_backward", "layers_as_classes",
                  "module_forward", "lin_without_einsum", "nn_module"]
SOLUTION_RE = re.compile(r"### BEGIN SOLUTION\n(.*?)\n\s*### END SOLUTION", re.S)


def nbg(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def is_test(cell) -> bool:
    return bool(nbg(cell).get("grade")) and not nbg(cell).get("solution")


def runs_in_grader(cell) -> bool:
    return cell.cell_type == "code" and not is_test(cell) and SKIP_TAG not in cell.metadata.get("tags", [])


@pytest.fixture(scope="module")
def nb():
    return nbformat.read(str(SOURCE), as_version=4)


@pytest.fixture(scope="module")
def rubric_points():
    return {part: spec["points"] for part, spec in tomllib.loads(RUBRIC.read_text())["parts"].items()}


GIVEN = "# Given (locked)"
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"


def test_graded_cells_keep_ids_derived_from_their_grade_ids(nb):
    """Does every nbgrader cell keep the cell id its grade_id gives (stable across Lab edits), all ids unique?"""
    ids = [c.id for c in nb.cells]
    assert len(ids) == len(set(ids))
    for cell in nb.cells:
        if nbg(cell):
            assert cell.id == nbg(cell)["grade_id"].replace("_", "-"), (cell.id, nbg(cell)["grade_id"])


def test_solution_and_hidden_markers_come_in_balanced_pairs(nb):
    """Does each BEGIN marker have its END (same indent, in order), solutions only in solution cells?"""
    for cell in code_cells(nb):
        for kind in ("SOLUTION", "HIDDEN TESTS"):
            marks = [(m.group(1), m.group(2)) for m in
                     re.finditer(rf"^([ \t]*)### (BEGIN|END) {kind}\s*$", cell.source, re.M)]
            assert [k for _, k in marks] == ["BEGIN", "END"] * (len(marks) // 2), (nbg(cell)["grade_id"], kind)
            assert all(a[0] == b[0] for a, b in zip(marks[::2], marks[1::2])), nbg(cell)["grade_id"]
        if "BEGIN SOLUTION" in cell.source:
            assert nbg(cell).get("solution"), nbg(cell)["grade_id"]


def _as_released(source: str) -> str:
    """The cell as nbgrader's ClearSolutions leaves it: each solution region replaced by the stub."""
    def stub(match):
        indent = match.group(1)
        return "\n".join(indent + line for line in STUB.splitlines())
    return re.sub(r"^([ \t]*)### BEGIN SOLUTION\n.*?^[ \t]*### END SOLUTION[^\n]*", stub, source, flags=re.M | re.S)


def test_unfinished_solution_cells_still_run(nb):
    """Does every stub land inside a def, so an unfinished part's cell runs and Run All goes on?"""
    for cell in code_cells(nb):
        if not nbg(cell).get("solution"):
            continue
        tree = ast.parse(_as_released(cell.source))
        top_level_raises = [node for node in tree.body if isinstance(node, ast.Raise)]
        assert top_level_raises == [], nbg(cell)["grade_id"]
        assert any(isinstance(n, ast.Raise) for d in ast.walk(tree)
                   if isinstance(d, ast.FunctionDef) for n in ast.walk(d)), nbg(cell)["grade_id"]


def test_failing_checks_do_not_stop_run_all(nb):
    """Is every test cell tagged raises-exception (JupyterLab's Run All and nbclient go on past it)?"""
    for cell in code_cells(nb):
        if is_test(cell):
            assert "raises-exception" in cell.metadata.get("tags", []), nbg(cell)["grade_id"]


def test_locked_cells_say_they_are_given(nb):
    """Does every locked code cell show it is given: a first-line comment, or a one-line public check?"""
    for cell in code_cells(nb):
        if not nbg(cell).get("locked"):
            continue
        first = cell.source.splitlines()[0]
        if is_test(cell):
            assert first.startswith("from gbcheck import check_"), first
        else:
            assert first.startswith(GIVEN), (nbg(cell)["grade_id"], first)
    intro = nb.cells[0].source
    assert GIVEN in intro and "Validate" in intro


def test_part_texts_say_what_students_asked(nb):
    """Does part 3 reach the matrix form step by step, part 4 say the loss value is unused, part 7 ban einsum?"""
    md = [c.source for c in nb.cells if c.cell_type == "markdown"]
    part3 = next(t for t in md if t.startswith("## Part 3"))
    assert "Step 1" in part3 and "Step 3" in part3 and "out.g @ w.t()" in part3 and "inp.t() @ out.g" in part3
    part4 = next(t for t in md if t.startswith("## Part 4"))
    assert "loss value itself is **not** used" in part4
    part7 = next(t for t in md if t.startswith("## Part 7"))
    assert "no\n`einsum`" in part7 or "no `einsum`" in part7


def test_notebook_is_valid_nbformat_4_with_schema_3_metadata(nb):
    """Is it a valid nbformat 4 notebook whose nbgrader cells all use schema version 3?"""
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert all(nbg(c)["schema_version"] == 3 for c in code_cells(nb))


def test_graded_cells_follow_the_contract_table(nb, rubric_points):
    """Do solution and test cells come in the CONTRACT's order, with its ids, flags and the rubric's points?"""
    graded = [c for c in code_cells(nb) if nbg(c).get("solution") or nbg(c).get("grade")]
    expected = [cell_id for part in CONTRACT_PARTS for cell_id in (part, f"test_{part}")]
    assert [nbg(c)["grade_id"] for c in graded] == expected
    for solution, test in zip(graded[::2], graded[1::2]):
        part = nbg(solution)["grade_id"]
        assert (nbg(solution)["solution"], nbg(solution)["grade"], nbg(solution)["locked"]) == (True, False, False)
        assert (nbg(test)["solution"], nbg(test)["grade"], nbg(test)["locked"]) == (False, True, True)
        assert nbg(test)["points"] == rubric_points[part]
    assert list(rubric_points) == CONTRACT_PARTS


def test_each_test_cell_directly_follows_its_solution_cell(nb):
    """Is every test cell the very next code cell after its part's solution cell?"""
    ids = [nbg(c)["grade_id"] for c in code_cells(nb)]
    for part in CONTRACT_PARTS:
        assert ids[ids.index(part) + 1] == f"test_{part}"


def test_setup_is_the_first_code_cell_and_forward_pass_precedes_part_1(nb):
    """Is the locked setup cell first, and are lin, relu and mse defined in a locked cell before part 1?"""
    cells = code_cells(nb)
    assert nbg(cells[0])["grade_id"] == "setup" and nbg(cells[0])["locked"]
    before_part_1 = cells[:[nbg(c)["grade_id"] for c in cells].index("mse_grad")]
    defined = {node.name for c in before_part_1 if nbg(c)["locked"]
               for node in ast.parse(c.source).body if isinstance(node, ast.FunctionDef)}
    assert {"get_data", "lin", "relu", "mse"} <= defined


def test_setup_cell_imports_and_globals(nb):
    """Does the setup cell import math, torch and nn and assign n, m, nh and w1, b1, w2, b2?"""
    tree = ast.parse(code_cells(nb)[0].source)
    imported = {alias.asname or alias.name for node in ast.walk(tree)
                if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
    assert {"math", "torch", "nn"} <= imported
    assigned = {t.id for node in ast.walk(tree) if isinstance(node, ast.Assign)
                for target in node.targets for t in ast.walk(target) if isinstance(t, ast.Name)}
    assert {"n", "m", "nh", "w1", "b1", "w2", "b2"} <= assigned


def test_solution_cells_keep_signatures_outside_the_solution_regions(nb):
    """Does every solution cell hold solution regions, with each def line outside them?"""
    for cell in code_cells(nb):
        if not nbg(cell).get("solution"):
            continue
        regions = SOLUTION_RE.findall(cell.source)
        assert regions, nbg(cell)["grade_id"]
        assert not any(re.search(r"^\s*(def|class) ", r, re.M) for r in regions), nbg(cell)["grade_id"]


def test_test_cells_only_run_public_checks_and_hold_a_hidden_region(nb):
    """Do test cells only import and call a gbcheck check (defining nothing) and mark the hidden suite?"""
    for cell in code_cells(nb):
        if not is_test(cell):
            continue
        part = nbg(cell)["grade_id"].removeprefix("test_")
        assert re.search(r"### BEGIN HIDDEN TESTS\n# .*test_" + part + r"\.py.*\n### END HIDDEN TESTS", cell.source)
        body = ast.parse(cell.source).body
        assert isinstance(body[0], ast.ImportFrom) and body[0].module == "gbcheck"
        assert public_source_lines(cell) == 1  # all a student sees of it in the Validate dialog
        assert [a.name for a in body[0].names] == [f"check_{part}"]
        assert all(isinstance(s, ast.Expr) and isinstance(s.value, ast.Call) for s in body[1:])


def public_source_lines(cell) -> int:
    return len(re.sub(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", "", cell.source, flags=re.S).strip().splitlines())


def test_only_test_cells_import_gbcheck(nb):
    """Does gbcheck stay out of every cell the grader runs?"""
    for cell in code_cells(nb):
        if not is_test(cell):
            assert "gbcheck" not in cell.source, nbg(cell).get("grade_id")


def test_training_and_plot_cells_are_skipped_by_the_grader(nb):
    """Are the training loop and the plot tagged grader:skip, and locked?"""
    skipped = {nbg(c)["grade_id"] for c in code_cells(nb) if SKIP_TAG in c.metadata.get("tags", [])}
    assert {"train_by_hand", "train_plot"} <= skipped
    assert all(nbg(c)["locked"] for c in code_cells(nb) if nbg(c)["grade_id"] in skipped)


def test_part_7_reference_uses_a_matrix_product_and_no_einsum(nb):
    """Does the reference answer of part 7 compute w.g without einsum or an outer product?"""
    cell = next(c for c in code_cells(nb) if nbg(c)["grade_id"] == "lin_without_einsum")
    assert "einsum" not in cell.source and "unsqueeze" not in cell.source
    assert "inp.t() @ out.g" in cell.source


@pytest.fixture()
def sandbox_like_dir(tmp_path):
    """A working directory holding only digits.npz, as the grader's sandbox does."""
    shutil.copy(SOURCE_DIR / "digits.npz", tmp_path / "digits.npz")
    return tmp_path


def test_grader_run_cells_are_fast_and_need_only_digits_npz(nb, sandbox_like_dir, monkeypatch):
    """Do the cells the grader runs work in a folder with only digits.npz, quickly, writing no file?"""
    import torch  # noqa: F401  (the grader's warm process has torch imported already)
    monkeypatch.chdir(sandbox_like_dir)
    ns: dict = {}
    slow = []
    for cell in filter(runs_in_grader, nb.cells):
        # CPU time, not wall time: other jobs on a shared machine must not make this test flaky.
        start = time.process_time()
        exec(compile(cell.source, nbg(cell)["grade_id"], "exec"), ns)
        elapsed = time.process_time() - start
        if elapsed > 0.2:
            slow.append((nbg(cell)["grade_id"], round(elapsed, 3)))
    assert slow == []
    assert sorted(os.listdir(sandbox_like_dir)) == ["digits.npz"]
    assert tuple(ns["w1"].shape) == (ns["m"], 50) and tuple(ns["w2"].shape) == (50, 1)


@pytest.fixture(scope="module")
def executed_source(tmp_path_factory):
    """The source notebook run top to bottom by a real kernel (nbclient), in a copy of its folder."""
    from nbclient import NotebookClient
    workdir = tmp_path_factory.mktemp("source_run")
    shutil.copytree(SOURCE_DIR, workdir, dirs_exist_ok=True)
    nb = nbformat.read(str(workdir / SOURCE.name), as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=300, allow_errors=True,
                   resources={"metadata": {"path": str(workdir)}}).execute()
    return nb


def _errors(cell):
    return [o for o in cell.get("outputs", []) if o.output_type == "error"]


def _stdout(cell):
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")


@pytest.mark.slow
def test_source_notebook_runs_top_to_bottom_without_error(executed_source):
    """Does every cell of the instructor notebook run without an error?"""
    failing = {nbg(c).get("grade_id"): _errors(c)[0].evalue for c in code_cells(executed_source) if _errors(c)}
    assert failing == {}


@pytest.mark.slow
def test_source_answers_pass_every_public_check(executed_source):
    """Does each test cell print its part's success line with the reference answers?"""
    for cell in code_cells(executed_source):
        if is_test(cell):
            part = nbg(cell)["grade_id"].removeprefix("test_")
            assert f"({part}): " in _stdout(cell) and "failed" not in _stdout(cell), _stdout(cell)


@pytest.mark.slow
def test_training_loop_lowers_the_loss(executed_source):
    """Does training with the student's own layers bring the training loss well below where it started?"""
    cell = next(c for c in code_cells(executed_source) if nbg(c)["grade_id"] == "train_by_hand")
    losses = [float(x) for x in re.findall(r"train loss\s+([\d.]+)", _stdout(cell))]
    assert len(losses) >= 5 and losses[-1] < losses[0] / 5, losses
