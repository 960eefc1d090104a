"""Builds samples/canvas_download.zip: a dozen Canvas-named sample submissions (run: .venv/bin/python samples/build_samples.py)."""
from __future__ import annotations

import copy
import io
import os
import re
import sys
import zipfile
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
KIT = HERE.parent
sys.path.insert(0, str(KIT))

from autograder import synth  # noqa: E402

ASSIGNMENT = "gradient_backward"
RELEASE = Path(os.environ.get("GB_RELEASE_NOTEBOOK", KIT / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"))
SOURCE = KIT / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
OUT = HERE / "canvas_download.zip"
_STAMP = (2024, 3, 1, 12, 0, 0)   # fixed member dates: rebuilding gives the same bytes

# --- answers: the instructor's, with typical mistakes from the test corpus swapped in ----------
CORPUS = KIT / "tests" / "corpus"


def mistake(name: str) -> dict[str, str]:
    """The solution cells of one corpus variant (tests/corpus/<name>.py): the same mistakes the
    engine's tests pin down, so the demo shows feedback that is known to be right."""
    return synth.read_variant(CORPUS / f"{name}.py").overrides


FWD_BWD_AUTOGRAD = '''def forward_and_backward(inp, targ):
    for t in (inp, w1, b1, w2, b2):
        t.requires_grad_(True)
    loss = mse(lin(relu(lin(inp, w1, b1)), w2, b2), targ)
    loss.backward()
    for t in (inp, w1, b1, w2, b2):
        t.g = t.grad.clone()
        t.requires_grad_(False)
'''
NOISY_MSE = '''import sys, warnings
def mse_grad(inp, targ):
    warnings.warn("is this right?")
    print("debugging mse_grad", file=sys.stderr)
    inp.g = 2. * (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]
'''


def answers() -> dict[str, str]:
    """The instructor's solution of every part, without the nbgrader markers."""
    nb = nbformat.read(str(SOURCE), as_version=4)
    out = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution"):
            out[meta["grade_id"]] = re.sub(r"[ \t]*### (BEGIN|END) SOLUTION[^\n]*(\n|$)", "", cell.source).rstrip("\n")
    return out


def notebook(overrides: dict[str, str] | None = None, *, blank: bool = False,
             release: Path | None = None) -> nbformat.NotebookNode:
    """The released notebook as a student hands it in: solutions filled in, except `overrides`."""
    code = {} if blank else answers()
    code.update(overrides or {})
    return synth.build_submission(code, source=release or RELEASE)


def delete_cell(nb, grade_id: str):
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") != grade_id]
    return nb


def tamper_cell(nb, grade_id: str, source: str):
    nb = copy.deepcopy(nb)
    for c in nb.cells:
        meta = c.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade_id") == grade_id:
            c.source = source
            meta["points"] = 1000   # a student "raising" the cell's points gets nothing for it
    return nb


def text(nb) -> str:
    return nbformat.writes(nb)


def sample_class() -> list[tuple[str, str | bytes]]:
    """(Canvas file name, content): what each sample student stands for is in docs/instructors.md."""
    full = notebook()
    partial_first_try = notebook({**mistake("relu_no_mask"), **mistake("lin_wg_transposed")})
    broken = text(full)[: len(text(full)) // 2]    # an upload cut off halfway: not valid JSON
    return [
        ("hoppergrace_1001_5001_gradient_backward.ipynb", text(full)),
        ("hoppergrace_1001_5002_notes.txt", "my notes, not graded\n"),
        ("lovelaceada_1002_5003_gradient_backward.ipynb", text(partial_first_try)),
        ("lovelaceada_1002_5010_gradient_backward-1.ipynb", text(full)),     # resubmission wins
        ("turingalan_1003_5004_gradient_backward.ipynb",
         text(notebook({**mistake("mse_missing_factor_2"), **mistake("relu_no_mask")}))),
        ("curiemarie_1004_5005_gradient_backward.ipynb", text(notebook(mistake("lin_wg_transposed")))),
        ("noetheremmy_1005_5006_gradient_backward.ipynb",
         text(notebook(mistake("fwd_bwd_wrong_order")))),
        ("knuthdonald_1006_5007_gradient_backward.ipynb", text(notebook(blank=True))),
        ("dijkstraedsger_1007_5008_gradient_backward.ipynb",
         text(notebook({**mistake("cheat_backward"), "forward_and_backward": FWD_BWD_AUTOGRAD}))),
        ("ritchiedennis_1008_5009_gradient_backward.ipynb", broken),
        ("müllerjörg_1009_5011_gradient_backward.ipynb",
         text(notebook({**mistake("lin_outer_product_oom"), **mistake("nn_module_plain_list")}))),
        ("liskovbarbara_late_1010_5012_Gradient Backward (Barbara).ipynb",
         text(notebook(mistake("module_cell_syntax_error")))),
        ("hammingrichard_1011_5013_gradient_backward.ipynb",
         text(tamper_cell(delete_cell(full, "test_relu_grad"), "test_mse_grad", "pass"))),
        ("allenfrances_1012_5014_gradient_backward.ipynb", text(notebook({"mse_grad": NOISY_MSE}))),
        ("__MACOSX/._hoppergrace_1001_5001_gradient_backward.ipynb", b"\x00\x05\x16\x07junk"),
        (".DS_Store", b"\x00\x00\x00\x01Bud1"),
    ]


def build(out: Path = OUT) -> Path:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, content in sample_class():
            info = zipfile.ZipInfo(name, date_time=_STAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, content.encode("utf-8") if isinstance(content, str) else content)
    out.write_bytes(buf.getvalue())
    return out


if __name__ == "__main__":
    if not RELEASE.exists():
        sys.exit(f"{RELEASE} is missing: run `make release` first")
    path = build(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
    print(f"wrote {path} ({path.stat().st_size // 1024} KB, "
          f"{len(zipfile.ZipFile(path).namelist())} files)")
