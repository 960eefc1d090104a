"""Diagnosis on the trusted side: each catalogued mistake is recognised from a synthetic wrong result."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from autograder import assignment, diagnose, rubric
from autograder.feedback import Mistake
from autograder.suite import CaseResult, ErrorInfo, PartRun, Student

FOLDER = rubric.load("gradient_backward").folder
verdicts = assignment.load(FOLDER, "verdicts")
probes = assignment.load(FOLDER, "probes")
reference = assignment.load(FOLDER, "reference")
mistakes = assignment.load(FOLDER, "mistakes")
_cases = assignment.load(FOLDER, "cases")
all_cases, case_by_id = _cases.all_cases, _cases.case_by_id

CATALOGUE = diagnose.load("gradient_backward")


def right(case_id: str, **changes) -> tuple:
    """(case, a result holding exactly autograd's answers and untouched inputs, then `changes`)."""
    case = case_by_id(case_id)
    outputs = {k: np.array(v) for k, v in reference.expected(case).items()
               if k in verdicts.OUTPUTS[case.probe]}
    for key, name in verdicts._KEPT.items():
        if name in reference.inputs(case) and not (case.shape.get("n", 0) > probes.BIG_BATCH):
            outputs[key] = np.array(reference.inputs(case)[name])
    values = {}
    if case.probe == "module_base":
        values = {"forward_got_args": True, "bwd_called": True, "bwd_out_is_returned": True,
                  "bwd_n_args": 2, "bwd_args_are_inputs": True}
    if case.probe == "nn_model":
        m, nh = case.shape["m"], case.shape["nh"]
        values = {"n_parameters": 4, "param_shapes": str(sorted([(nh, m), (nh,), (1, nh), (1,)]))}
    if case.probe == "class_model":  # the probe's second step on the same model: right again
        values = {"again.ran": True}
        outputs.update({f"again.{k}": np.array(reference.expected(case)[k]) for k in ("x.g", "w1.g")})
    outputs.update(changes.pop("outputs", {}))
    values.update(changes.pop("values", {}))
    for key in changes.pop("drop", ()):
        outputs.pop(key)
    return case, CaseResult(**{"status": "ok", "outputs": outputs, "values": values, **changes})


def exp(case_id, key):
    return np.array(reference.expected(case_by_id(case_id))[key])


def inp(case_id, key):
    return reference.inputs(case_by_id(case_id))[key].astype(np.float64)


def _error(type_, message, memory=False):
    return ErrorInfo(type=type_, message=message, last_line="self.w.g = ...", memory=memory)


MSE, RELU, LIN, FAB = "mse_grad/n64_f32", "relu_grad/64x50_f32", "lin_grad/64_20x50_f32", \
    "forward_and_backward/64_20_50_f32"
MSE64, NN = "mse_grad/n50_f64", "nn_module/64_20_50"
MEMORY = "lin_without_einsum/memory_2000_784x50_f32"
MODEL, MODULE_BASE = "layers_as_classes/model_64_20_50_f32", "module_forward/module_keeps_args"
CLASS_RELU = "layers_as_classes/relu_64x50_f32"

# Part 4's backward pass as the notebook writes it, as the probe records it.
RIGHT_CALLS = [["mse_grad", ["out", "targ"]], ["lin_grad", ["l2", "out", "w2", "b2"]],
               ["relu_grad", ["l1", "l2"]], ["lin_grad", ["x", "l1", "w1", "b1"]]]


def _calls(*changes) -> str:
    """The right calls with (index, replacement or None to drop) changes, as a JSON record."""
    calls = [list(c) for c in RIGHT_CALLS]
    for i, new in sorted(changes, reverse=True):
        if new is None:
            del calls[i]
        else:
            calls[i] = new
    return json.dumps(calls)


_NO_G = _error("AttributeError", "'Tensor' object has no attribute 'g'")


def _mse_broadcast():
    return 2 * (inp(MSE, "inp") - inp(MSE, "targ")) / 64


def _relu(kind):
    x, g = inp(RELU, "inp"), inp(RELU, "out_g")
    return {"values": np.maximum(x, 0) * g, "none": g, "inverted": (x < 0) * g}[kind]


# One synthetic wrong result per catalogued mistake, keyed by the id it must be diagnosed as.
# The part's own code, for the rules on code (part 7: no einsum in Lin.bwd).
EINSUM_LIN = ("class Lin(Module):\n    def bwd(self, out, inp):\n"
              "        self.w.g = torch.einsum('bi,bj->ij', inp, out.g)\n")


WRONG = {
    "factor_2": lambda: right(MSE, outputs={"inp.g": 2 * exp(MSE, "inp.g")}),
    "factor_half": lambda: right(MSE, outputs={"inp.g": exp(MSE, "inp.g") / 2}),
    "factor_n": lambda: right(MSE, outputs={"inp.g": 64 * exp(MSE, "inp.g")}),
    "factor_1_over_n": lambda: right(LIN, outputs={"inp.g": exp(LIN, "inp.g") / 64}),
    "mean_not_sum": lambda: right(LIN, outputs={"b.g": exp(LIN, "b.g") / 64}),
    "sign_flipped": lambda: right(MSE, outputs={"inp.g": -exp(MSE, "inp.g")}),
    "transposed": lambda: right(LIN, outputs={"w.g": exp(LIN, "w.g").T.copy()}),
    "shape_n_not_n1": lambda: right(MSE, outputs={"inp.g": exp(MSE, "inp.g")[:, 0]}),
    "broadcast_nn": lambda: right(MSE, outputs={"inp.g": _mse_broadcast()}),
    "batch_not_summed": lambda: right(LIN, outputs={"b.g": inp(LIN, "out_g")}),
    "summed_wrong_axis": lambda: right(LIN, outputs={"b.g": inp(LIN, "out_g").sum(1)}),
    "g_only_returned": lambda: right(MSE, drop=["inp.g"], outputs={"returned": exp(MSE, "inp.g")}),
    "g_missing": lambda: right(FAB, drop=["w1.g"]),
    "autograd_used": lambda: right(MSE, autograd_used=True),
    "wrong_values": lambda: right(LIN, outputs={"w.g": exp(LIN, "w.g") + 0.5}),
    "relu_mask_on_values": lambda: right(RELU, outputs={"inp.g": _relu("values")}),
    "relu_no_mask": lambda: right(RELU, outputs={"inp.g": _relu("none")}),
    "relu_mask_inverted": lambda: right(RELU, outputs={"inp.g": _relu("inverted")}),
    "wrong_backward_order": lambda: right(FAB, status="error", error=_error(
        "RuntimeError", f"{probes.ORDER_TAG} relu_grad(inp, out) was called with an output ...")),
    "layers_not_reversed": lambda: right("layers_as_classes/model_64_20_50_f32", status="error",
                                         error=_error("AttributeError",
                                                      "'Tensor' object has no attribute 'g'")),
    "module_args_not_kept": lambda: right("module_forward/module_keeps_args", values={
        "bwd_n_args": 1, "bwd_args_are_inputs": False}),
    "module_out_not_kept": lambda: right("module_forward/module_keeps_args", values={
        "bwd_out_is_returned": False}),
    "uses_einsum": lambda: right("lin_without_einsum/64_20x50_f32", values={"test.source": EINSUM_LIN}),
    "outer_product_oom": lambda: right(MEMORY, status="error", error=_error(
        "RuntimeError", "[enforce fail at alloc_cpu.cpp] DefaultCPUAllocator: can't allocate "
        "memory: you tried to allocate 313600000 bytes.", memory=True)),
    "layers_not_registered": lambda: right(NN, values={"n_parameters": 0, "param_shapes": "[]"}),
    "nn_wrong_layer_sizes": lambda: right(NN, values={
        "param_shapes": "[(1,), (1, 20), (20,), (20, 50)]"}),
    "wrong_forward": lambda: right("layers_as_classes/lin_64_20x50_f32", outputs={
        "out": exp("layers_as_classes/lin_64_20x50_f32", "out") - 0.5}),
    "input_modified": lambda: right(RELU, outputs={"inp_after": np.maximum(inp(RELU, "inp"), 0)
                                                   .astype(np.float32)}),
    "wrong_dtype": lambda: right(MSE64, outputs={"inp.g": exp(MSE64, "inp.g").astype(np.float32)}),
    "not_a_tensor": lambda: right(MSE, drop=["inp.g"], values={"inp.g.type": "list"}),
    "not_finite": lambda: right(MSE, outputs={"inp.g": exp(MSE, "inp.g") * np.nan}),
    "name_missing": lambda: right(MSE, status="error", error=_error(
        "NameError", "name 'mse_grad' is not defined (the cell must define it)")),
    "exception": lambda: right(MSE, status="error", error=_error("ValueError", "bad shape")),
    "crash": lambda: right(MSE, status="crashed", error=_error("Crash", "the process died")),
    "timeout": lambda: right(MSE, status="timeout", error=_error("Timeout", "too slow")),
    "out_of_memory": lambda: right(MSE, status="error", error=_error(
        "RuntimeError", "DefaultCPUAllocator: can't allocate memory", memory=True)),
    "not_implemented": lambda: right(MSE, status="error", error=_error("NotImplementedError", "")),
    "cell_failed": lambda: right(MSE, status="not_run", error=None),
    "wrong_shape": lambda: right(LIN, outputs={"w.g": exp(LIN, "w.g")[:5]}),
    "all_zero": lambda: right(MSE, outputs={"inp.g": 0 * exp(MSE, "inp.g")}),
    "constant_factor": lambda: right(MSE, outputs={"inp.g": 3.7 * exp(MSE, "inp.g")}),
    "summed_all_axes": lambda: right(LIN, outputs={"b.g": np.array(inp(LIN, "out_g").sum())}),
    "global_n": lambda: right(MSE, outputs={"inp.g": exp(MSE, "inp.g") * 64 / 1500}),
    "upstream_missing": lambda: right(RELU, outputs={"inp.g": (inp(RELU, "inp") > 0) * 1.0}),
    "stored_in_grad": lambda: right(MSE, drop=["inp.g"], outputs={"inp.grad": exp(MSE, "inp.g")}),
    "relu_shifted": lambda: right(CLASS_RELU, outputs={
        "out": np.maximum(inp(CLASS_RELU, "inp"), 0) - 0.5}),
    "loss_not_returned": lambda: right(MODEL, drop=["loss"]),
    "layers_reversed_in_place": lambda: right(MODEL, values={
        "again.ran": True, "again.error.type": "RuntimeError",
        "again.error.message": "mat1 and mat2 shapes cannot be multiplied (64x20 and 50x1)",
        "layers_before": json.dumps(["Lin(w1, b1)", "Relu", "Lin(w2, b2)"]),
        "layers_after": json.dumps(["Lin(w2, b2)", "Relu", "Lin(w1, b1)"])}),
    "model_second_step": lambda: right(MODEL, values={"again.ran": True}, outputs={
        "again.x.g": 2 * exp(MODEL, "x.g"), "again.w1.g": exp(MODEL, "w1.g")}),
    "module_args_not_unpacked": lambda: right(MODULE_BASE, values={
        "bwd_n_args": 1, "bwd_args_are_inputs": False, "bwd_got_tuple": True}),
    "params_not_parameters": lambda: right(NN, values={
        "n_parameters": 0, "param_shapes": "[]",
        "plain_tensors": json.dumps(["l1.w (20, 50)", "l1.b (50,)"])}),
    "relu_args_swapped": lambda: right(FAB, status="error", error=_NO_G, values={
        "calls": _calls((2, ["relu_grad", ["l2", "l1"]]))}),
    "backward_wrong_tensors": lambda: right(FAB, status="error", error=_NO_G, values={
        "calls": _calls((1, ["lin_grad", ["l1", "out", "w2", "b2"]]))}),
    "backward_step_missing": lambda: right(FAB, drop=["x.g", "w1.g", "b1.g"], values={
        "calls": _calls((3, None))}),
}


def _student(case, result) -> Student:
    cell = PartRun(part=case.part, cell_status="error",
                   cell_error=ErrorInfo(type="SyntaxError", message="invalid syntax"),
                   source=result.values.pop("test.source", ""))
    return Student({case.id: result}, {case.part: cell})


def _diagnosis(case, result) -> Mistake | None:
    try:
        verdicts.check_case(_student(case, result), case)
    except Mistake as exc:
        return exc
    return None


def test_every_catalogue_entry_has_a_wrong_result_and_a_known_part():
    """Is each catalogued mistake exercised below, and does it name only real parts?"""
    parts = set(rubric.load("gradient_backward").part_names)
    assert set(WRONG) == set(CATALOGUE.entries)
    for entry in CATALOGUE.entries.values():
        assert entry.parts and set(entry.parts) <= parts, entry.id
        assert entry.title and entry.message


@pytest.mark.parametrize("mistake_id", sorted(WRONG))
def test_wrong_result_is_diagnosed_as_its_mistake(mistake_id):
    """Is this synthetic wrong result failed with exactly its catalogue id and a filled-in message?"""
    case, result = WRONG[mistake_id]()
    found = _diagnosis(case, result)
    assert found is not None, "the wrong result passed"
    assert found.id.split("+")[0] == mistake_id, found.message
    assert case.part in CATALOGUE.entries[mistake_id].parts
    per_case = CATALOGUE.entries[mistake_id].per_case
    assert found.message.startswith(f"Case {case.name}: ") == per_case, found.message
    assert not re.search(r"\{\w+\}|: \?|\(\?\)", found.message), found.message


@pytest.mark.parametrize("case", all_cases(), ids=lambda c: c.id)
def test_autograd_answers_pass_every_case(case):
    """Does the reference answer itself pass, and in float64 for float32 inputs too?"""
    case_, result = right(case.id)
    assert _diagnosis(case_, result) is None
    widened = {k: v.astype(np.float64) for k, v in result.outputs.items()}
    assert _diagnosis(case_, CaseResult(status="ok", outputs=widened, values=result.values)) is None


@pytest.mark.parametrize("case", [c for c in all_cases() if c.dtype == "float32"], ids=lambda c: c.id)
def test_float32_rounding_passes_but_one_percent_off_fails(case):
    """Is float32 rounding of every output tolerated, while a 1% error in one element is not?"""
    _, result = right(case.id)
    keys = [k for k in verdicts.OUTPUTS[case.probe] if result.outputs[k].size]
    rounded = {k: v.astype(np.float32) if k in keys else v for k, v in result.outputs.items()}
    assert _diagnosis(case, CaseResult(status="ok", outputs=rounded, values=result.values)) is None
    for key in keys:
        bad = dict(rounded)
        bad[key] = rounded[key].copy()
        flat = bad[key].reshape(-1)
        i = int(np.abs(flat).argmax())
        flat[i] = flat[i] * 1.01
        assert _diagnosis(case, CaseResult(status="ok", outputs=bad, values=result.values)), key


_E = np.linspace(-1.0, 1.0, 24).reshape(8, 3) + 0.05   # no zeros: every factor shows
_COL = _E[:, :1]
# The notebook's explain(name, got, expected, n=...) on one example of each generic difference.
GENERIC = {
    "factor_2": ("inp.g", 2 * _E, _E, 8),
    "factor_half": ("inp.g", _E / 2, _E, 8),
    "factor_n": ("inp.g", 8 * _E, _E, 8),
    "factor_1_over_n": ("inp.g", _E / 8, _E, 8),
    "mean_not_sum": ("b.g", _E[0] / 8, _E[0], 8),
    "sign_flipped": ("inp.g", -_E, _E, 8),
    "transposed": ("w.g", _E.T, _E, 8),
    "shape_n_not_n1": ("inp.g", _COL[:, 0], _COL, 8),
    "broadcast_nn": ("inp.g", np.tile(_COL, (1, 8)), _COL, 8),
    "batch_not_summed": ("b.g", np.tile(_E[0], (8, 1)), _E[0], 8),
    "summed_wrong_axis": ("b.g", _E.sum(1), _E[0], 8),
    "g_only_returned": ("inp.g", None, _E, 8),
    "g_missing": ("inp.g", None, _E, 8),
    "wrong_values": ("inp.g", _E + 1.0, _E, 8),
}


@pytest.mark.parametrize("mistake_id", sorted(GENERIC))
def test_generic_explainer_gives_catalogued_ids(mistake_id):
    """Does the notebook's explain() name this generic difference with an id the catalogue holds?"""
    import torch
    name, got, expected, n = GENERIC[mistake_id]
    as_t = lambda a: None if a is None else torch.from_numpy(np.array(a))  # noqa: E731
    returned = as_t(expected) if mistake_id == "g_only_returned" else None
    found, message = CATALOGUE.explain(name, as_t(got), as_t(expected), n=n, returned=returned)
    assert found == mistake_id, message
    assert found in CATALOGUE.entries
    if got is not None:
        assert diagnose.match(CATALOGUE, name, got, expected, n=n) == mistake_id


def test_match_prefers_a_specific_candidate_then_the_generic_explainer():
    """Does match() name a part-specific candidate first, a generic factor next, else wrong_values?"""
    expected = np.linspace(-1, 1, 12).reshape(4, 3)
    special = expected * 3.7
    assert diagnose.match(CATALOGUE, "inp.g", special, expected,
                          candidates=[("relu_no_mask", special)]) == "relu_no_mask"
    assert diagnose.match(CATALOGUE, "inp.g", 2 * expected, expected) == "factor_2"
    assert diagnose.match(CATALOGUE, "inp.g", special, expected) == "constant_factor"
    assert diagnose.match(CATALOGUE, "inp.g", expected[::-1], expected) == "wrong_values"
    assert diagnose.match(CATALOGUE, "inp.g", expected[:2], expected) == "wrong_shape"


@pytest.mark.parametrize("case", [c for c in all_cases() if "loss" in verdicts.OUTPUTS[c.probe]
                                  and c.shape["n"] > 1], ids=lambda c: c.id)
def test_broadcast_loss_is_recognised_wherever_a_loss_is_returned(case):
    """Is a loss averaged over the (n, n) broadcast of (n, 1) - (n,) named broadcast_nn?"""
    x = {k: v.astype(np.float64) for k, v in reference.inputs(case).items()}
    if "inp" in x:
        pred = x["inp"]
    else:
        pred = np.maximum(x["x"] @ x["w1"] + x["b1"], 0) @ x["w2"] + x["b2"]
    wrong = np.asarray(((pred - x["targ"]) ** 2).mean())
    _, result = right(case.id, outputs={"loss": wrong})
    found = _diagnosis(case, result)
    assert found is not None and found.id == "broadcast_nn", found


# --- systematic array diagnosis ------------------------------------------------------------

_R = np.linspace(-1.0, 1.0, 24).reshape(8, 3) + 0.05
TRANSFORMS = {  # (name, got, expected, n) -> the ids explain() must give, in order
    "factor_2": ("inp.g", 2 * _R, _R, 8, ["factor_2"]),
    "factor_2 and sign": ("inp.g", -2 * _R, _R, 8, ["factor_2", "sign_flipped"]),
    "half": ("inp.g", _R / 2, _R, 8, ["factor_half"]),
    "n": ("inp.g", 8 * _R, _R, 8, ["factor_n"]),
    "1/n activation": ("inp.g", _R / 8, _R, 8, ["factor_1_over_n"]),
    "1/n parameter": ("b.g", _R[0] / 8, _R[0], 8, ["mean_not_sum"]),
    "sign": ("inp.g", -_R, _R, 8, ["sign_flipped"]),
    "other constant": ("inp.g", 0.0427 * _R, _R, 8, ["constant_factor"]),
    "transposed": ("w.g", _R.T, _R, 8, ["transposed"]),
    "transposed twice over": ("w.g", 2 * _R.T, _R, 8, ["transposed", "factor_2"]),
    "batch not summed": ("b.g", np.tile(_R[0], (8, 1)), _R[0], 8, ["batch_not_summed"]),
    "wrong axis": ("b.g", _R.sum(1), _R[0], 8, ["summed_wrong_axis"]),
    "every axis": ("b.g", np.array(_R.sum()), _R[0], 8, ["summed_all_axes"]),
    "(n, n)": ("inp.g", np.tile(_R[:, :1], (1, 8)), _R[:, :1], 8, ["broadcast_nn"]),
    "(n,) not (n, 1)": ("inp.g", _R[:, 0], _R[:, :1], 8, ["shape_n_not_n1"]),
    "all zero": ("inp.g", 0 * _R, _R, 8, ["all_zero"]),
    "unrelated, same shape": ("inp.g", _R[::-1], _R, 8, ["wrong_values"]),
    "unrelated, other shape": ("inp.g", _R[:5], _R, 8, ["wrong_shape"]),
}


@pytest.mark.parametrize("label", sorted(TRANSFORMS))
def test_explain_names_each_transformation_of_the_reference(label):
    """Does explain() name a wrong array after the transformation of the reference it equals?"""
    name, got, expected, n, want = TRANSFORMS[label]
    assert diagnose.explain(name, got, expected, n=n) == want


@pytest.mark.parametrize("key,got", [("b.g", lambda: np.array(inp(LIN, "out_g").sum())),
                                     ("w.g", lambda: exp(LIN, "w.g")[:, :7]),
                                     ("inp.g", lambda: exp(LIN, "inp.g").T.copy())])
def test_no_message_claims_a_right_shape_that_is_wrong(key, got):
    """Is a result of another shape never told that it "has the right shape"?"""
    case, result = right(LIN, outputs={key: got()})
    found = _diagnosis(case, result)
    assert found is not None and "right shape" not in found.message, found.message


def test_two_mistakes_in_one_result_are_both_reported():
    """Are a transposed w.g and an unsummed b.g in one lin_grad result each named?"""
    case, result = right(LIN, outputs={"w.g": exp(LIN, "w.g").T.copy(), "b.g": inp(LIN, "out_g")})
    found = _diagnosis(case, result)
    assert found.id == "transposed+batch_not_summed"
    assert "w.g is transposed" in found.message and "b.g has shape (64, 50)" in found.message


# --- part 4: the recorded calls, read on the trusted side ------------------------------------

WIRING = {  # label -> (calls, complete, [(id, words the explanation must hold)])
    "right": (_calls(), True, []),
    "relu args swapped": (_calls((2, ["relu_grad", ["l2", "l1"]])), False,
                          [("relu_args_swapped", "relu_grad(l2, l1)")]),
    "pre-ReLU input to lin_grad": (_calls((1, ["lin_grad", ["l1", "out", "w2", "b2"]])), False,
                                   [("backward_wrong_tensors", "got l1 as its input where l2 belongs")]),
    "loss gradient last": (json.dumps([RIGHT_CALLS[1]]), False,
                           [("wrong_backward_order",
                             "lin_grad(l2, out, w2, b2) ran before mse_grad(out, targ) set out.g")]),
    "relu before lin2": (json.dumps([RIGHT_CALLS[i] for i in (0, 2, 1, 3)]), True,
                         [("wrong_backward_order",
                           "relu_grad(l1, l2) ran before lin_grad(l2, out, w2, b2) set l2.g")]),
    "first layer forgotten": (_calls((3, None)), True,
                              [("backward_step_missing", "lin_grad(inp, l1, w1, b1) for the first")]),
    "first layer's weights swapped": (_calls((3, ["lin_grad", ["x", "l1", "w2", "b1"]])), True,
                                      [("backward_wrong_tensors", "w2 as its weights where w1 belongs")]),
    "not json": ("[[mse_grad", True, []),
    "not records": (json.dumps([1, "a", [None, 3], ["lin_grad", "l2"]]), True, []),
}


@pytest.mark.parametrize("label", sorted(WIRING))
def test_backward_wiring_from_hand_made_call_records(label):
    """Does a part-4 call record (plain JSON from the sandbox) give the wiring mistake in the
    student's terms, and nothing for right or unreadable records?"""
    calls, complete, want = WIRING[label]
    found = mistakes.backward_wiring({"calls": calls}, complete)
    assert [mid for mid, _ in found] == [mid for mid, _ in want], found
    for (_, text), (_, words) in zip(found, want):
        assert words in text, text


@pytest.mark.parametrize("mistake_id", ["relu_args_swapped", "backward_wrong_tensors"])
def test_wiring_message_replaces_the_raw_error_of_kit_code(mistake_id):
    """Is a part-4 error with call records told the wiring mistake, never the raw
    "'Tensor' object has no attribute 'g'" from a building block the student never wrote?"""
    case, result = WRONG[mistake_id]()
    found = _diagnosis(case, result)
    assert found.id == mistake_id
    assert "no attribute" not in found.message and "_ref" not in found.message, found.message


def test_layer_order_names_the_layer_that_ran_too_early():
    """Does part 5's record of backward() calls name the first layer that had no out.g yet?"""
    calls = json.dumps([["Mse", None], ["Lin(w1, b1)", False], ["Relu", False]])
    case, result = right(MODEL, status="ok", drop=["x.g"], values={
        "calls": calls, "error.type": "AttributeError",
        "error.message": "'Tensor' object has no attribute 'g'"})
    found = _diagnosis(case, result)
    assert found.id == "layers_not_reversed"
    assert "Lin(w1, b1).backward() ran before its output had a .g" in found.message
    assert "implicitly created" not in found.message


def test_test_layer_keeps_no_hidden_name():
    """Does no part-6 message name a class the student cannot see (the probe's layer is described)?"""
    case, result = WRONG["module_args_not_kept"]()
    assert "Probe" not in _diagnosis(case, result).message
    assert "Probe" not in "".join(m for m in mistakes.CALLS.values())


def test_a_model_without_its_second_step_record_fails_closed():
    """Is a model result whose second-step record is missing (the probe always makes one after
    a good first step) failed rather than trusted?"""
    case, result = right(MODEL)
    del result.values["again.ran"]
    found = _diagnosis(case, result)
    assert found is not None and found.id == "model_second_step" and "did not run" in found.message


def test_a_missing_g_with_the_layers_in_order_is_not_called_an_order_mistake():
    """When part 5's record shows every backward() ran after its output had a .g, is a missing
    .g reported as the error it is, not as "layers not reversed"?"""
    calls = json.dumps([["Mse", None], ["Lin(w2, b2)", True], ["Relu", True], ["Lin(w1, b1)", True]])
    case, result = right(MODEL, drop=["x.g"], values={
        "calls": calls, "error.type": "AttributeError",
        "error.message": "'Tensor' object has no attribute 'g'", "error.line": "<cell 5> line 3"})
    found = _diagnosis(case, result)
    assert found.id == "exception" and "<cell 5> line 3" in found.message
