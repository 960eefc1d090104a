"""What every hidden test checks, failing with the first problem found (trusted side only)."""
from __future__ import annotations

import ast

import numpy as np

from autograder import diagnose
from autograder import rubric as rubric_mod
from autograder.feedback import Mistake
from autograder.suite import ErrorInfo

from . import mistakes, reference
from .cases import Case

ASSIGNMENT = "gradient_backward"
CATALOGUE = diagnose.load(ASSIGNMENT)

# (rtol, atol as a fraction of the array's largest value). Correct float32 answers computed
# in any order (einsum, @, outer product, numpy) stay below 1e-6 of the largest value.
TOLERANCE = {"float32": (1e-4, 1e-5), "float64": (1e-7, 1e-9)}

_NET_GRADS = ["b2.g", "w2.g", "b1.g", "w1.g", "x.g"]  # backward order: first wrong = root cause
OUTPUTS = {
    "mse_grad": ["inp.g"],
    "relu_grad": ["inp.g"],
    "lin_grad": ["inp.g", "w.g", "b.g"],
    "forward_and_backward": _NET_GRADS,
    "class_relu": ["out", "inp.g"], "module_relu": ["out", "inp.g"],
    "class_lin": ["out", "inp.g", "w.g", "b.g"], "module_lin": ["out", "inp.g", "w.g", "b.g"],
    "lin_bwd": ["out", "inp.g", "w.g", "b.g"],
    "class_mse": ["loss", "inp.g"], "module_mse": ["loss", "inp.g"],
    "class_model": ["loss", *_NET_GRADS], "module_model": ["loss", *_NET_GRADS],
    "module_base": ["returned"],
    "nn_model": ["loss", "b2.grad", "w2.grad", "b1.grad", "w1.grad"],
}
FORWARD_OUTPUTS = {"out", "loss", "returned"}
# Probes whose gradients do not depend on each other: every wrong one is its own mistake.
# Elsewhere the first wrong output (in backward order) is the root cause of the rest.
INDEPENDENT_OUTPUTS = {"lin_grad", "class_lin", "module_lin", "lin_bwd"}
# Probes where the loss is what the student's own call returned.
LOSS_RETURNED_BY_CALL = {"class_mse", "module_mse", "class_model"}

# probe output holding an input after the call -> that input's name
_KEPT = {"inp_after": "inp", "targ_after": "targ", "w_after": "w", "b_after": "b", "x_after": "x"}


def _prefix(case: Case) -> str:
    return f"Case {case.name}: "


def _call(case: Case) -> str:
    return mistakes.CALLS[case.probe]


def _fail(case: Case, mistake_id: str, **fields):
    return CATALOGUE.mistake(mistake_id, _prefix(case), call=_call(case),
                             n=case.shape.get("n", "?"), **fields)


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _probe_error(res):
    """An error the probe caught itself (to keep its call records), read like the harness's."""
    v = res.values
    if res.status != "ok" or not isinstance(v.get("error.type"), str):
        return None
    return ErrorInfo(type=v["error.type"][:80], message=str(v.get("error.message", ""))[:500],
                     last_line=str(v.get("error.line", ""))[:300])


def _wiring(case: Case, res, complete: bool) -> list[tuple[str, str]]:
    """What the recorded calls say went wrong in a composed part (4, 5, 6), in the student's terms."""
    if case.probe == "forward_and_backward":
        return mistakes.backward_wiring(res.values, complete)
    if case.probe == "class_model":
        return mistakes.layer_order(res.values)
    if case.probe.startswith("module_"):
        got = mistakes.bwd_got_tuple(res.values)
        if got:
            return [("module_args_not_unpacked", got)]
        if mistakes.bwd_got_other_output(res.values):
            return [("module_out_not_kept", "")]
    return []


def _raise_wiring(case: Case, found: list[tuple[str, str]], also=()):
    raise diagnose.combine([_fail(case, mid, error=_short(text, 400), where="")
                            for mid, text in found] + list(also), _prefix(case))


