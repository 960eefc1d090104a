"""The public checks: explain() names the agreed mistakes, and each check catches real wrong answers."""
from __future__ import annotations

import linecache
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "source" / "gradient_backward"))
import gbcheck  # noqa: E402
from gbcheck import explain  # noqa: E402

MISTAKE_IDS = {"factor_2", "factor_half", "factor_n", "factor_1_over_n", "sign_flipped", "transposed",
               "shape_n_not_n1", "broadcast_nn", "batch_not_summed", "summed_wrong_axis", "mean_not_sum",
               "g_only_returned", "g_missing", "autograd_used", "wrong_values"}

N = 7
E_COL = torch.randn(N, 1, generator=torch.Generator().manual_seed(0))    # an activation's gradient (n, 1)
E_W = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))      # a weight's gradient (in, out)
E_B = torch.randn(3, generator=torch.Generator().manual_seed(2))         # a bias's gradient (out,)


@pytest.mark.parametrize("name, got, expected, kw, mistake", [
    ("inp.g", E_COL.clone(), E_COL, {}, None),
    ("inp.g", E_COL * 2, E_COL, {"n": N}, "factor_2"),
    ("inp.g", E_COL / 2, E_COL, {"n": N}, "factor_half"),
    ("inp.g", E_COL * N, E_COL, {"n": N}, "factor_n"),
    ("inp.g", E_COL / N, E_COL, {"n": N}, "factor_1_over_n"),
    ("b.g", E_B / N, E_B, {"n": N}, "mean_not_sum"),
    ("w1.g", E_W / N, E_W, {"n": N}, "mean_not_sum"),
    ("inp.g", -E_COL, E_COL, {"n": N}, "sign_flipped"),
    ("w.g", E_W.T, E_W, {"n": N}, "transposed"),
    ("inp.g", E_COL.squeeze(-1), E_COL, {"n": N}, "shape_n_not_n1"),
    ("inp.g", E_COL - E_COL.T, E_COL, {"n": N}, "broadcast_nn"),
    ("w.g", E_W.expand(N, 5, 3) / N, E_W, {"n": N}, "batch_not_summed"),
    ("b.g", torch.ones(N), E_B, {"n": N}, "summed_wrong_axis"),
    ("inp.g", None, E_COL, {"returned": E_COL.clone()}, "g_only_returned"),
    ("inp.g", None, E_COL, {}, "g_missing"),
    ("inp.g", E_COL.clone(), E_COL, {"autograd_used": True}, "autograd_used"),
    ("inp.g", E_COL + 1, E_COL, {"n": N}, "wrong_values"),
])
def test_explain_names_the_mistake(name, got, expected, kw, mistake):
    """Does explain() return the agreed mistake id (None for a match) and a message naming the tensor?"""
    found, message = explain(name, got, expected, **kw)
    assert found == mistake, message
    assert found is None or found in MISTAKE_IDS
    assert name in message


def test_explain_fallback_shows_first_differing_values():
    """Does an unrecognised difference list where it differs, with got and expected values?"""
    got = E_W.clone()
    got[1, 2] += 3
    mistake, message = explain("w.g", got, E_W)
    assert mistake == "wrong_values" and "at [1, 2]" in message and "expected" in message


def define(code: str, **globals_) -> dict:
    """Student code run in its own namespace, as a notebook cell would be."""
    ns = {"torch": torch, "nn": torch.nn, **globals_}
    exec(code, ns)
    return ns


def fails_with(check, *args) -> str:
    with pytest.raises(AssertionError) as info:
        check(*args)
    return str(info.value)


def test_mse_grad_without_unsqueeze_is_reported_as_a_shape_mistake():
    """Is an mse_grad that leaves inp.g as (n,) told to keep the (n, 1) shape?"""
    ns = define("def mse_grad(inp, targ):\n    inp.g = 2. * (inp.squeeze(-1) - targ) / inp.shape[0]")
    assert "(7,) but must have the shape" in fails_with(gbcheck.check_mse_grad, ns["mse_grad"])


def test_mse_grad_without_squeeze_is_reported_as_an_nn_broadcast():
    """Is an mse_grad that subtracts (n,) from (n, 1) told about the (n, n) broadcast?"""
    ns = define("def mse_grad(inp, targ):\n    inp.g = 2. * (inp - targ) / inp.shape[0]")
    assert "broadcast to (n, n)" in fails_with(gbcheck.check_mse_grad, ns["mse_grad"])


