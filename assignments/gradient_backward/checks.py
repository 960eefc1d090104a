"""What every hidden test checks, failing with the first problem found (trusted side only)."""
from __future__ import annotations

import numpy as np

import mistakes
import reference
from autograder import diagnose
from autograder import rubric as rubric_mod
from cases import Case

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


def finished(student, case: Case):
    """The case's result, or a Mistake when it used autograd or did not finish normally."""
    res = student.result(case)
    allowed = rubric_mod.load(ASSIGNMENT).get(case.part).autograd_allowed
    if getattr(res, "autograd_used", False) and not allowed:
        raise _fail(case, "autograd_used")
    if res.status == "ok":
        return res
    err = res.error
    if err is None and res.status == "not_run":
        run = student.part(case.part)
        reason = run.not_run_reason or (run.cell_error.describe() if run.cell_error else "")
        raise _fail(case, "cell_failed", error=_short(reason or "its cell did not run"))
    etype, emsg = (err.type or "", err.message or "") if err else ("", "")
    # A crash or timeout has no exception of the student's: the harness's words say it all.
    plain = res.status in ("crashed", "timeout") and emsg
    error = emsg if plain else f"{etype}: {emsg}" if etype and emsg else (etype or emsg or res.status)
    mistake_id = mistakes.error_id(case, res.status, etype, emsg, bool(getattr(err, "memory", False)))
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


def expect_output(case: Case, res, key: str) -> None:
    """One output against the autograd reference: present, a float tensor, finite, close."""
    expected = reference.expected(case)[key]
    got = _get(res, key)
    if got is None and key in FORWARD_OUTPUTS:
        raise _fail(case, "not_a_tensor", name=key, got_values="None",
                    expected_shape=diagnose.shape(expected))
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
    inputs = reference.inputs(case)
    wrong = mistakes.candidates(case, key, inputs)
    if key in FORWARD_OUTPUTS:
        mistake_id = next((mid for mid, w in wrong if diagnose.close(got, w, 1e-3, 1e-4)),
                          "wrong_forward")
    else:
        mistake_id = diagnose.match(CATALOGUE, key, got, expected, candidates=wrong,
                                    n=case.shape.get("n"))
    raise _fail(case, mistake_id, **diagnose.fields(key, got, expected))


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
        n_args = v.get("bwd_n_args", 0)
        error = ("forward did not get both arguments" if not v.get("forward_got_args") else
                 f"bwd got {n_args} argument(s) after the output instead of the 2 given to the call")
        raise _fail(case, "module_args_not_kept", error=error)
    if not v.get("bwd_out_is_returned"):
        raise _fail(case, "module_out_not_kept")


def expect_nn_parameters(case: Case, res) -> None:
    """parameters() yields exactly the weights and biases of Linear(m, nh) and Linear(nh, 1)."""
    m, nh = case.shape["m"], case.shape["nh"]
    want = str(sorted([(nh, m), (nh,), (1, nh), (1,)]))
    count, shapes = res.values.get("n_parameters", 0), res.values.get("param_shapes", "[]")
    if count == 0:
        raise _fail(case, "layers_not_registered", got_values=str(count), got_shape=shapes)
    if shapes != want:
        raise _fail(case, "nn_wrong_layer_sizes", got_shape=shapes, expected_shape=want)


def check_case(student, case: Case) -> None:
    """Everything one case must satisfy, failing with the first problem found."""
    res = finished(student, case)
    if case.probe == "nn_model":
        expect_nn_parameters(case, res)  # before values: unmatched weights make every value wrong
    expect_inputs_kept(case, res)
    for key in OUTPUTS[case.probe]:
        expect_output(case, res, key)
    if case.probe == "module_base":
        expect_module_keeps_args(case, res)