def finished(student, case: Case):
    """The case's result, or a Mistake when it used autograd or did not finish normally."""
    res = student.result(case)
    allowed = rubric_mod.load(ASSIGNMENT).get(case.part).autograd_allowed
    if getattr(res, "autograd_used", False) and not allowed:
        raise _fail(case, "autograd_used")
    caught = _probe_error(res)
    if res.status == "ok" and caught is None:
        return res
    # A wiring mistake explains the error better than the error itself (often raised in code
    # the student never wrote, such as a reference building block).
    wiring = _wiring(case, res, complete=False)
    if wiring:
        _raise_wiring(case, wiring)
    err = caught or res.error
    status = "error" if caught else res.status
    if err is None and status == "not_run":
        run = student.part(case.part)
        reason = run.not_run_reason or (run.cell_error.describe() if run.cell_error else "")
        raise _fail(case, "cell_failed", error=_short(reason or "its cell did not run"))
    etype, emsg = (err.type or "", err.message or "") if err else ("", "")
    # A crash or timeout has no exception of the student's: the harness's words say it all.
    plain = status in ("crashed", "timeout") and emsg
    error = emsg if plain else f"{etype}: {emsg}" if etype and emsg else (etype or emsg or status)
    mistake_id = mistakes.error_id(case, status, etype, emsg, bool(getattr(err, "memory", False)))
    if mistake_id == "layers_not_reversed" and mistakes._records(res.values, "calls"):
        mistake_id = "exception"  # the recorded order was right: the error has another cause
    last = (getattr(err, "last_line", "") if err else "") or ""
    raise _fail(case, mistake_id, error=_short(error),
                where=f" (at: {_short(last, 120)})" if last else "")


def _get(res, key):
    """An output as an array, a short text when it was no tensor, or None when missing."""
    if key in res.outputs:
        return np.asarray(res.outputs[key])
    value = res.values.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return np.asarray(float(value))
    if value is None and f"{key}.type" in res.values:
        return f"a {res.values[key + '.type']}"
    return value


def _returned(res) -> dict[str, np.ndarray]:
    return {k: v for k, v in res.outputs.items() if k.startswith("returned")}


def _compare(case: Case, key: str, got: np.ndarray, expected: np.ndarray):
    """A Mistake for a finite array that differs from the reference: every way it differs."""
    wrong = mistakes.candidates(case, key, reference.inputs(case), expected)
    if key in FORWARD_OUTPUTS:
        mistake_id = next((mid for mid, w in wrong if diagnose.close(got, w, 1e-3, 1e-4)),
                          "wrong_forward")
        return _fail(case, mistake_id, **diagnose.fields(key, got, expected))
    ids = [i for i in diagnose.explain(key, got, expected, candidates=wrong, n=case.shape.get("n"))
           if i in CATALOGUE]
    ids = ids or [diagnose.FALLBACK_ID if got.shape == expected.shape else diagnose.SHAPE_FALLBACK_ID]
    found = [_fail(case, ids[0], **diagnose.fields(key, got, expected))]
    # After a shape fix (a transpose, a unit axis) the values can carry a mistake of their own.
    fixed = got.T if ids[0] == "transposed" else got.reshape(expected.shape) if got.size == expected.size else got
    found += [_fail(case, i, **diagnose.fields(key, fixed, expected)) for i in ids[1:]]
    return diagnose.combine(found, _prefix(case))


