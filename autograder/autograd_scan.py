"""Checks the code a student controls, on the trusted side, deny by default: autograd, and anything the checker cannot see through.

The checker reads exactly the text the sandbox compiles, with the same interpreter. Code
is allowed when every module is used only through listed attributes (never as a value),
every builtin is on a short list, and no attribute reaches autograd or Python's reflection
(frames, closures, globals, code objects...). Everything else is a finding:
- `autograd`: autograd machinery (parts done by hand only);
- `unverifiable`: code the checker cannot see through (reflection, dynamic code, system
  modules, or text it cannot parse within its bounds). It scores 0 in every part, with the
  reason, and is marked for manual review so the instructor can give the points back.
"""
from __future__ import annotations

import ast
import importlib
import re
import types
from dataclasses import dataclass
from functools import lru_cache

MAX_CHECK_CHARS = 200_000   # a cell larger than this is not parsed on the trusted side
MAX_NODES = 200_000         # nor one whose syntax tree is larger than this

# Modules a cell may use, each through these attributes only (None: any public attribute).
_TORCH = {
    "Tensor", "Size", "tensor", "as_tensor", "from_numpy", "zeros", "ones", "empty", "full", "eye",
    "arange", "linspace", "zeros_like", "ones_like", "empty_like", "full_like", "rand", "randn",
    "randint", "rand_like", "randn_like", "manual_seed", "matmul", "mm", "bmm", "mv", "dot", "outer",
    "einsum", "tensordot", "addmm", "sum", "mean", "prod", "cumsum", "max", "min", "maximum",
    "minimum", "argmax", "argmin", "clamp", "clamp_min", "clamp_max", "clip", "where", "relu",
    "sigmoid", "tanh", "exp", "log", "sqrt", "abs", "sign", "pow", "square", "neg", "add", "sub",
    "mul", "div", "gt", "ge", "lt", "le", "eq", "ne", "heaviside", "stack", "cat", "vstack",
    "hstack", "t", "transpose", "permute", "reshape", "squeeze", "unsqueeze", "flatten",
    "broadcast_to", "diag", "norm", "allclose", "isclose", "equal", "all", "any", "isnan",
    "isfinite", "numel", "is_tensor", "no_grad", "inference_mode", "set_printoptions", "float16",
    "float32", "float64", "float", "double", "half", "int32", "int64", "long", "int", "bool",
    "uint8", "dtype", "device", "inf", "nan", "pi", "e", "nn", "testing", "round", "floor", "ceil",
    "softmax", "log_softmax", "count_nonzero", "sort", "argsort", "topk", "split", "chunk",
    "flip", "roll", "tile", "repeat_interleave", "diagonal", "trace", "kron", "lerp",
    "get_default_dtype", "set_default_dtype", "from_dlpack", "asarray", "std", "var",
    "clone", "randperm", "FloatTensor", "DoubleTensor", "LongTensor", "linalg", "cuda", "unique",
    "minimum", "nonzero", "masked_fill", "isinf", "sign", "amax", "amin", "logsumexp",
}
_NN = {"Module", "Linear", "ReLU", "Sequential", "ModuleList", "ModuleDict", "Parameter",
       "MSELoss", "functional", "init", "Identity", "Flatten", "Softmax", "Sigmoid", "Tanh"}
