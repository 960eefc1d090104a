"""Probes: run INSIDE the sandbox next to student code (imports only stdlib, numpy and torch)."""
import json

import numpy as np
import torch

# Oracles raise errors tagged like this so the trusted side can name the mistake.
ORDER_TAG = "[backward order]"
# Cases with a batch larger than BIG_BATCH ship only the first SHIP_ROWS rows of per-sample
# arrays back (the trusted side's reference cuts the same rows).
BIG_BATCH = 1000
SHIP_ROWS = 8


# --- helpers ----------------------------------------------------------------------------

def _t(inputs, key):
    """A fresh, writable tensor of an input (the input files are read-only)."""
    return torch.from_numpy(np.array(inputs[key]))


def _g(t):
    """The `.g` a student stored on `t` (None if missing); the harness turns it into an array."""
    return getattr(t, "g", None)


def _returned(value) -> dict:
    """What the student's call returned: to recognise a gradient returned instead of stored."""
    if isinstance(value, (tuple, list)):
        return {f"returned.{i}": v for i, v in enumerate(value[:5])}
    return {"returned": value}


def _need(ns, name):
    if name not in ns:
        raise NameError(f"name '{name}' is not defined (the cell must define it)")
    return ns[name]


# Set by the harness while a case of a part with reference steps runs: ask(name, *tensors)
# sends the tensors to the supervisor, which computes the step (oracles.py) and answers.
ask = None


def _ask(name, *tensors):
    if ask is None:
        raise RuntimeError("the reference steps are not available here")
    return ask(name, *tensors)