def test_mse_grad_by_autograd_is_caught():
    """Is an mse_grad that calls .backward() told that autograd is not allowed?"""
    ns = define("def mse_grad(inp, targ):\n"
                "    x = inp.detach().requires_grad_()\n"
                "    (x.squeeze(-1) - targ).pow(2).mean().backward()\n"
                "    inp.g = x.grad")
    assert "autograd was used" in fails_with(gbcheck.check_mse_grad, ns["mse_grad"])


def test_relu_grad_that_forgets_out_g_fails():
    """Is a relu_grad that drops the incoming gradient out.g rejected?"""
    ns = define("def relu_grad(inp, out):\n    inp.g = (inp > 0).float()")
    assert "wrong values" in fails_with(gbcheck.check_relu_grad, ns["relu_grad"])


def test_lin_grad_with_mean_bias_and_transposed_weight_names_both():
    """Does a lin_grad with b.g averaged and w.g transposed get both mistakes named?"""
    ns = define("def lin_grad(inp, out, w, b):\n"
                "    inp.g = out.g @ w.t()\n"
                "    w.g = (out.g.t() @ inp)\n"
                "    b.g = out.g.mean(0)")
    message = fails_with(gbcheck.check_lin_grad, ns["lin_grad"])
    assert "w.g looks transposed" in message and "b.g is n=7 times too small" in message


GLOBALS = dict(w1=torch.randn(6, 4), b1=torch.zeros(4), w2=torch.randn(4, 1), b2=torch.zeros(1))
PARTS_1_TO_4 = """
def lin(x, w, b): return x @ w + b
def relu(x): return x.clamp_min(0.)
def mse(out, targ): return (out.squeeze(-1) - targ).pow(2).mean()
def mse_grad(inp, targ): inp.g = MSE_FACTOR * (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]
def relu_grad(inp, out): inp.g = (inp > 0).float() * out.g
def lin_grad(inp, out, w, b):
    inp.g = out.g @ w.t()
    w.g = inp.t() @ out.g
    b.g = out.g.sum(0)
def forward_and_backward(inp, targ):
    l1 = lin(inp, w1, b1)
    l2 = relu(l1)
    out = lin(l2, w2, b2)
    mse_grad(out, targ)
    lin_grad(l2, out, w2, b2)
    relu_grad(l1, l2)
    lin_grad(inp, l1, w1, b1)
"""


def test_forward_and_backward_passes_when_parts_1_to_3_are_right(capsys):
    """Does a correct forward_and_backward pass its check and print one success line?"""
    ns = define(PARTS_1_TO_4.replace("MSE_FACTOR", "2."), **GLOBALS)
    gbcheck.check_forward_and_backward(ns["forward_and_backward"])
    assert capsys.readouterr().out.startswith("Part 4 (forward_and_backward): ")


def test_forward_and_backward_failing_only_through_part_1_blames_part_1():
    """When only mse_grad is wrong, does part 4's check say part 4 is right and part 1 must be fixed?"""
    ns = define(PARTS_1_TO_4.replace("MSE_FACTOR", "1."), **GLOBALS)
    message = fails_with(gbcheck.check_forward_and_backward, ns["forward_and_backward"])
    assert "right with reference versions of parts 1-3" in message and "Part 1 (mse_grad) fails" in message


def test_forward_and_backward_in_the_wrong_order_fails_on_its_own():
    """Is a backward pass that skips relu_grad blamed on part 4 itself?"""
    code = PARTS_1_TO_4.replace("MSE_FACTOR", "2.").replace("    relu_grad(l1, l2)\n", "    l1.g = l2.g\n")
    ns = define(code, **GLOBALS)
    message = fails_with(gbcheck.check_forward_and_backward, ns["forward_and_backward"])
    assert "Part 4 (forward_and_backward) failed" in message and "reference versions" not in message


LIN_7 = """
class Module():
    def __call__(self, *args):
        self.args = args
        self.out = self.forward(*args)
        return self.out
    def backward(self): self.bwd(self.out, *self.args)
class Lin(Module):
    def __init__(self, w, b): self.w, self.b = w, b
    def forward(self, inp): return inp @ self.w + self.b
    def bwd(self, out, inp):
        inp.g = out.g @ self.w.t()
        self.w.g = WG
        self.b.g = out.g.sum(0)
"""