_NN_FUNCTIONAL = {"relu", "linear", "mse_loss", "softmax", "log_softmax", "sigmoid", "tanh"}
_NUMPY = {
    "array", "asarray", "zeros", "ones", "empty", "full", "eye", "arange", "linspace",
    "zeros_like", "ones_like", "empty_like", "full_like", "dot", "matmul", "einsum", "outer",
    "tensordot", "sum", "mean", "prod", "max", "min", "maximum", "minimum", "argmax", "argmin",
    "clip", "where", "exp", "log", "sqrt", "abs", "sign", "square", "stack", "concatenate",
    "vstack", "hstack", "transpose", "reshape", "squeeze", "expand_dims", "allclose", "isclose",
    "array_equal", "all", "any", "isnan", "isfinite", "float16", "float32", "float64", "int32",
    "int64", "bool_", "ndarray", "newaxis", "inf", "nan", "pi", "e", "random", "testing",
    "set_printoptions", "round", "floor", "ceil", "diag", "trace", "broadcast_to",
    "ascontiguousarray", "count_nonzero", "heaviside", "linalg", "flip", "tile", "repeat",
    "std", "var", "sort", "unique", "argsort", "abs", "isinf", "nonzero", "percentile", "median",
    "cumsum", "diff", "log1p", "expm1", "power", "multiply", "subtract", "add", "divide",
}
ALLOWED_MODULES = {
    "torch": _TORCH, "torch.nn": _NN, "torch.nn.functional": _NN_FUNCTIONAL, "numpy": _NUMPY,
    # Short explicit lists where a module could run text as code (typing.get_type_hints evals
    # string annotations); "any public attribute" only for modules that cannot.
    "math": None, "abc": None, "itertools": None, "random": None, "time": None,
    "typing": {"List", "Tuple", "Dict", "Optional", "Union", "Any", "Callable", "Sequence",
               "Iterable", "Iterator", "Mapping", "Set", "NamedTuple"},
    "functools": {"reduce", "partial", "wraps", "lru_cache", "cache"},
    "collections": {"OrderedDict", "defaultdict", "Counter", "deque", "namedtuple"},
    "dataclasses": {"dataclass", "field"},
    "copy": {"copy", "deepcopy"}, "warnings": {"warn", "filterwarnings", "simplefilter"},
    "timeit": {"default_timer", "timeit"},
    "json": {"dumps", "loads"},
    # Printing to stderr while debugging; nothing of sys that reaches frames or modules.
    "sys": {"stdout", "stderr", "version", "version_info", "float_info", "maxsize", "getsizeof"},
    "torch.linalg": {"norm", "vector_norm", "matrix_norm", "inv", "solve", "det"},
    "torch.cuda": {"is_available", "device_count"},
    "torch.nn.init": {"kaiming_normal_", "kaiming_uniform_", "normal_", "uniform_", "zeros_",
                      "ones_", "constant_", "xavier_normal_", "xavier_uniform_"},
    "matplotlib.pyplot.style": {"use", "context", "available"},
    "pprint": {"pprint", "pformat"}, "torch.testing": {"assert_close"},
    "numpy.testing": {"assert_allclose", "assert_array_equal", "assert_almost_equal"},
    "numpy.random": None, "numpy.linalg": None, "torch.optim": {"SGD", "Adam"},
    # Debugging and plotting in a notebook: what they display, never what they could reach.
    "IPython.display": {"display", "Markdown", "HTML", "Math", "clear_output"},
    "matplotlib.pyplot": {
        "plot", "figure", "subplots", "subplot", "show", "xlabel", "ylabel", "title", "legend",
        "imshow", "hist", "scatter", "savefig", "close", "grid", "xlim", "ylim", "yscale",
        "xscale", "tight_layout", "axhline", "axvline", "bar", "text", "colorbar", "semilogy",
        "loglog", "suptitle", "gca", "gcf", "rcParams", "xticks", "yticks", "style"},
}


# The names in the explicit lists (above and AUTOGRAD_MODULE_ATTRS) that are modules themselves:
# one not in ALLOWED_MODULES would be looked through with object rules, so it stays refused.
# Written out rather than found by importing (torch: a second of every worker's start);
# tests/test_autograd_scan.py imports every listed module and checks that this is all of them.
LISTED_MODULE_NAMES = frozenset({"torch.autograd", "torch.optim", "torch.linalg", "torch.cuda",
                                 "torch.testing", "torch.nn", "torch.nn.functional",
                                 "torch.nn.init", "numpy.random", "numpy.testing", "numpy.linalg",
                                 "matplotlib.pyplot.style"})
_UNLISTED_MODULE_NAMES = LISTED_MODULE_NAMES - ALLOWED_MODULES.keys()


@lru_cache(maxsize=None)
def _public_api(module: str) -> frozenset[str]:
    """A module listed with "any public attribute": its public names that are not modules
    themselves (`typing.sys` or `dataclasses.inspect` would lead anywhere)."""
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return frozenset()
    return frozenset(n for n in dir(mod) if not n.startswith("_")
                     and not isinstance(getattr(mod, n, None), types.ModuleType))
# In parts where autograd is allowed (part 8), these may be used too.
AUTOGRAD_MODULE_ATTRS = {"torch": {"autograd", "enable_grad", "set_grad_enabled", "optim"},
                         "torch.nn": set()}
# Modules that are autograd themselves: an optimizer's step reads every `.grad`.
AUTOGRAD_MODULES = {"torch.optim"}
# Names a notebook's own modules are usually bound to before the student's cells run.
DEFAULT_MODULE_NAMES = {"torch": "torch", "nn": "torch.nn", "np": "numpy", "math": "math",
                        "F": "torch.nn.functional", "sys": "sys"}

