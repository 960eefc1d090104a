"""Synthetic cohort for the benchmark: correct, wrong, crashing and slow submissions, all distinct."""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder import rubric as rubric_mod
from autograder.synth import write_submission

# Wrong answers students really give (lesson 8 forum threads): one part each.
WRONG = {
    "mse_grad": [
        "def mse_grad(inp, targ):\n    inp.g = (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]\n",
        "def mse_grad(inp, targ):\n    inp.g = 2. * (inp.squeeze(-1) - targ) / inp.shape[0]\n",
        "def mse_grad(inp, targ):\n    inp.g = 2. * (inp.squeeze(-1) - targ).unsqueeze(-1)\n",
    ],
    "relu_grad": [
        "def relu_grad(inp, out):\n    inp.g = out.g\n",
        "def relu_grad(inp, out):\n    inp.g = (out.g > 0).float()\n",
    ],
    "lin_grad": [
        "def lin_grad(inp, out, w, b):\n    inp.g = out.g @ w.t()\n"
        "    w.g = (inp.unsqueeze(-1) * out.g.unsqueeze(1)).sum(0)\n    b.g = out.g.mean(0)\n",
        "def lin_grad(inp, out, w, b):\n    inp.g = out.g @ w.t()\n    w.g = out.g.t() @ inp\n"
        "    b.g = out.g.sum(0)\n",
    ],
    "lin_without_einsum": [
        "class Lin(Module):\n    def __init__(self, w, b):\n        self.w, self.b = w, b\n\n"
        "    def forward(self, inp):\n        return inp @ self.w + self.b\n\n"
        "    def bwd(self, out, inp):\n        inp.g = out.g @ self.w.t()\n"
        "        self.w.g = (inp.unsqueeze(-1) * out.g.unsqueeze(1)).sum(0)\n"
        "        self.b.g = out.g.sum(0)\n",
    ],
    "nn_module": [
        "class Model(nn.Module):\n    def __init__(self, n_in, nh, n_out):\n        super().__init__()\n"
        "        self.layers = [nn.Linear(n_in, nh), nn.ReLU(), nn.Linear(nh, n_out)]\n\n"
        "    def forward(self, x, targ):\n        for l in self.layers:\n            x = l(x)\n"
        "        return mse(x, targ)\n",
    ],
    "mse_grad_autograd": [
        "def mse_grad(inp, targ):\n    x = inp.detach().requires_grad_()\n"
        "    mse(x, targ).backward()\n    inp.g = x.grad\n",
    ],
}

# Crashes of every kind the engine must contain: each costs its own cell or part only.
CRASH = [
    ("relu_grad", "def relu_grad(inp, out):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"),
    ("lin_grad", "def lin_grad(inp, out, w, b):\n    inp.g = out.g @ w.t(\n"),
    ("mse_grad", "import os\nos._exit(1)\n"),
    ("lin_grad", "import sys\nsys.exit('bye')\n"),
    ("relu_grad", "import ctypes\nctypes.string_at(0)\n"),
    ("mse_grad", "def mse_grad(inp, targ):\n    return mse_grad(inp, targ)\n"),
    ("forward_and_backward", "raise RuntimeError('forgot to finish this')\n"),
]

# Slow but finishing: a student's debugging sleep or a Python loop over the rows.
SLOW = [
    ("mse_grad", "import time\ntime.sleep({secs})\n"),
    ("lin_grad", "def lin_grad(inp, out, w, b):\n    inp.g = out.g @ w.t()\n"
                 "    w.g = sum(inp[i].unsqueeze(-1) * out.g[i].unsqueeze(0) for i in range(inp.shape[0]))\n"
                 "    b.g = out.g.sum(0)\n"),
]

HANG = ("relu_grad", "def relu_grad(inp, out):\n    while True:\n        pass\n")

MIX = {"correct": 0.40, "wrong": 0.35, "crash": 0.15, "slow": 0.10}


@dataclass(frozen=True)
class Member:
    id: str
    path: Path
    kind: str


def solution_code(nb, grade_id: str) -> str:
    """What a student who got the part right hands in: the instructor's code without markers."""
    cell = next(c for c in nb.cells
                if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id)
    return re.sub(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n", "", cell.source, flags=re.M)


def _kinds(n: int, hangs: int, rng: random.Random) -> list[str]:
    kinds = [k for k, share in MIX.items() for _ in range(round(share * n))]
    kinds = (kinds + ["correct"] * n)[: n - hangs] + ["hang"] * hangs
    rng.shuffle(kinds)
    return kinds


def _overrides(kind: str, rng: random.Random) -> dict[str, str]:
    if kind == "wrong":
        part = rng.choice(sorted(WRONG))
        return {part.removesuffix("_autograd"): rng.choice(WRONG[part])}
    if kind == "crash":
        part, code = rng.choice(CRASH)
        return {part: code}
    if kind == "slow":
        part, code = rng.choice(SLOW)
        return {part: code.format(secs=rng.choice([0.5, 1.0, 2.0]))}
    if kind == "hang":
        return {HANG[0]: HANG[1]}
    return {}


def make_cohort(folder: Path, n: int, *, seed: int = 0, hangs: int = 0,
                assignment: str = "gradient_backward") -> list[Member]:
    """n submissions in `folder` (student_0000.ipynb ...), each notebook distinct.

    Every submission carries its own tag line, so no two share a submission key and the
    kit's deduplication of identical notebooks cannot flatter the numbers.
    """
    rng = random.Random(seed)
    source = nbformat.read(str(rubric_mod.load(assignment).source), as_version=4)
    members = []
    for i, kind in enumerate(_kinds(n, hangs, rng)):
        overrides = _overrides(kind, rng)
        tagged = "mse_grad" if "mse_grad" not in overrides else "relu_grad"
        base = overrides.get(tagged) or solution_code(source, tagged)
        overrides[tagged] = f"STUDENT_TAG = {i}  # distinct per submission\n" + base
        sid = f"student_{i:04d}"
        path = write_submission(Path(folder) / f"{sid}.ipynb", overrides, assignment=assignment)
        members.append(Member(sid, path, kind))
    return members


def released_course(root: Path, kit: Path, python: str) -> Path:
    """A course folder released once (nbgrader_config.py, source/, release/, gradebook.db)."""
    import shutil
    import subprocess
    course = Path(root) / "released"
    if not (course / "gradebook.db").exists():
        course.mkdir(parents=True, exist_ok=True)
        shutil.copy(kit / "nbgrader_config.py", course)
        shutil.copytree(kit / "source", course / "source", dirs_exist_ok=True)
        subprocess.run([python, "-m", "nbgrader", "generate_assignment", "gradient_backward",
                        "--force", "--log-level=WARN"], cwd=course, check=True,
                       env={**__import__("os").environ, "PYTHONPATH": str(kit)})
    return course


def course_with(released: Path, dest: Path, members: list[Member],
                assignment: str = "gradient_backward") -> Path:
    """A copy of the released course with `members` handed in (nbgrader's submitted/ layout)."""
    import shutil
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(released, dest, symlinks=True)
    name = rubric_mod.load(assignment).source.name
    for m in members:
        folder = dest / "submitted" / m.id / assignment
        folder.mkdir(parents=True)
        shutil.copy(m.path, folder / name)
        (folder / "timestamp.txt").write_text("2026-11-30 12:00:00.000000 UTC")
    return dest


STOCK_CONFIG = '''"""Stock nbgrader: the course folder, and nbgrader's default preprocessors (a kernel per notebook)."""
import os
c = get_config()  # noqa: F821
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = "gradient_backward_course"
'''