@pytest.mark.parametrize("wg, expected_message", [
    ("inp.t() @ out.g", None),
    ('torch.einsum("bi,bj->ij", inp, out.g)', "calls einsum"),
    ("(inp.unsqueeze(-1) * out.g.unsqueeze(1)).sum(0)", "outer product"),
    ('torch.einsum("bi,bj->bij", inp, out.g).sum(0)', "outer product"),
])
def test_lin_without_einsum_rejects_einsum_and_outer_products(wg, expected_message):
    """Does part 7's check accept one matrix product with @ and reject einsum (as the text says) and the
    (n, in, out) outer product?"""
    ns = define(LIN_7.replace("WG", wg))
    if expected_message is None:
        gbcheck.check_lin_without_einsum(ns["Lin"])
    else:
        assert expected_message in fails_with(gbcheck.check_lin_without_einsum, ns["Lin"])


def test_lin_without_einsum_blames_a_broken_module_on_part_6():
    """When Lin is right but Module.backward is broken, does part 7's check point at part 6?"""
    ns = define(LIN_7.replace("WG", "inp.t() @ out.g").replace("self.bwd(self.out, *self.args)", "pass"))
    assert "part 6 (module_forward) needs fixing" in fails_with(gbcheck.check_lin_without_einsum, ns["Lin"])


def test_nn_module_with_layers_in_a_plain_list_is_told_to_register_them():
    """Is a Model whose layers sit in a plain list told that parameters() cannot see them?"""
    ns = define("class Model(nn.Module):\n"
                "    def __init__(self, n_in, nh, n_out):\n"
                "        super().__init__()\n"
                "        self.layers = [nn.Linear(n_in, nh), nn.ReLU(), nn.Linear(nh, n_out)]\n"
                "    def forward(self, x, targ):\n"
                "        for l in self.layers: x = l(x)\n"
                "        return (x.squeeze(-1) - targ).pow(2).mean()\n")
    assert "nn.ModuleList" in fails_with(gbcheck.check_nn_module, ns["Model"])


def test_checks_let_not_implemented_error_through():
    """Does a check pass on the student's NotImplementedError unchanged, so the stub's message shows?"""
    ns = define("def relu_grad(inp, out):\n    raise NotImplementedError('Part 2 (relu_grad): write it')")
    with pytest.raises(NotImplementedError, match="Part 2"):
        gbcheck.check_relu_grad(ns["relu_grad"])


LAYERS_5 = """
def mse(out, targ): return (out.squeeze(-1) - targ).pow(2).mean()
class Relu():
    def __call__(self, inp):
        self.inp, self.out = inp, inp.clamp_min(0.)
        return self.out
    def backward(self): self.inp.g = (self.inp > 0).float() * self.out.g
class Lin():
    def __init__(self, w, b): self.w, self.b = w, b
    def __call__(self, inp):
        self.inp, self.out = inp, inp @ self.w + self.b
        return self.out
    def backward(self):
        self.inp.g = self.out.g @ self.w.t()
        self.w.g = self.inp.t() @ self.out.g
        self.b.g = BG
class Mse():
    def __call__(self, inp, targ):
        self.inp, self.targ, self.out = inp, targ, mse(inp, targ)
        return self.out
    def backward(self): self.inp.g = 2. * (self.inp.squeeze(-1) - self.targ).unsqueeze(-1) / self.targ.shape[0]
class Model():
    def __init__(self, w1, b1, w2, b2):
        self.layers, self.loss = [Lin(w1, b1), Relu(), Lin(w2, b2)], Mse()
    def __call__(self, x, targ):
        for layer in self.layers: x = layer(x)
        return self.loss(x, targ)
    def backward(self):
        self.loss.backward()
        for layer in LAYERS_BACK: layer.backward()
"""


def layers_5(bg="self.out.g.sum(0)", back="reversed(self.layers)"):
    ns = define(LAYERS_5.replace("BG", bg).replace("LAYERS_BACK", back))
    return ns["Relu"], ns["Lin"], ns["Mse"], ns["Model"]


def test_layers_as_classes_passes_a_right_answer(capsys):
    """Do right part-5 classes pass, with one success line?"""
    gbcheck.check_layers_as_classes(*layers_5())
    assert capsys.readouterr().out.startswith("Part 5 (layers_as_classes): ")


def test_layers_as_classes_with_a_wrong_layer_says_the_model_itself_is_right():
    """When only Lin.backward is wrong, does the message name it and clear the Model?"""
    message = fails_with(gbcheck.check_layers_as_classes, *layers_5(bg="self.out.g.mean(0)"))
    assert "Lin: b.g is n=7 times too small" in message and "Model itself is right" in message