SAFE_BUILTINS = {
    "abs", "all", "any", "bool", "dict", "divmod", "enumerate", "filter", "float", "format",
    "frozenset", "int", "isinstance", "issubclass", "iter", "len", "list", "map", "max", "min",
    "next", "object", "pow", "print", "range", "repr", "reversed", "round", "set", "slice",
    "sorted", "str", "sum", "super", "tuple", "zip", "callable", "hash", "id", "chr", "ord",
    "bin", "hex", "complex", "property", "staticmethod", "classmethod", "NotImplemented",
    "Ellipsis", "hasattr", "getattr", "setattr", "type", "bytes", "any",
}
FORBIDDEN_BUILTINS = {"eval", "exec", "compile", "__import__", "globals", "vars", "locals",
                      "open", "input", "breakpoint", "memoryview", "delattr",
                      "exit", "quit", "copyright", "credits", "license", "bytearray"}
NAME_ACCESS = {"getattr", "setattr", "hasattr"}

# Autograd, as attributes of any object.
AUTOGRAD_ATTRS = {"grad", "_grad", "grad_fn", "_grad_fn", "requires_grad", "requires_grad_",
                  "retain_grad", "retains_grad", "register_hook", "backward", "_backward_hooks",
                  "is_leaf", "autograd", "enable_grad", "set_grad_enabled", "func", "_C",
                  "functorch", "_execution_engine", "_engine_run_backward", "vjp", "jvp",
                  "jacrev", "jacfwd", "jacobian", "hessian", "grad_and_value", "Parameter",
                  "optim"}
# Reflection: what lets code reach objects it was not given.
REFLECTION_ATTRS = {
    "f_back", "f_globals", "f_locals", "f_builtins", "f_code", "gi_frame", "gi_code", "cr_frame",
    "ag_frame", "tb_frame", "tb_next", "co_code", "co_consts", "co_names",
    # Cython and legacy function attributes (numpy's are public): the function's module globals
    # and builtins, and numpy's way to raw memory and the ctypes module.
    "func_globals", "func_code", "func_closure", "func_defaults", "func_dict", "ctypes",
}
ALLOWED_DUNDERS = {"__init__", "__call__", "__name__", "__len__", "__repr__",
                   "__str__", "__getitem__", "__setitem__", "__iter__", "__doc__", "__qualname__",
                   "__class__", "__eq__", "__add__", "__mul__", "__matmul__", "__sub__",
                   "__truediv__", "__neg__", "__enter__", "__exit__", "__contains__", "__hash__",
                   "__post_init__", "__slots__", "__annotations__", "__version__", "__module__"}


@dataclass(frozen=True)
class Finding:
    kind: str     # autograd | unverifiable
    text: str     # plain language: "uses `.grad` (autograd)"
    # Inside a function's body (or an import): it runs only when that function is called,
    # so it reaches only the parts whose code calls it. Elsewhere it runs with the cell.
    contained: bool = False

    def __str__(self) -> str:
        return self.text


