"""The student release: no solution or hidden test in it, current, and failing only where students write."""
from __future__ import annotations

import filecmp
import re
import shutil
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIR = ROOT / "source" / "gradient_backward"
RELEASE_DIR = ROOT / "release" / "gradient_backward"
RELEASE = RELEASE_DIR / "gradient_backward.ipynb"
SOLUTION_RE = re.compile(r"### BEGIN SOLUTION\n(.*?)\n\s*### END SOLUTION", re.S)
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


def nbg(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def stripped_lines(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")}


@pytest.fixture(scope="module")
def source_nb():
    return nbformat.read(str(SOURCE_DIR / "gradient_backward.ipynb"), as_version=4)


@pytest.fixture(scope="module")
def release_nb():
    return nbformat.read(str(RELEASE), as_version=4)


def distinctive_solution_lines(nb) -> dict[str, set[str]]:
    """Per solution cell, the code lines of its solution regions that appear nowhere else in the source."""
    given = set()
    per_cell = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        given |= stripped_lines(SOLUTION_RE.sub("", cell.source))
        if nbg(cell).get("solution"):
            per_cell[nbg(cell)["grade_id"]] = set().union(*map(stripped_lines, SOLUTION_RE.findall(cell.source)))
    return {gid: lines - given for gid, lines in per_cell.items()}


def test_release_holds_no_solution_line(source_nb, release_nb):
    """Is every distinctive line of every solution region absent from the release?"""
    distinctive = distinctive_solution_lines(source_nb)
    assert all(distinctive.values()), distinctive  # each part has something to hide
    released = set().union(*(stripped_lines(c.source) for c in release_nb.cells))
    leaked = {gid: sorted(lines & released) for gid, lines in distinctive.items() if lines & released}
    assert leaked == {}


def test_public_checks_hold_no_solution_line(source_nb):
    """Do the shipped gbcheck.py and gbexplain.py stay free of every distinctive solution line (they compare with autograd)?"""
    shipped = stripped_lines((SOURCE_DIR / "gbcheck.py").read_text() + "\n" + (SOURCE_DIR / "gbexplain.py").read_text())
    leaked = {gid: sorted(lines & shipped) for gid, lines in distinctive_solution_lines(source_nb).items()
              if lines & shipped}
    assert leaked == {}


def test_release_holds_no_marker_and_no_hidden_test(release_nb):
    """Are all BEGIN/END markers and the hidden-test comments gone from the release?"""
    text = "\n".join(c.source for c in release_nb.cells)
    assert not [m for m in MARKERS if m in text]
    assert "trusted side" not in text


def test_release_stubs_name_their_part_and_what_to_write(release_nb):
    """Does every stub raise NotImplementedError naming its part and the function to write, in one short line?"""
    for cell in release_nb.cells:
        if not nbg(cell).get("solution"):
            continue
        gid = nbg(cell)["grade_id"]
        stubs = re.findall(r'raise NotImplementedError\("(.*)"\)', cell.source)
        assert stubs and len(stubs) == cell.source.count("# YOUR CODE HERE")
        assert all(re.fullmatch(r"Part \d: write \w+(\.\w+)?", s) for s in stubs), stubs
        long = [line for line in cell.source.splitlines() if "NotImplementedError(" in line and len(line) > 79]
        assert long == [], long  # fits one screen line, no sideways scrolling
        assert "@PART_STUB@" not in cell.source


def test_release_keeps_cells_and_metadata_of_the_source(source_nb, release_nb):
    """Does the release keep every cell, in order, with the source's grade_ids, points and tags?"""
    def shape(nb):
        return [(c.cell_type, nbg(c).get("grade_id"), nbg(c).get("points"), c.metadata.get("tags"))
                for c in nb.cells]
    assert shape(release_nb) == shape(source_nb)


def test_release_folder_ships_the_public_checks_and_the_data():
    """Does the release folder hold the notebook, gbcheck.py (with gbexplain.py, its messages), digits.npz and DATA_LICENSE.md, and no more?"""
    names = sorted(p.name for p in RELEASE_DIR.iterdir())
    assert names == ["DATA_LICENSE.md", "digits.npz", "gbcheck.py", "gbexplain.py", "gradient_backward.ipynb"]


@pytest.fixture(scope="module")
def fresh_release():
    """A fresh `nbgrader generate_assignment` of the source, in a temporary course (the one
    release of this test session, shared with the nbgrader tests)."""
    from nbgrader_course import ASSIGNMENT, released_course
    return released_course() / "release" / ASSIGNMENT


@pytest.mark.slow
@pytest.mark.nbgrader
def test_committed_release_equals_a_fresh_generation(fresh_release):
    """Is the committed release byte for byte what nbgrader generates now (run `make release` if not)?"""
    comparison = filecmp.dircmp(fresh_release, RELEASE_DIR, ignore=["__pycache__"])
    assert (comparison.left_only, comparison.right_only) == ([], [])
    differing = [name for name in comparison.common_files
                 if (fresh_release / name).read_bytes() != (RELEASE_DIR / name).read_bytes()]
    assert differing == [], "release/ is stale: run `make release`"


@pytest.mark.slow
def test_release_runs_with_only_not_implemented_errors_naming_their_part(tmp_path):
    """Run top to bottom, does the release fail only with NotImplementedError, each naming a part?"""
    from nbclient import NotebookClient
    shutil.copytree(RELEASE_DIR, tmp_path, dirs_exist_ok=True)
    nb = nbformat.read(str(tmp_path / RELEASE.name), as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=300, allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = {nbg(c)["grade_id"]: o for c in nb.cells if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"}
    assert {o.ename for o in errors.values()} == {"NotImplementedError"}, \
        {gid: (o.ename, o.evalue) for gid, o in errors.items()}
    for gid, out in errors.items():
        part = gid.removeprefix("test_")
        if gid.startswith("test_"):  # a public check fails on its own part's stub
            assert re.match(r"Part \d: write ", out.evalue), (gid, out.evalue)
            assert out.traceback and len(out.traceback) <= 3, out.traceback  # one short box, no gbcheck frames
            assert "gbcheck" not in "".join(out.traceback), out.traceback
        else:
            assert re.match(r"Part \d: ", out.evalue), (gid, out.evalue)
    assert {f"test_{p}" for p in ("mse_grad", "relu_grad", "lin_grad", "forward_and_backward",
                                  "layers_as_classes", "module_forward", "lin_without_einsum",
                                  "nn_module")} <= set(errors)
    setup = next(c for c in nb.cells if nbg(c).get("grade_id") == "setup")
    assert "x_train (1500, 64)" in "".join(o.get("text", "") for o in setup.outputs)


def test_stub_names_the_method_it_sits_in_and_survives_magics():
    """Does personalise() name Class.method, and fall back to the part for unparsable cells?"""
    from autograder.nbgrader_integration.part_stubs import CODE_STUB, part_label, personalise
    stub = CODE_STUB.replace("\n", "\n        ")
    cell = f'class Lin():\n    def bwd(self, out, inp):\n        """Set inp.g from out.g."""\n        {stub}'
    assert 'raise NotImplementedError("Part 7: write Lin.bwd")' in personalise(cell, "Part 7")
    assert part_label("lin_without_einsum", "Part 7: lin_without_einsum") == "Part 7"
    magic = f"%time\n{CODE_STUB}"
    assert 'NotImplementedError("Part 1 (y): write the code this cell asks for")' in personalise(magic, "Part 1 (y)")
