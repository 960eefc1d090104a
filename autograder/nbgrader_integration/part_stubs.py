"""PartStubs: the release step that turns nbgrader's placeholder stub into a one-line NotImplementedError naming the part."""
from __future__ import annotations

import ast
from pathlib import Path

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool, Unicode

from .. import notebook as nbmod
from .. import rubric as rubric_mod

# nbgrader's ClearSolutions writes this (configured as its code_stub); PartStubs replaces the quoted token.
PLACEHOLDER = '"@PART_STUB@"'
CODE_STUB = f"# YOUR CODE HERE\nraise NotImplementedError({PLACEHOLDER})"


def _enclosing_defs(tree: ast.AST) -> dict[int, ast.FunctionDef]:
    """Line number of each `raise` -> the innermost function around it, with `qualname` set."""
    found: dict[int, ast.FunctionDef] = {}

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                child.qualname = prefix + child.name
                for inner in ast.walk(child):
                    if isinstance(inner, ast.Raise):
                        found[inner.lineno] = child  # outer first, so inner functions overwrite
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def _what_to_write(func) -> str:
    """'write mse_grad' or 'write Lin.bwd': short enough for one screen line; the docstring above it says what."""
    if func is None:
        return "write the code this cell asks for"
    return f"write {func.qualname}"


def _quoted(message: str) -> str:
    return f'"{message}"' if '"' not in message and "\\" not in message else repr(message)


def part_label(grade_id: str, title: str | None) -> str:
    """'Part 1' from the rubric title 'Part 1: mse_grad' (the stub sits in that part's cell, which names the
    function); the bare grade_id without a title."""
    if not title:
        return grade_id
    return title.split(":")[0].strip()


def personalise(source: str, label: str) -> str:
    """The cell's source with every placeholder replaced by a message naming the part and what to write."""
    try:
        owners = _enclosing_defs(ast.parse(source))
    except SyntaxError:  # cells with IPython magics: the message just names the part
        owners = {}
    lines = source.split("\n")
    for i, line in enumerate(lines):
        if PLACEHOLDER in line:
            message = f"{label}: {_what_to_write(owners.get(i + 1))}"
            lines[i] = line.replace(PLACEHOLDER, _quoted(message))
    return "\n".join(lines)


class PartStubs(Preprocessor):
    """Runs right after ClearSolutions: each solution cell's stub names its part (from the rubric)."""

    enabled = Bool(True, help="nbconvert preprocessors are off by default; in the release pipeline this one "
                              "must always run").tag(config=True)
    assignment = Unicode("", help="Assignment name when nbgrader does not pass one in the resources.").tag(
        config=True)

    def _titles(self, resources) -> dict[str, str]:
        name = (resources.get("nbgrader") or {}).get("assignment") or self.assignment
        # nbgrader converts from the course root: prefer the course's own rubric over the kit's.
        local = Path.cwd() / "assignments"
        root = local if (local / name / "assignment.toml").exists() else None
        try:
            rubric = rubric_mod.load(name, root)
        except FileNotFoundError:
            return {}
        return {p.part: p.title for p in rubric.parts}

    def preprocess(self, nb, resources):
        titles = self._titles(resources)
        for cell in nb.cells:
            if cell.cell_type != "code" or PLACEHOLDER not in cell.source:
                continue
            grade_id = nbmod.grade_id(cell) or ""
            cell.source = personalise(cell.source, part_label(grade_id, titles.get(grade_id)))
        return nb, resources