def expect_output(case: Case, res, key: str) -> None:
    """One output against the autograd reference: present, a float tensor, finite, close."""
    expected = reference.expected(case)[key]
    got = _get(res, key)
    if got is None and key == "loss" and case.probe in LOSS_RETURNED_BY_CALL:
        raise _fail(case, "loss_not_returned")
    if got is None and key in FORWARD_OUTPUTS:
        raise _fail(case, "not_a_tensor", name=key, got_values="None",
                    expected_shape=diagnose.shape(expected))
    if got is None and key.endswith(".g") and key[:-2] + ".grad" in res.outputs:
        raise _fail(case, "stored_in_grad", **diagnose.fields(key, expected, expected))
    if got is None:
        raise _fail(case, diagnose.missing(key, expected, _returned(res)),
                    **diagnose.fields(key, expected, expected))
    if isinstance(got, str) or not isinstance(got, np.ndarray) or got.dtype.kind not in "fiub":
        shown = got if isinstance(got, str) else repr(got)
        raise _fail(case, "not_a_tensor", name=key, got_values=_short(shown, 60),
                    expected_shape=diagnose.shape(expected))
    if got.dtype.kind != "f" or (case.dtype == "float64" and got.dtype != np.float64):
        raise _fail(case, "wrong_dtype", name=key, got_values=str(got.dtype),
                    expected_values=case.dtype)
    if not np.isfinite(got).all():
        raise _fail(case, "not_finite", **diagnose.fields(key, got, expected))
    rtol, atol = TOLERANCE[case.dtype]
    if diagnose.close(got, expected, rtol, atol):
        return
    raise _compare(case, key, got, expected)


def expect_inputs_kept(case: Case, res) -> None:
    """The student's call left every input tensor as it was given."""
    inputs = reference.inputs(case)
    for out_key, name in _KEPT.items():
        if out_key not in res.outputs:
            continue
        after, before = np.asarray(res.outputs[out_key]), inputs[name]
        if after.shape != before.shape or not np.array_equal(after, before):
            raise _fail(case, "input_modified", name=name, expected_values=diagnose.values(before),
                        got_values=diagnose.values(after))


def expect_module_keeps_args(case: Case, res) -> None:
    """Module.__call__ passed the arguments to forward, and backward gave bwd(out, *args)."""
    v = res.values
    if not (v.get("forward_got_args") and v.get("bwd_args_are_inputs")):
        if v.get("bwd_got_tuple"):
            raise _fail(case, "module_args_not_unpacked", error="a tuple holding the 2 argument(s)")
        n_args = v.get("bwd_n_args", 0)
        error = ("forward did not get both arguments" if not v.get("forward_got_args") else
                 f"bwd got {n_args} argument(s) after the output instead of the 2 given to the call")
        raise _fail(case, "module_args_not_kept", error=error)
    if not v.get("bwd_out_is_returned"):
        raise _fail(case, "module_out_not_kept")


def _shape_list(*shapes) -> str:
    return str(sorted(shapes))


def expect_nn_parameters(case: Case, res) -> None:
    """parameters() yields the weights and biases of Linear(m, nh) and Linear(nh, 1), in
    nn.Linear's (out, in) layout or, for hand-made nn.Parameter layers, the lesson's (in, out)."""
    m, nh = case.shape["m"], case.shape["nh"]
    want = _shape_list((nh, m), (nh,), (1, nh), (1,))
    allowed = {want, _shape_list((m, nh), (nh,), (nh, 1), (1,))}
    count, shapes = res.values.get("n_parameters", 0), res.values.get("param_shapes", "[]")
    if shapes in allowed:
        return
    plain = [p for p in mistakes._records(res.values, "plain_tensors") if isinstance(p, str)]
    if plain and isinstance(count, int) and count < 4:
        raise _fail(case, "params_not_parameters", got_values=str(count),
                    error=_short(", ".join(plain), 200))
    if count == 0:
        in_list = res.values.get("plain_list_layers", 0)
        error = f": the model keeps {in_list} layer(s) in a plain list" if in_list else ""
        raise _fail(case, "layers_not_registered", got_values=str(count), got_shape=shapes,
                    error=error)
    raise _fail(case, "nn_wrong_layer_sizes", got_shape=shapes, expected_shape=want)


