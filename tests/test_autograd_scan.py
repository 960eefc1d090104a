"""The deny-by-default checker: honest code passes, autograd and code it cannot see through are findings."""
from __future__ import annotations

import pytest

from autograder.autograd_scan import locked_modules, scan

LOCKED = locked_modules(["import gzip\nimport math\nimport pickle\n\nimport numpy as np\nimport torch\n"
                         "from torch import nn\nfrom pathlib import Path\n"])

HONEST = {
    "debug prints and asserts": "def mse_grad(inp, targ):\n    d = inp.squeeze(-1) - targ\n"
                                "    print(d.shape, d.dtype, type(d).__name__)\n"
                                "    assert d.shape == targ.shape, f'{d.shape}'\n"
                                "    inp.g = (2. * d / d.shape[0]).unsqueeze(-1)\n",
    "numpy round trip": "import numpy as np\ndef relu_grad(inp, out):\n"
                        "    inp.g = torch.from_numpy(np.where(inp.numpy() > 0, out.g.numpy(), 0.))\n",
    "print of __dict__": "class Relu():\n    def __call__(self, inp):\n        self.inp = inp\n"
                         "        self.out = inp.clamp_min(0.)\n        print(self.out.__dict__)\n"
                         "        return self.out\n    def backward(self):\n"
                         "        self.inp.g = (self.inp > 0).float() * self.out.g\n",
    "einsum and a class name": "def lin_grad(inp, out, w, b):\n"
                               "    w.g = torch.einsum('bi,bj->ij', inp, out.g)\n"
                               "    inp.g = out.g @ w.t()\n    b.g = out.g.sum(0)\n"
                               "    print(inp.__class__.__name__)\n",
    "ABC base class": "from abc import ABC, abstractmethod\nclass Module(ABC):\n"
                      "    @abstractmethod\n    def forward(self, *args): ...\n",
    "getattr with a name": "def f(layer):\n    return getattr(layer, 'out', None), hasattr(layer, 'g')\n",
    "storing in .grad (a mistake, not autograd)": "def mse_grad(inp, targ):\n    inp.grad = inp * 0\n",
    "private attribute of self": "class Lin:\n    def __init__(self, w):\n        self._w = w\n",
}


@pytest.mark.parametrize("name", sorted(HONEST))
def test_honest_code_has_no_finding(name):
    """Does code a real student writes (prints, asserts, numpy, einsum, an ABC) pass?"""
    assert scan(HONEST[name], modules=LOCKED, own_backward=True) == []


def test_part_8_may_use_autograd_and_nn():
    """Are nn.Module, nn.Parameter and .backward() fine where autograd is allowed?"""
    code = ("class Model(nn.Module):\n    def __init__(self, a, b, c):\n        super().__init__()\n"
            "        self.w = nn.Parameter(torch.zeros(a, b))\n        self.l = nn.Linear(b, c)\n"
            "loss = Model(1, 2, 3).l.weight.sum()\nloss.backward()\nprint(Model(1, 2, 3).w.grad)\n")
    assert scan(code, autograd_allowed=True, modules=LOCKED) == []


AUTOGRAD = {
    ".backward()": "def mse_grad(inp, targ):\n    ((inp - targ) ** 2).mean().backward()\n",
    ".grad read": "def f(x):\n    return x.grad\n",
    "requires_grad": "def f(x):\n    x.requires_grad_()\n",
    "torch.autograd": "def f(x):\n    return torch.autograd.grad(x.sum(), [x])\n",
    "torch.func import": "from torch.func import vjp\n",
    "nn.Parameter by hand": "def f(x):\n    return nn.Parameter(x)\n",
    "getattr of grad": "def f(x):\n    return getattr(x, 'grad')\n",
    # Red team, after issue 9: tracking asked without the attribute, .grad read without its name.
    "requires_grad as a keyword": "def f(x):\n    return torch.zeros_like(x, requires_grad=True)\n",
    "requires_grad through setattr": "def f(x):\n    setattr(x, 'requires_grad', True)\n",
    "an optimizer's step reads .grad": "def f(z):\n    torch.optim.SGD([z], lr=1.0).step()\n",
    "torch.optim imported": "from torch import optim\n",
    ".grad in a format field": "def f(x):\n    return '{0.grad}'.format(x)\n",
    ".backward through a class's __dict__": "def f(l):\n    torch.Tensor.__dict__['backward'](l)\n",
}


@pytest.mark.parametrize("name", sorted(AUTOGRAD))
def test_autograd_is_a_finding(name):
    """Is each way of reaching autograd in a by-hand part named?"""
    kinds = {f.kind for f in scan(AUTOGRAD[name], modules=LOCKED)}
    assert "autograd" in kinds


