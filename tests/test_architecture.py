"""The architecture's rules, read from the source with ast: who imports nbgrader, what the sandbox side imports, no cycles."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from autograder import rubric

PACKAGE = Path(rubric.KIT_ROOT) / "autograder"
# The nbgrader integration: the only subpackage whose modules may import nbgrader (the core
# engine, the Gradescope and CI runtimes run without it).
NBGRADER_PACKAGE = "autograder.nbgrader_integration"
# The code that runs next to student code: the standard library, numpy, torch, and the wire format.
SANDBOX_SIDE = {"autograder.sandbox.inside": {"numpy", "torch", "wire"},
                "autograder.sandbox.wire": {"numpy", "torch"}}
# Known cycles, each with the issue that removes it; a new cycle fails at once (none today).
KNOWN_CYCLES: dict[frozenset[str], str] = {}


def _name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(module: str) -> set[str]:
    """Every module `module` imports, at the top or inside a function, absolute names."""
    path = MODULES[module]
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            # `from . import engine` imports the module autograder.engine
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names}
    return found


def _internal_graph() -> dict[str, set[str]]:
    graph = {}
    for module in MODULES:
        edges = set()
        for name in _imports(module):
            while name not in MODULES and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in MODULES and name != module:
                edges.add(name)
        graph[module] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), set()

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.add(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_the_imports_it_must():
    """Does the import reader find the edges we know exist (so an empty answer means something)?"""
    graph = _internal_graph()
    assert "autograder.sandbox.launcher" in graph["autograder.engine"] or \
        "autograder.sandbox" in graph["autograder.engine"]
    assert "autograder.rubric" in graph["autograder.engine"]
    assert "nbgrader" in {n.split(".")[0] for n in _imports(f"{NBGRADER_PACKAGE}.engine_grades")}


def test_only_the_nbgrader_integration_imports_nbgrader():
    """Which autograder modules import nbgrader? Only modules of the nbgrader integration subpackage."""
    importers = {m for m in MODULES if any(n.split(".")[0] == "nbgrader" for n in _imports(m))}
    outside = {m for m in importers if not m.startswith(f"{NBGRADER_PACKAGE}.")}
    assert importers and not outside, outside


@pytest.mark.parametrize("module", sorted(SANDBOX_SIDE))
def test_sandbox_side_imports_only_stdlib_numpy_torch(module):
    """Does the code next to student code import only the standard library, numpy and torch?"""
    allowed = SANDBOX_SIDE[module]
    outside = {n for n in _imports(module) if n.split(".")[0] not in sys.stdlib_module_names
               and n.split(".")[0] not in allowed and n != "__future__"}
    assert not outside, outside


# The assignment's modules the sandbox executes: the probes (next to student code) and the
# oracles (in the sandbox's supervisor), for every assignment folder, the test fixtures included.
ASSIGNMENT_SANDBOX_FILES = sorted(
    p for root in (PACKAGE.parent / "assignments", PACKAGE.parent / "tests" / "assignments")
    for p in root.glob("*/*.py") if p.name in ("probes.py", "oracles.py"))


def test_the_assignments_sandbox_files_are_found():
    """Are the probes and oracles of the real assignment among the files checked below?"""
    names = {p.relative_to(PACKAGE.parent).as_posix() for p in ASSIGNMENT_SANDBOX_FILES}
    assert {"assignments/gradient_backward/probes.py", "assignments/gradient_backward/oracles.py"} <= names


@pytest.mark.parametrize("path", ASSIGNMENT_SANDBOX_FILES,
                         ids=[p.relative_to(PACKAGE.parent).as_posix() for p in ASSIGNMENT_SANDBOX_FILES])
def test_assignment_sandbox_files_import_only_stdlib_numpy_torch(path):
    """Do an assignment's probes and oracles import only the standard library, numpy and torch
    (no relative import either: the sandbox executes their text on its own)?"""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
    outside = {n for n in found if n.split(".")[0] not in sys.stdlib_module_names
               and n.split(".")[0] not in ("numpy", "torch") and n != "__future__"}
    assert not outside, outside


NBGRADER_SIDE = {m: p for m, p in MODULES.items() if m.startswith(f"{NBGRADER_PACKAGE}.")}


def _one_line(doc: str | None) -> bool:
    return bool(doc) and "\n" not in doc.strip()


@pytest.mark.parametrize("module", sorted(NBGRADER_SIDE))
def test_nbgrader_integration_in_nbgraders_style(module):
    """Does each module of the nbgrader integration have a one-line docstring, at most one public
    class, each class a one-line docstring, and every trait a `help=` text?"""
    tree = ast.parse(NBGRADER_SIDE[module].read_text())
    assert _one_line(ast.get_docstring(tree)), "module docstring"
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    assert len([c for c in classes if not c.name.startswith("_")]) <= 1, [c.name for c in classes]
    for cls in classes:
        assert _one_line(ast.get_docstring(cls)), cls.name
        for stmt in cls.body:
            call = stmt.value if isinstance(stmt, (ast.Assign, ast.AnnAssign)) else None
            while isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "tag":
                call = call.func.value        # Unicode(...).tag(config=True)
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id[:1].isupper() \
                    and call.func.id in _TRAITS:
                assert "help" in {k.arg for k in call.keywords}, f"{cls.name}.{stmt.targets[0].id}"


# traitlets' trait types the integration uses (a call of one in a class body declares a setting)
_TRAITS = {"Unicode", "Bool", "Int", "Float", "Set", "List", "Dict", "Callable", "Instance", "Enum"}


def test_no_new_import_cycle():
    """Is every import cycle among autograder modules one we already know and track?"""
    assert _cycles(_internal_graph()) <= set(KNOWN_CYCLES), _cycles(_internal_graph())


def test_no_import_cycle_at_all():
    """Are the autograder modules free of import cycles (lazy imports included)?"""
    assert not _cycles(_internal_graph())


def _code_strings_and_names(path: Path) -> set[str]:
    """The identifiers and string literals of a module, docstrings and comments left out."""
    tree = ast.parse(path.read_text())
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and n.body and isinstance(n.body[0], ast.Expr)
                  and isinstance(n.body[0].value, ast.Constant)}
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            out.add(node.value)
        elif isinstance(node, ast.Name):
            out.add(node.id)
        elif isinstance(node, ast.Attribute):
            out.add(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            out.add(node.name)
    return out


def test_autograder_names_no_part():
    """Does any autograder module name one of the assignment's parts in its code (not its docs)?"""
    parts = set(rubric.load("gradient_backward").part_names)
    named = {m: sorted(parts & {w for s in _code_strings_and_names(p) for w in _words(s)})
             for m, p in MODULES.items()}
    assert not {m: w for m, w in named.items() if w}