def _tensor(value, what):
    """A forward result the probe must set .g on: a clear error when it is not a tensor."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{what} returned {type(value).__name__}, not a tensor")
    return value


def _upstream(t, step):
    g = getattr(t, "g", None)
    if not isinstance(g, torch.Tensor):
        raise RuntimeError(
            f"{ORDER_TAG} {step} was called with an output that has no .g yet")
    return g


# --- reference building blocks for part 4 (answered by the supervisor, never computed here) ---

class _Calls:
    """Which building block got which tensors, in order, as labels the diagnosis can read
    (x, l1, l2, out, w1...): plain data for the trusted side."""

    def __init__(self, t):
        self.labels = {id(t[k]): k for k in ("x", "w1", "b1", "w2", "b2", "targ")}
        self.log = []
        self.lins = 0

    def label(self, value):
        return self.labels.get(id(value), "other")

    def name(self, value, label):
        self.labels.setdefault(id(value), label)
        return value

    def record(self, fn, *args):
        self.log.append([fn, [self.label(a) for a in args]])


def _oracles(calls):
    def lin(x, w, b):
        calls.record("lin", x, w, b)
        calls.lins += 1
        return calls.name(x @ w + b, "l1" if calls.lins == 1 else "out")

    def relu(x):
        calls.record("relu", x)
        return calls.name(x.clamp_min(0.), "l2")

    def mse(output, targ):
        calls.record("mse", output, targ)
        return (output.squeeze(-1) - targ).pow(2).mean()

    def mse_grad(inp, targ):
        calls.record("mse_grad", inp, targ)
        inp.g = _ask("mse_grad", inp, targ)[0].to(inp.dtype)

    def relu_grad(inp, out):
        calls.record("relu_grad", inp, out)
        inp.g = _ask("relu_grad", inp, _upstream(out, "relu_grad(inp, out)"))[0].to(inp.dtype)

    def lin_grad(inp, out, w, b):
        calls.record("lin_grad", inp, out, w, b)
        up = _upstream(out, "lin_grad(inp, out, w, b)")
        inp.g, w.g, b.g = (g.to(t.dtype) for g, t in zip(_ask("lin_grad", inp, w, b, up), (inp, w, b)))

    return {"lin": lin, "relu": relu, "mse": mse, "mse_grad": mse_grad,
            "relu_grad": relu_grad, "lin_grad": lin_grad}


# --- parts 1-4: functions -----------------------------------------------------------------

def mse_grad(ns, inputs):
    inp, targ = _t(inputs, "inp"), _t(inputs, "targ")
    ret = _need(ns, "mse_grad")(inp, targ)
    return {"inp.g": _g(inp), "inp_after": inp, "targ_after": targ, **_returned(ret)}


def relu_grad(ns, inputs):
    inp = _t(inputs, "inp")
    out = inp.clamp_min(0.)
    out.g = _t(inputs, "out_g")
    ret = _need(ns, "relu_grad")(inp, out)
    return {"inp.g": _g(inp), "inp_after": inp, **_returned(ret)}


def lin_grad(ns, inputs):
    inp, w, b = _t(inputs, "inp"), _t(inputs, "w"), _t(inputs, "b")
    out = inp @ w + b
    out.g = _t(inputs, "out_g")
    ret = _need(ns, "lin_grad")(inp, out, w, b)
    return {"inp.g": _g(inp), "w.g": _g(w), "b.g": _g(b), "inp_after": inp,
            "w_after": w, "b_after": b, **_returned(ret)}


def _net(inputs):
    return {k: _t(inputs, k) for k in ("x", "targ", "w1", "b1", "w2", "b2")}


def _net_outputs(t):
    return {"x.g": _g(t["x"]), "w1.g": _g(t["w1"]), "b1.g": _g(t["b1"]),
            "w2.g": _g(t["w2"]), "b2.g": _g(t["b2"]), "x_after": t["x"]}


def forward_and_backward(ns, inputs):
    fab = _need(ns, "forward_and_backward")
    t = _net(inputs)
    calls = _Calls(t)
    # The student's function reads these names from its own cell's globals (normally ns).
    blocks = {**_oracles(calls), **{k: t[k] for k in ("w1", "b1", "w2", "b2")}}
    ns.update(blocks)
    getattr(fab, "__globals__", ns).update(blocks)
    try:
        ret = fab(t["x"], t["targ"])
    except BaseException as exc:
        exc.probe_values = {"calls": json.dumps(calls.log[:64])}  # the harness keeps these
        raise
    return {**_net_outputs(t), **_returned(ret), "calls": json.dumps(calls.log[:64])}


# --- parts 5-7: layers --------------------------------------------------------------------



def _layer_outputs(inp, out, **params):
    res = {"out": out, "inp.g": _g(inp), "inp_after": inp}
    for name, p in params.items():
        res[f"{name}.g"] = _g(p)
    return res


def _relu_probe(ns, inputs):
    inp = _t(inputs, "inp")
    layer = _need(ns, "Relu")()
    out = _tensor(layer(inp), "calling the Relu layer")
    out.g = _t(inputs, "out_g")
    layer.backward()
    return _layer_outputs(inp, out)


def _lin_probe(ns, inputs):
    inp, w, b = _t(inputs, "inp"), _t(inputs, "w"), _t(inputs, "b")
    layer = _need(ns, "Lin")(w, b)
    out = _tensor(layer(inp), "calling the Lin layer")
    out.g = _t(inputs, "out_g")
    layer.backward()
    return _layer_outputs(inp, out, w=w, b=b)


def _mse_probe(ns, inputs):
    inp, targ = _t(inputs, "inp"), _t(inputs, "targ")
    layer = _need(ns, "Mse")()
    loss = layer(inp, targ)
    layer.backward()
    return {"loss": loss, "inp.g": _g(inp), "inp_after": inp}


class_relu = module_relu = _relu_probe
class_lin = module_lin = _lin_probe
class_mse = module_mse = _mse_probe


def class_model(ns, inputs):
    t = _net(inputs)
    model = _need(ns, "Model")(t["w1"], t["b1"], t["w2"], t["b2"])
    loss = model(t["x"], t["targ"])
    model.backward()
    return {"loss": loss, **_net_outputs(t)}


def module_model(ns, inputs):
    """The lesson's model assembled from the student's part-6 layers (any Model is ignored)."""
    t = _net(inputs)
    layers = [_need(ns, "Lin")(t["w1"], t["b1"]), _need(ns, "Relu")(),
              ns["Lin"](t["w2"], t["b2"])]
    loss_layer = _need(ns, "Mse")()
    h = t["x"]
    for layer in layers:
        h = layer(h)
    loss = loss_layer(h, t["targ"])
    loss_layer.backward()
    for layer in reversed(layers):
        layer.backward()
    return {"loss": loss, **_net_outputs(t)}


def module_base(ns, inputs):
    """Subclasses the student's Module with a known layer and watches what reaches bwd."""
    seen = {}

    class Probe(_need(ns, "Module")):
        def forward(self, a, b):
            seen["forward"] = (a, b)
            return a * 2.0 + b

        def bwd(self, out, *args):
            seen["bwd"] = (out, args)

    a, b = _t(inputs, "a"), _t(inputs, "b")
    layer = Probe()
    returned = layer(a, b)
    layer.backward()
    fwd = seen.get("forward", ())
    out, args = seen.get("bwd", (None, ()))
    return {
        "returned": returned,
        "forward_got_args": len(fwd) == 2 and fwd[0] is a and fwd[1] is b,
        "bwd_called": "bwd" in seen,
        "bwd_out_is_returned": out is returned and returned is not None,
        "bwd_n_args": len(args),
        "bwd_args_are_inputs": len(args) == 2 and args[0] is a and args[1] is b,
    }