def locked_modules(sources: list[str]) -> dict[str, str]:
    """Names the instructor's locked cells bind to modules ({"np": "numpy", "pickle": "pickle"}):
    student code may use the allowed ones through their attributes, and never the others."""
    names: dict[str, str] = {}
    for source in sources:
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    names[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    if full in ALLOWED_MODULES or node.module not in ALLOWED_MODULES:
                        names[a.asname or a.name] = full
    return names


def scan(code: str, *, autograd_allowed: bool = False, own_backward: bool = False,
         modules: dict[str, str] | None = None) -> list[Finding]:
    """Findings for one cell's code (see `_scan`); a text seen before is not parsed again."""
    return list(_scan_cached(code, autograd_allowed, own_backward,
                             tuple(sorted((modules or {}).items()))))


@lru_cache(maxsize=4096)
def _scan_cached(code, autograd_allowed, own_backward, modules) -> tuple[Finding, ...]:
    return tuple(_scan(code, autograd_allowed=autograd_allowed, own_backward=own_backward,
                       modules=dict(modules)))


def _scan(code: str, *, autograd_allowed: bool = False, own_backward: bool = False,
          modules: dict[str, str] | None = None) -> list[Finding]:
    """Findings for one cell's code; empty when everything in it is on the allowed lists.

    `own_backward`: the layer parts define and call their own `backward()` methods, so there
    a `.backward()` call is left to the run-time tripwire. `modules`: names already bound to
    modules when the cell runs (from the locked cells), on top of the usual ones."""
    if len(code) > MAX_CHECK_CHARS:
        return [Finding("unverifiable", f"is too large to check ({len(code):,} characters; "
                                        f"the limit is {MAX_CHECK_CHARS:,})")]
    try:
        tree = ast.parse(code)
    except SyntaxError:
        # The sandbox compiles this same text with the same interpreter: it fails there too,
        # so none of it runs and there is nothing to check.
        return []
    except (RecursionError, MemoryError, ValueError, OverflowError) as exc:
        return [Finding("unverifiable", f"could not be checked ({type(exc).__name__} while "
                                        "parsing: nested too deeply or too large)")]
    try:
        return _Checker(autograd_allowed, own_backward, modules or {}).run(tree)
    except (RecursionError, MemoryError) as exc:
        return [Finding("unverifiable", f"could not be checked ({type(exc).__name__}: nested "
                                        "too deeply or too large)")]


class _Checker:
    def __init__(self, autograd_allowed, own_backward, modules):
        self.autograd_allowed, self.own_backward = autograd_allowed, own_backward
        self.modules = dict(DEFAULT_MODULE_NAMES)
        self.system = set(_SYSTEM_NAMES)
        for name, module in modules.items():
            if module in ALLOWED_MODULES:
                self.modules[name] = module
            else:
                self.system.add(name)  # e.g. `pickle` or `Path`, bound by a locked cell
        self.findings: list[Finding] = []
        self.parents: dict[int, ast.AST] = {}
        self.current = None  # the node being checked (None while reading imports)

    def add(self, kind, text):
        if kind == "autograd" and self.autograd_allowed:
            return
        f = Finding(kind, text, self._contained(self.current))
        if f not in self.findings:
            self.findings.append(f)

    def run(self, tree):
        nodes = 0
        for node in ast.walk(tree):
            nodes += 1
            if nodes > MAX_NODES:
                return [Finding("unverifiable", "is too large to check (its syntax tree has "
                                                f"more than {MAX_NODES:,} nodes)")]
            for child in ast.iter_child_nodes(node):
                self.parents[id(child)] = node
        for node in ast.walk(tree):
            self.imports(node)
        for node in ast.walk(tree):
            self.visit(node)
        return self.findings

    # -- imports: bind names to modules, refuse modules off the list --

    def imports(self, node):
        if isinstance(node, ast.Import):
            for alias in node.names:
                self.module_import(alias.name, alias.asname)
        elif isinstance(node, ast.ImportFrom):
            mod = "." * node.level + (node.module or "")
            for alias in node.names:
                if alias.name == "*":
                    self.add("unverifiable", f"uses `from {mod} import *`, which hides what it brings in")
                    continue
                full = f"{mod}.{alias.name}"
                if (full in AUTOGRAD_MODULES or mod in AUTOGRAD_MODULES) and not self.autograd_allowed:
                    self.add("autograd", f"imports from `{full}` (an optimizer's step reads autograd's `.grad`)")
                if full in ALLOWED_MODULES:
                    self.modules[alias.asname or alias.name] = full
                elif not self.attr_allowed(mod, alias.name):
                    self.refuse_module(full)

    def module_import(self, name, asname):
        if name in AUTOGRAD_MODULES and not self.autograd_allowed:
            self.add("autograd", f"imports `{name}` (an optimizer's step reads autograd's `.grad`)")
        if name not in ALLOWED_MODULES:
            self.refuse_module(name)
        elif asname:
            self.modules[asname] = name
        else:
            self.modules[name.split(".")[0]] = name.split(".")[0]

    def refuse_module(self, name):
        autograd = any(w in name.split(".") for w in ("autograd", "func", "functorch"))
        if autograd:
            self.add("autograd", f"imports `{name}` (autograd)")
        else:
            self.add("unverifiable", f"imports `{name}`, which the checker cannot see through")

    def attr_allowed(self, module, attr):
        if attr in ("__version__", "__name__", "__doc__"):
            return True  # strings, printed while debugging
        if f"{module}.{attr}" in _UNLISTED_MODULE_NAMES:
            return False  # a module off the list would be looked through with object rules
        allowed = ALLOWED_MODULES.get(module, set())
        if self.autograd_allowed and attr in AUTOGRAD_MODULE_ATTRS.get(module, ()):
            return True
        if attr == "Parameter" and module == "torch.nn":
            return self.autograd_allowed
        if allowed is None:
            allowed = _public_api(module)
        return attr in allowed

    # -- every node --

    def _contained(self, node) -> bool:
        """Is `node` inside a function's body (run only when called)? An import (None) only
        binds a name."""
        if node is None:
            return True
        child, parent = node, self.parents.get(id(node))
        while parent is not None:
            if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                    any(child is stmt for stmt in parent.body):
                return True
            if isinstance(parent, ast.Lambda) and child is parent.body:
                return True
            child, parent = parent, self.parents.get(id(parent))
        return False

    def visit(self, node):
        self.current = node
        if isinstance(node, ast.Name):
            self.name(node)
        elif isinstance(node, ast.Attribute):
            self.attribute(node)
        elif isinstance(node, ast.Call):
            self.call(node)

    def name(self, node):
        name = node.id
        if name in self.modules and isinstance(node.ctx, ast.Load):
            parent = self.parents.get(id(node))
            if not (isinstance(parent, ast.Attribute) and parent.value is node):
                self.add("unverifiable", f"uses the module `{name}` as a value (only its "
                                         "attributes may be used)")
            return
        if name in self.modules:
            return  # rebinding a module's name: later uses are checked as that name's
        if name in FORBIDDEN_BUILTINS:
            self.add("unverifiable", f"uses `{name}`, which can run or reach hidden code")
        elif name.startswith("__") and name.endswith("__") and name != "__name__":
            self.add("unverifiable", f"uses `{name}`, which the checker cannot see through")
        elif name in self.system:
            self.add("unverifiable", f"uses `{name}`, which the checker cannot see through")
        elif name in NAME_ACCESS and isinstance(node.ctx, ast.Load):
            parent = self.parents.get(id(node))
            if not (isinstance(parent, ast.Call) and parent.func is node):
                self.add("unverifiable", f"passes `{name}` around, which hides what it reaches")

    def attribute(self, node):
        attr = node.attr
        base = self.module_of(node.value)
        if base is not None:
            if not self.attr_allowed(base, attr):
                if attr in AUTOGRAD_ATTRS or attr in ("autograd", "func"):
                    self.add("autograd", f"uses `{_dotted(node)}` (autograd)")
                else:
                    self.add("unverifiable", f"uses `{_dotted(node)}`, which the checker "
                                             "cannot see through")
            elif isinstance(node.ctx, (ast.Store, ast.Del)):
                self.add("unverifiable", f"changes `{_dotted(node)}`, a module's attribute")
            return
        self.object_attribute(node, attr)

    def object_attribute(self, node, attr):
        if attr == "backward":
            if not self.own_backward:
                self.add("autograd", "calls `.backward()` (autograd)")
            return
        parent = self.parents.get(id(node))
        if attr in ("requires_grad", "is_leaf", "retains_grad") and isinstance(node.ctx, ast.Load) \
                and not (isinstance(parent, ast.Call) and parent.func is node):
            return  # printing whether autograd would track a tensor runs no autograd
        if attr in AUTOGRAD_ATTRS:
            if attr == "Parameter":
                self.add("autograd", "uses `nn.Parameter`, which makes autograd track the tensor")
            elif attr == "grad" and isinstance(node.ctx, (ast.Store, ast.Del)):
                return  # storing a gradient in .grad runs no autograd: the hidden checks say "use .g"
            elif attr in ("grad", "_grad"):
                self.add("autograd", f"uses `.{attr}`, autograd's gradient (store yours in `.g`)")
            else:
                self.add("autograd", f"uses `.{attr}` (autograd)")
            return
        if attr in REFLECTION_ATTRS:
            self.add("unverifiable", f"uses `.{attr}`, which reaches the interpreter's internals "
                                     "(frames, code, globals or raw memory)")
            return
        if attr == "__dict__":
            self.namespace(node, parent)
            return
        if attr.startswith("__") and attr.endswith("__"):
            if attr in ALLOWED_DUNDERS:
                return
            self.add("unverifiable", f"uses `.{attr}`, which the checker cannot see through")
            return
        if attr.startswith("_") and not (isinstance(node.value, ast.Name)
                                         and node.value.id in ("self", "cls")):
            self.add("unverifiable", f"uses the private attribute `.{attr}`")

    def namespace(self, node, parent):
        """`x.__dict__` is fine printed, and read with a written key is read like the attribute
        of that name; anything else looks names up by text the checker cannot follow."""
        if isinstance(parent, ast.Call) and isinstance(parent.func, ast.Name) and \
                parent.func.id == "print" and node in parent.args:
            return
        if isinstance(parent, ast.Subscript) and parent.value is node and \
                isinstance(parent.slice, ast.Constant) and isinstance(parent.slice.value, str):
            fake = ast.Attribute(value=node.value, attr=parent.slice.value, ctx=parent.ctx)
            self.parents[id(fake)] = self.parents.get(id(parent))
            self.object_attribute(fake, parent.slice.value)
            return
        self.add("unverifiable", "uses `.__dict__` other than to print it or read a written key")

    def module_of(self, node):
        """The module an expression names (`torch`, `torch.nn`...), or None."""
        if isinstance(node, ast.Name):
            return self.modules.get(node.id)
        if isinstance(node, ast.Attribute):
            inner = self.module_of(node.value)
            if inner is not None:
                full = f"{inner}.{node.attr}"
                if full in ALLOWED_MODULES:
                    return full
        return None

    def call(self, node):
        func = node.func
        for kw in node.keywords:
            if kw.arg == "requires_grad" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                self.add("autograd", "asks autograd to track a tensor (`requires_grad=...`)")
        if isinstance(func, ast.Attribute) and func.attr in ("format", "format_map"):
            self.format_fields(func.value)
        if isinstance(func, ast.Name) and func.id in NAME_ACCESS:
            if len(node.args) < 2:
                return
            attr = node.args[1]
            if not (isinstance(attr, ast.Constant) and isinstance(attr.value, str)):
                self.add("unverifiable", f"calls `{func.id}()` with a computed name")
                return
            target = self.module_of(node.args[0])
            ctx = ast.Store() if func.id == "setattr" else ast.Load()
            fake = ast.Attribute(value=node.args[0], attr=attr.value, ctx=ctx)
            self.parents[id(fake)] = node
            if target is not None:
                self.attribute(fake)
            else:
                self.object_attribute(fake, attr.value)
        elif isinstance(func, ast.Name) and func.id == "type" and len(node.args) > 1:
            self.add("unverifiable", "creates a class with `type(...)`")

    def format_fields(self, template):
        """`str.format` looks attributes up by the names in its fields (`'{0.grad}'`): those are
        checked as attributes; a template the checker cannot read is a finding."""
        import string
        if not (isinstance(template, ast.Constant) and isinstance(template.value, str)):
            if isinstance(template, ast.JoinedStr) or not isinstance(template, ast.Constant):
                self.add("unverifiable", "calls `.format()` on a text the checker cannot read "
                                         "(its fields may look attributes up)")
            return
        try:
            parsed = list(string.Formatter().parse(template.value))
            fields = [f for _, f, _, _ in parsed if f]
            fields += [f for _, _, spec, _ in parsed if spec   # nested: '{0:{1.x}}'
                       for _, f, _, _ in string.Formatter().parse(spec) if f]
        except ValueError:
            return   # the call raises before looking anything up
        for field in fields:
            for attr in re.findall(r"\.([^.\[]*)", field):
                fake = ast.Attribute(value=ast.Name(id="_", ctx=ast.Load()), attr=attr, ctx=ast.Load())
                self.parents[id(fake)] = template
                self.object_attribute(fake, attr)


# Standard modules a locked cell may have imported (the lesson's setup imports gzip and
# pickle): using them from student code is never needed by hand.
_SYSTEM_NAMES = {"os", "gc", "inspect", "ctypes", "importlib", "builtins", "subprocess",
                 "pickle", "marshal", "types", "threading", "multiprocessing", "socket", "signal",
                 "resource", "io", "pathlib", "Path", "shutil", "gzip", "operator", "weakref",
                 "code", "codeop", "dis", "traceback", "linecache", "mmap", "tempfile", "atexit",
                 "faulthandler", "tracemalloc", "sysconfig", "site", "runpy", "pkgutil", "copyreg",
                 "probes", "wire", "get_ipython"}


def _dotted(node) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def imported_names(code: str) -> set[str]:
    """Names a cell binds by importing (a module is the same module whoever imports it)."""
    try:
        tree = ast.parse(code) if len(code) <= MAX_CHECK_CHARS else None
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        tree = None
    if tree is None:
        return set()
    return {(a.asname or a.name).split(".")[0] for n in ast.walk(tree)
            if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}


def names_loaded(code: str) -> set[str] | None:
    """Every name a cell reads anywhere in it (None when it cannot be told)."""
    if len(code) > MAX_CHECK_CHARS:
        return None
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def scan_text(code: str, **kw) -> list[str]:
    """The findings as sentences (for tests and tools)."""
    return [f.text for f in scan(code, **kw)]