UNVERIFIABLE = {
    "frames": "import sys\nf = sys._getframe(1)\n",
    "sys.modules": "import sys\nm = sys.modules['gc']\n",
    "gc": "import gc\nobjs = gc.get_objects()\n",
    "a module the notebook imported": "data = pickle.loads(b'')\n",
    "a class the notebook imported": "Path('/tmp').exists()\n",
    "closure": "c = torch.Tensor.backward.__closure__\n",
    "module as a value": "t = torch\n",
    "module attribute off the list": "x = torch.__dict__\n",
    "changing a module": "torch.equal = lambda a, b: True\n",
    "computed getattr": "def f(x):\n    return getattr(x, 'gr' + 'ad')\n",
    "getattr passed around": "g = getattr\n",
    "eval": "eval('1')\n",
    "star import": "from torch import *\n",
    "operator.attrgetter": "import operator\nf = operator.attrgetter('grad')\n",
    "traceback frames": "try:\n    1 / 0\nexcept Exception as e:\n    f = e.__traceback__.tb_frame\n",
    "class made by type()": "C = type('C', (), {})\n",
    "ctypes": "import ctypes\n",
    "too large": "x = 1\n" * 50_000,
    "nested too deeply": "x = " + "-" * 100_000 + "1\n",
}


@pytest.mark.parametrize("name", sorted(UNVERIFIABLE))
def test_what_the_checker_cannot_see_through_is_a_finding(name):
    """Is code the checker cannot verify reported (never passed), even where autograd is allowed?"""
    found = scan(UNVERIFIABLE[name], modules=LOCKED, autograd_allowed=True)
    assert "unverifiable" in {f.kind for f in found}, found


def test_text_python_cannot_parse_never_runs_so_is_no_finding():
    """Is a syntax error (which fails to compile in the sandbox too) left to the cell's error?"""
    assert scan("def f(:\n    pass\n") == []


RED_TEAM_HONEST = {
    "a version and a numpy statistic": "print(torch.__version__, np.std([1., 2.]))\n",
    "whether a tensor is tracked": "def f(inp):\n    print('tracked?', inp.requires_grad, inp.is_leaf)\n",
    "types and classes in prints": "print(w1.__class__, type(w1).__module__, isinstance(w1, type))\n",
    "copy, warnings, plotting style": "import copy\nimport warnings\nimport matplotlib.pyplot as plt\n"
                                      "plt.style.use('default')\nplt.xticks([])\nw = copy.deepcopy(w1)\n",
    "debug output on stderr": "import sys, warnings\ndef f(x):\n    warnings.warn('hm')\n"
                              "    print('debug', x, file=sys.stderr)\n    sys.stderr.flush()\n",
    "formatting numbers and shapes": "print('{:.3f} {} {0[0]}'.format(1.0, w1.shape), '{x.shape}'.format(x=w1))\n",
    "a tensor made without tracking": "z = torch.zeros(3, requires_grad=False)\n",
    "more tensor functions": "s = torch.std(w1) + torch.clone(w1).var() + torch.linalg.norm(w1)\n"
                             "ok = torch.cuda.is_available()\nidx = torch.randperm(3)\n",
}


@pytest.mark.parametrize("name", sorted(RED_TEAM_HONEST))
def test_debugging_code_a_reviewer_found_flagged_now_passes(name):
    """Does ordinary debugging code, once wrongly flagged, now pass?"""
    assert scan(RED_TEAM_HONEST[name], modules=LOCKED) == []


ESCAPES = {
    "a module reached through an allowed module's attribute": "x = nn.init.torch.sys\n",
    "typing evaluates string annotations": "import typing\nh = typing.get_type_hints(f)\n",
    # Red team, after issue 9: public names that lead to a function's globals or raw memory.
    "a Cython function's globals": "b = np.random.default_rng.func_globals['__builtins__']\n",
    "a class's __dict__ kept as a value": "d = torch.Tensor.__dict__\n",
    "numpy's ctypes": "c = np.zeros(1).ctypes\n",
    "a format template the checker cannot read": "def f(t, x):\n    return t.format(x)\n",
}


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_escapes_a_reviewer_found_are_findings(name):
    """Are the checker escapes found in review now findings?"""
    assert "unverifiable" in {f.kind for f in scan(ESCAPES[name], modules=LOCKED)}


def test_the_written_list_of_module_valued_names_is_what_the_libraries_hold():
    """Is LISTED_MODULE_NAMES exactly the names of the explicit lists that are modules in the
    installed torch, numpy and the rest (the scanner no longer imports them to ask)?"""
    import importlib
    import types

    from autograder import autograd_scan
    found, unimportable = set(), set()
    for module, names in [*autograd_scan.ALLOWED_MODULES.items(), *autograd_scan.AUTOGRAD_MODULE_ATTRS.items()]:
        if names is None:
            continue
        try:
            mod = importlib.import_module(module)
        except ImportError:
            unimportable.add(module)
            continue
        found |= {f"{module}.{n}" for n in names if isinstance(getattr(mod, n, None), types.ModuleType)}
    assert "torch" not in unimportable and "torch.nn" not in unimportable   # the check really ran
    assert found == {n for n in autograd_scan.LISTED_MODULE_NAMES if n.rpartition(".")[0] not in unimportable}