def lin_bwd(ns, inputs):
    """Part 7: Lin's own forward and bwd, called directly (a broken Module does not matter)."""
    inp, w, b = _t(inputs, "inp"), _t(inputs, "w"), _t(inputs, "b")
    layer = _need(ns, "Lin")(w, b)
    out = _tensor(layer.forward(inp), "Lin.forward")
    out.g = _t(inputs, "out_g")
    layer.bwd(out, inp)
    res = _layer_outputs(inp, out, w=w, b=b)
    if inp.shape[0] > BIG_BATCH:
        # The memory case: shipping 60 MB arrays back costs time and proves nothing new.
        res.pop("inp_after")
        res["out"] = out[:SHIP_ROWS]
        g = getattr(inp, "g", None)
        res["inp.g"] = g[:SHIP_ROWS] if isinstance(g, torch.Tensor) else g
    return res


class ReferenceModule:
    """Stands in for part 6's `Module` when the student's cells never defined one, so that
    part 7's `class Lin(Module)` can still be defined and graded on its own."""

    def __call__(self, *args):
        self.args = args
        self.out = self.forward(*args)
        return self.out

    def forward(self, *args):
        raise NotImplementedError("forward")

    def backward(self):
        self.bwd(self.out, *self.args)


# --- part 8: nn.Module --------------------------------------------------------------------

def nn_model(ns, inputs):
    """Builds Model(m, nh, 1), loads known weights into its parameters by shape, runs backward."""
    t = _net(inputs)
    m, nh = t["w1"].shape
    torch.manual_seed(0)
    model = _need(ns, "Model")(m, nh, 1)
    params = list(model.parameters()) if hasattr(model, "parameters") else []
    # nn.Linear stores weights as (out, in): the trusted (in, out) weights are transposed.
    known = {(nh, m): t["w1"].T, (nh,): t["b1"], (1, nh): t["w2"].T, (1,): t["b2"]}
    by_shape = {}
    with torch.no_grad():
        for p in params:
            shape = tuple(p.shape)
            if shape in known and shape not in by_shape:
                p.copy_(known[shape].to(p.dtype))
                by_shape[shape] = p
    res = {"n_parameters": len(params),
           "param_shapes": str(sorted(tuple(p.shape) for p in params))[:300]}
    loss = model(t["x"].float(), t["targ"].float())
    res["loss"] = loss
    if not (isinstance(loss, torch.Tensor) and loss.numel() == 1 and loss.requires_grad):
        return res  # not a loss autograd can start from: the suite reports the forward result
    loss.backward()  # part 8 may use autograd
    names = {(nh, m): "w1.grad", (nh,): "b1.grad", (1, nh): "w2.grad", (1,): "b2.grad"}
    for shape, name in names.items():
        p = by_shape.get(shape)
        res[name] = None if p is None else p.grad
    return res