def _words(text: str) -> set[str]:
    return {w for w in "".join(c if c.isalnum() or c == "_" else " " for c in text).split()}


def test_the_assignment_loads_by_path_not_off_sys_path():
    """Does autograder/ stay off sys.path tricks and bare imports of the assignment's modules?"""
    offenders = {}
    for module, path in MODULES.items():
        if module == "autograder.sandbox.inside":
            continue  # runs in the sandbox from its own folder; it imports its sibling `wire`
        touches_path = any(isinstance(n, ast.Attribute) and n.attr == "path" and
                           isinstance(n.value, ast.Name) and n.value.id == "sys"
                           for n in ast.walk(ast.parse(path.read_text())))
        bare = {"cases", "reference", "verdicts", "mistakes", "probes", "oracles"} & _imports(module)
        if touches_path or bare:
            offenders[module] = sorted(bare) or ["sys.path"]
    assert not offenders, offenders


def test_design_lists_every_module():
    """Does docs/DESIGN.md's module table name every module of autograder/ (subpackages included)?"""
    design = (PACKAGE.parent / "docs" / "DESIGN.md").read_text()
    rows = {line.split("|")[1] for line in design.splitlines() if line.startswith("| `")}
    named = {name.strip("` ") for row in rows for name in row.split(",")}
    missing = set()
    for path in MODULES.values():
        rel = path.relative_to(PACKAGE).as_posix()
        # the subpackage's own table names its modules by file name
        if rel not in named and not (rel.startswith("nbgrader_integration/") and path.name in named):
            missing.add(rel)
    assert not missing, sorted(missing)