def expect_second_step(case: Case, res) -> None:
    """A model that was right once is right again: a second forward/backward step on it gives
    the same gradients (an in-place reversal of its layers breaks that)."""
    v = res.values
    error = None
    if not v.get("again.ran"):  # the probe always runs it after a good first step: fail closed
        error = "did not run"
    elif isinstance(v.get("again.error.type"), str):
        error = f"failed with {v['again.error.type']}: {_short(v.get('again.error.message', ''), 160)}"
    for key in ("x.g", "w1.g"):
        if error:
            break
        got, expected = _get(res, f"again.{key}"), reference.expected(case)[key]
        if not (isinstance(got, np.ndarray) and diagnose.close(got, expected, *TOLERANCE[case.dtype])):
            shown = diagnose.values(got) if isinstance(got, np.ndarray) else "nothing"
            error = f"gave other gradients ({key}: expected {diagnose.values(expected)}, got {shown})"
    if error:
        mistake_id = "layers_reversed_in_place" if mistakes.reversed_in_place(v) else "model_second_step"
        raise _fail(case, mistake_id, error=error)


def expect_outputs(case: Case, res) -> None:
    """Every output against the reference, each wrong one reported (unless it only follows
    from an earlier one), with what the recorded calls say about the wiring first."""
    found = []
    for key in OUTPUTS[case.probe]:
        try:
            expect_output(case, res, key)
        except Mistake as exc:
            found.append(exc)
            if case.probe not in INDEPENDENT_OUTPUTS or key in FORWARD_OUTPUTS:
                break
    if not found:
        return
    wiring = _wiring(case, res, complete=True)
    if wiring:
        _raise_wiring(case, wiring, also=found)
    raise diagnose.combine(found, _prefix(case))


def check_case(student, case: Case) -> None:
    """Everything one case must satisfy; several mistakes in one result are each reported."""
    res = finished(student, case)
    if case.probe == "nn_model":
        expect_nn_parameters(case, res)  # before values: unmatched weights make every value wrong
    expect_inputs_kept(case, res)
    expect_outputs(case, res)
    if case.probe == "module_base":
        expect_module_keeps_args(case, res)
    if case.probe == "class_model":
        expect_second_step(case, res)
    if case.probe == "lin_bwd":
        check_no_einsum_in_bwd(student, case.part)


def _names_in_method(source: str, cls: str, method: str) -> set[str]:
    """Every name, attribute and string a class's method uses from the part's own code, and
    what those names lead to in the same cell: a top-level alias (`product = torch.einsum`),
    function or import, or another method of the class (`self.helper()`)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    top: dict[str, list[ast.AST]] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            top.setdefault(node.name, []).append(node)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for target in getattr(node, "targets", None) or [node.target]:
                for sub in ast.walk(target):
                    if isinstance(sub, ast.Name):
                        top.setdefault(sub.id, []).append(node)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                top.setdefault((a.asname or a.name).split(".")[0], []).append(node)
    start, methods = [], {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for fn in node.body:
                if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    methods.setdefault(fn.name, []).append(fn)
                    if fn.name == method:
                        start.append(fn)
    names: set[str] = set()
    seen = {id(n) for n in start}
    todo = list(start)
    while todo:
        for sub in ast.walk(todo.pop()):
            if isinstance(sub, ast.Name):
                name = sub.id
            elif isinstance(sub, ast.Attribute):
                name = sub.attr
            elif isinstance(sub, ast.alias):
                name = sub.name.split(".")[-1]
            elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                names.add(sub.value)
                continue
            else:
                continue
            names.add(name)
            for target in top.get(name, []) + methods.get(name, []):
                if id(target) not in seen:
                    seen.add(id(target))
                    todo.append(target)
    return names


def check_no_einsum_in_bwd(student, part: str) -> None:
    """Part 7's text asks for w.g from one matrix product with @: with right values, einsum in
    Lin.bwd still fails each of its checks, as its public check does."""
    if "einsum" in _names_in_method(student.part(part).source, "Lin", "bwd"):
        raise CATALOGUE.mistake("uses_einsum", "")
