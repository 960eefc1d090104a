"""Finds autograd (and code that could hide it) in a part's cells, on the trusted side, by AST."""
from __future__ import annotations

import ast
import re

# Any of these names, as an attribute, import or variable, means autograd machinery.
AUTOGRAD_NAMES = {
    "autograd", "functorch", "vjp", "jvp", "jacrev", "jacfwd", "jacobian", "hessian",
    "requires_grad", "requires_grad_", "enable_grad", "set_grad_enabled", "retain_grad",
    "grad_fn", "_execution_engine", "_engine_run_backward", "run_backward", "_ImperativeEngine",
    "grad_and_value", "__grader_allow_autograd__",
}
# Attributes only: `x.grad` is autograd's gradient (the lesson stores gradients in `.g`).
AUTOGRAD_ATTRS = {"grad", "_C"}
# Calls that run code or reach objects by computed names: they could hide any of the above.
DYNAMIC_CALLS = {"eval", "exec", "compile", "__import__", "globals", "vars", "locals"}
DYNAMIC_ATTRS = {"__dict__", "__builtins__", "__subclasses__", "__globals__", "__code__",
                 "__getattribute__", "modules", "import_module", "f_globals", "f_back"}
DYNAMIC_MODULES = {"importlib", "ctypes", "gc", "inspect", "marshal", "pickle", "builtins"}
NAME_ACCESS = {"getattr", "setattr", "delattr", "hasattr"}
_AUTOGRAD_WORD = re.compile(
    r"\b(autograd|_engine_run_backward|_execution_engine|functorch|__grader_allow_autograd__)\b")


def _docstrings(tree) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _imported(node) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""] + [a.name for a in node.names]
    return []


def scan(code: str, *, allow_backward_method: bool) -> list[str]:
    """Plain-language findings; empty when nothing autograd-like or dynamic was seen.

    `allow_backward_method`: the refactor parts define and call their own `backward()`
    methods, so there a `.backward()` call is left to the run-time tripwire."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []  # the cell fails to run anyway; its error is reported elsewhere
    findings: list[str] = []
    docstrings = _docstrings(tree)

    def add(text):
        if text not in findings:
            findings.append(text)

    for node in ast.walk(tree):
        for mod in _imported(node):
            parts = set(mod.split("."))
            if parts & (AUTOGRAD_NAMES | {"func"}) and mod.startswith("torch") or parts & AUTOGRAD_NAMES:
                add(f"imports `{mod}` (autograd)")
            if parts & DYNAMIC_MODULES:
                add(f"imports `{mod}`, which can hide what the code calls")
        if isinstance(node, ast.Attribute):
            if node.attr in AUTOGRAD_NAMES or node.attr in AUTOGRAD_ATTRS:
                add(f"uses `.{node.attr}` (autograd)")
            elif node.attr == "backward" and not allow_backward_method:
                add("calls `.backward()` (autograd)")
            elif node.attr == "func" and isinstance(node.value, ast.Name) and node.value.id == "torch":
                add("uses `torch.func` (autograd)")
            elif node.attr in DYNAMIC_ATTRS:
                add(f"uses `.{node.attr}`, which can hide what the code calls")
        elif isinstance(node, ast.Name) and node.id in AUTOGRAD_NAMES:
            add(f"uses `{node.id}` (autograd)")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            fname = node.func.id
            if fname in DYNAMIC_CALLS:
                add(f"calls `{fname}()`, which can hide what the code calls")
            elif fname in NAME_ACCESS and len(node.args) >= 2:
                attr = node.args[1]
                if not (isinstance(attr, ast.Constant) and isinstance(attr.value, str)):
                    add(f"calls `{fname}()` with a computed name, which can hide what the code calls")
                elif attr.value in AUTOGRAD_NAMES | AUTOGRAD_ATTRS or \
                        (attr.value == "backward" and not allow_backward_method):
                    add(f"reaches `{attr.value}` through `{fname}()` (autograd)")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            if _AUTOGRAD_WORD.search(node.value):
                add("spells an autograd name in a string")
    return findings