def test_layers_as_classes_with_the_model_backward_in_forward_order_blames_the_model():
    """When Model.backward runs the layers in forward order, is the Model named, not the layers?"""
    message = fails_with(gbcheck.check_layers_as_classes, *layers_5(back="self.layers"))
    assert "Model" in message and "Model itself is right" not in message


MODULE_6 = """
def mse(out, targ): return (out.squeeze(-1) - targ).pow(2).mean()
class Module():
    def __call__(self, *args):
        ARGS
        self.out = self.forward(*args)
        return self.out
    def backward(self): self.bwd(self.out, *self.args)
class Relu(Module):
    def forward(self, inp): return inp.clamp_min(0.)
    def bwd(self, out, inp): inp.g = (inp > 0).float() * out.g
class Lin(Module):
    def __init__(self, w, b): self.w, self.b = w, b
    def forward(self, inp): return inp @ self.w + self.b
    def bwd(self, out, inp):
        inp.g = out.g @ self.w.t()
        self.w.g = torch.einsum("bi,bj->ij", inp, out.g)
        self.b.g = out.g.sum(0)
class Mse(Module):
    def forward(self, inp, targ): return mse(inp, targ)
    def bwd(self, out, inp, targ): inp.g = 2. * (inp.squeeze(-1) - targ).unsqueeze(-1) / targ.shape[0]
"""


def test_module_forward_passes_a_right_answer_with_einsum(capsys):
    """Do right part-6 classes pass (einsum is the lesson's way in part 6)?"""
    ns = define(MODULE_6.replace("ARGS", "self.args = args"))
    gbcheck.check_module_forward(ns["Module"], ns["Relu"], ns["Lin"], ns["Mse"])
    assert capsys.readouterr().out.startswith("Part 6 (module_forward): ")


def test_module_that_forgets_its_args_is_told_so():
    """Is a Module.__call__ that never keeps self.args told exactly that?"""
    ns = define(MODULE_6.replace("ARGS", "pass"))
    message = fails_with(gbcheck.check_module_forward, ns["Module"], ns["Relu"], ns["Lin"], ns["Mse"])
    assert "keep its arguments in self.args" in message


# --------------------------------------------------------------------------------------
# How a failure looks in the notebook: one short box, the student's own frames only
# --------------------------------------------------------------------------------------

def failure(check, *args) -> BaseException:
    with pytest.raises(Exception) as info:
        check(*args)
    return info.value


def test_a_failed_check_renders_as_its_message_alone():
    """Is a wrong answer a CheckFailed (an AssertionError for nbgrader) that IPython shows as 2 lines?"""
    ns = define("def mse_grad(inp, targ):\n    inp.g = 4. * (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]")
    exc = failure(gbcheck.check_mse_grad, ns["mse_grad"])
    assert isinstance(exc, gbcheck.CheckFailed) and isinstance(exc, AssertionError)
    lines = exc._render_traceback_()
    assert len(lines) == 2 and "Part 1 (mse_grad) failed" in lines[0] and "twice" in lines[1]
    assert "gbcheck" not in "".join(lines)


def test_a_stub_renders_as_one_line():
    """Does an unfinished part show just its NotImplementedError message, on one line?"""
    ns = define('def mse_grad(inp, targ):\n    raise NotImplementedError("Part 1: write mse_grad")')
    exc = failure(gbcheck.check_mse_grad, ns["mse_grad"])
    assert exc._render_traceback_() == ["\x1b[1;31mNotImplementedError: Part 1: write mse_grad\x1b[0m"]


def test_a_students_own_error_shows_only_their_frames():
    """Does an error raised in the student's code show their frame and line, and no gbcheck frame?"""
    code = "def helper(x):\n    return x.nope\n\ndef lin_grad(inp, out, w, b):\n    inp.g = helper(out)\n"
    ns = {"torch": torch}
    linecache.cache["student_cell.py"] = (len(code), None, code.splitlines(True), "student_cell.py")  # as IPython does
    exec(compile(code, "student_cell.py", "exec"), ns)
    exc = failure(gbcheck.check_lin_grad, ns["lin_grad"])
    assert isinstance(exc, AttributeError)
    lines = exc._render_traceback_()
    text = "\n".join(lines)
    assert "student_cell.py, line 5, in lin_grad" in text and "student_cell.py, line 2, in helper" in text
    assert "return x.nope" in text and "AttributeError" in lines[-1]
    assert "gbcheck" not in text and "_verdict" not in text and len(lines) <= 5
