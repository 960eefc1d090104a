"""Writes source/gradient_backward/gradient_backward.ipynb (the instructor notebook) from the strings below."""
from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "gradient_backward"
RUBRIC = ROOT / "assignments" / ASSIGNMENT / "assignment.toml"
OUT = ROOT / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
SKIP_TAG = "grader:skip"

# ---------------------------------------------------------------------------------------
# The lesson, in order. Each entry: (kind, grade_id or None, source). Kinds:
#   md        markdown
#   locked    locked code cell the grader runs
#   show      locked code cell the grader skips (slow or only for show)
#   solution  the student's cell for part <grade_id>; followed by its test cell
# ---------------------------------------------------------------------------------------

INTRO = r"""# Gradient backward: backpropagation by hand

In this notebook you build the backward pass of a small neural network yourself, the way
fast.ai's 2019 lesson 8 does it: a two-layer perceptron `lin -> relu -> lin` trained with a
mean squared error loss. PyTorch's autograd could do it for you, but writing it once by hand
is the best way to see that there is no magic in it: only the chain rule, applied one layer
at a time, with careful attention to tensor shapes.

**How this notebook works**

* Run the cells from the top. Cells with a lock are given; do not change them.
* There are 8 parts. In each, replace `raise NotImplementedError(...)` with your code.
  Keep the function and class names and signatures: the grader calls them.
* After each part a locked cell runs a few **public checks** on small examples: they compare
  your answer with PyTorch's autograd and try to say what is off when it differs. The grader
  runs a larger **hidden** test suite on its own side, so passing the public checks is a
  good sign, not a guarantee.
* In parts 1 to 7 you compute gradients by hand. Using autograd there (`.backward()`,
  `torch.autograd`, `torch.func`) scores zero for that part. Part 8 is where you may use it.
* A gradient is stored on the `.g` attribute of the tensor it belongs to, e.g. `w1.g`.

**The data.** The lesson uses MNIST (28x28 images). So that this notebook runs without a
download, it uses a smaller set of real handwritten digits bundled next to it: 1,797 images
of 8x8 pixels from the UCI "Optical Recognition of Handwritten Digits" data set (see
`DATA_LICENSE.md`). If you have the lesson's `mnist.pkl.gz`, `get_data("mnist.pkl.gz")` loads
it instead, and everything below works the same, only slower.

Like the lesson, we treat the problem as a *regression*: the network outputs one number per
image and is trained to make it close to the digit's value (a 7 should give about 7.0). That
is not how you would classify digits in practice, but it keeps the loss simple."""

SETUP = r'''import gzip
import math
import pickle

import numpy as np
import torch
from torch import nn

N_TRAIN = 1500  # bundled digits: the first 1,500 images train, the other 297 validate


def get_data(path=None):
    """(x_train, y_train, x_valid, y_valid) as float32 tensors, the targets being the digit values.

    With no path: the 8x8 digits bundled next to this notebook. With a path: the lesson's mnist.pkl.gz.
    """
    if path is None:
        with np.load("digits.npz") as digits:
            x, y = digits["x"], digits["y"]
        x_train, y_train, x_valid, y_valid = x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:]
    else:
        with gzip.open(path, "rb") as f:
            (x_train, y_train), (x_valid, y_valid), _ = pickle.load(f, encoding="latin1")
    return tuple(torch.tensor(np.asarray(a), dtype=torch.float32)
                 for a in (x_train, y_train, x_valid, y_valid))


def normalize(x, mean, std):
    return (x - mean) / std


x_train, y_train, x_valid, y_valid = get_data()
# Validation data is scaled with the training statistics: at prediction time they are all we know.
train_mean, train_std = x_train.mean(), x_train.std()
x_train = normalize(x_train, train_mean, train_std)
x_valid = normalize(x_valid, train_mean, train_std)

n, m = x_train.shape
nh = 50

# Kaiming init (explained below); seeded so that everyone starts from the same weights.
torch.manual_seed(42)
w1 = torch.randn(m, nh) * math.sqrt(2 / m)
b1 = torch.zeros(nh)
w2 = torch.randn(nh, 1) / math.sqrt(nh)
b2 = torch.zeros(1)
print(f"x_train {tuple(x_train.shape)}, x_valid {tuple(x_valid.shape)}, hidden units {nh}")'''

FORWARD_MD = r"""## The forward pass

The model is $\text{out} = \mathrm{relu}(x W_1 + b_1)\, W_2 + b_2$, followed by the loss.
Shapes, with `n` images of `m` pixels and `nh` hidden units:

| tensor | shape | |
|---|---|---|
| `x` | `(n, m)` | one row per image |
| `w1`, `b1` | `(m, nh)`, `(nh,)` | first linear layer, weights in the lesson's `(in, out)` layout |
| `w2`, `b2` | `(nh, 1)`, `(1,)` | second linear layer |
| `out` | `(n, 1)` | one prediction per image |
| `targ` | `(n,)` | the digit values |

**Why `squeeze` in the loss?** `out` is `(n, 1)` and `targ` is `(n,)`. Subtracting them
directly does *not* fail: broadcasting turns it into an `(n, n)` matrix of every prediction
minus every target, and its mean is a meaningless number. `out.squeeze(-1)` makes the
prediction `(n,)` first. Keep this in mind in part 1: it is the most common bug of the lesson.

**Kaiming initialisation.** The setup cell draws `w1` from a normal distribution scaled by
$\sqrt{2/m}$. A linear layer with standard normal weights multiplies the scale of its input by
about $\sqrt{m}$ (it sums `m` products), so activations would blow up layer after layer;
dividing by $\sqrt{m}$ keeps their standard deviation near 1. ReLU sets about half of the
values to zero, which halves the variance: the extra factor 2 (He et al., 2015) compensates.
The next cell checks the shapes and shows the hidden activations' statistics."""

FORWARD = r'''def lin(x, w, b):
    return x @ w + b


def relu(x):
    return x.clamp_min(0.)


def mse(out, targ):
    return (out.squeeze(-1) - targ).pow(2).mean()'''

FORWARD_CHECK = r'''def model(xb):
    l1 = lin(xb, w1, b1)
    l2 = relu(l1)
    return lin(l2, w2, b2)


preds = model(x_valid)
assert preds.shape == (x_valid.shape[0], 1), f"expected one prediction per image, got {tuple(preds.shape)}"
hidden = relu(lin(x_valid, w1, b1))
print(f"output {tuple(preds.shape)}; hidden activations: mean {hidden.mean():.2f}, std {hidden.std():.2f}")
print(f"loss before any training: {mse(preds, y_valid):.2f}")'''

CHAIN_MD = r"""## The chain rule, and where the gradients go

Write the network as a chain of simple functions:

$$l_1 = x W_1 + b_1, \qquad l_2 = \mathrm{relu}(l_1), \qquad \text{out} = l_2 W_2 + b_2,
\qquad L = \mathrm{mse}(\text{out}, y).$$

To train, we need how the loss $L$ changes when each weight changes. The chain rule says that
the derivative of a composition is the product of the local derivatives, for instance

$$\frac{\partial L}{\partial l_1} = \frac{\partial L}{\partial \text{out}}\cdot
\frac{\partial \text{out}}{\partial l_2}\cdot\frac{\partial l_2}{\partial l_1}.$$

Why a product? Nudge $l_1$ by a tiny $\varepsilon$: $l_2$ moves by about
$\varepsilon\,\partial l_2/\partial l_1$, that nudge moves $\text{out}$ by that amount times
$\partial \text{out}/\partial l_2$, and so on up to $L$. Each stage scales the change it
receives by its own local derivative.

Backpropagation evaluates this product **from the loss backwards**. Each layer receives
$\partial L/\partial(\text{its output})$, which depends on everything after it, multiplies it
by its *local* derivative (which only needs the layer's own input and output), and hands
$\partial L/\partial(\text{its input})$ to the layer before it. So every layer is small and
independent, and the work is one pass back through the network.

Where to put these numbers? We store the gradient of the loss with respect to a tensor on
that tensor, as the attribute `.g` (PyTorch's autograd does the same with `.grad`):
`out.g` is $\partial L/\partial\text{out}$ and has the shape of `out`; `w1.g` has the shape of
`w1`. The layer before reads `out.g` from its output tensor; the optimiser later reads `w1.g`.

All gradients below are of the *mean* loss over the batch, so each one already includes the
$1/n$ from the mean."""

PART_MD = {
    "mse_grad": r"""## Part 1: the gradient of the loss

$L = \frac{1}{n}\sum_{i=1}^{n}(\text{out}_i - y_i)^2$. Work out $\partial L/\partial \text{out}_i$
and write `mse_grad(inp, targ)`, which stores it in `inp.g`, where `inp` is the model's output.

* `inp.g` must have the shape of `inp`, `(n, 1)`, not `(n,)`: the layer before multiplies it
  with its own tensors.
* `mse_grad` returns nothing; it *stores* the gradient.""",
    "relu_grad": r"""## Part 2: the gradient of ReLU

`out = relu(inp)` is `inp` where `inp > 0` and `0` elsewhere, so its local derivative is
1 where `inp > 0` and 0 elsewhere (at exactly 0 we pick 0, as PyTorch does).
Write `relu_grad(inp, out)`: it receives the gradient `out.g` and stores in `inp.g` the
gradient of the loss with respect to `inp` (the chain rule, element by element).""",
    "lin_grad": r"""## Part 3: the gradient of a linear layer

For `out = inp @ w + b`, element by element: $\text{out}_{ij} = \sum_k \text{inp}_{ik}\,w_{kj} + b_j$.
Given `out.g` (call it $g$, shape `(n, out)`), the chain rule gives

$$\frac{\partial L}{\partial \text{inp}_{ik}} = \sum_j g_{ij}\, w_{kj}, \qquad
\frac{\partial L}{\partial w_{kj}} = \sum_i \text{inp}_{ik}\, g_{ij}, \qquad
\frac{\partial L}{\partial b_j} = \sum_i g_{ij}.$$

Write `lin_grad(inp, out, w, b)` to store `inp.g` `(n, in)`, `w.g` `(in, out)` and `b.g` `(out,)`.
Look at the sums over $i$: every image in the batch contributes to the weights' gradient.
The lesson builds `w.g` as a sum of per-image outer products; any correct way is fine here
(part 7 comes back to this).""",
    "forward_and_backward": r"""## Part 4: the whole forward and backward pass

Put it together. `forward_and_backward(inp, targ)` runs the forward pass with the globals
`w1, b1, w2, b2` (keep the intermediate tensors, the backward pass needs them), then the
backward pass *in reverse order*, using parts 1-3, so that afterwards `inp.g`, `w1.g`, `b1.g`,
`w2.g` and `b2.g` are all set. Nothing needs to be returned.

The public check compares every gradient with PyTorch's autograd. If parts 1-3 pass their
checks and this one fails, the mistake is in how the pieces are wired.""",
    "layers_as_classes": r"""## Part 5: layers as classes

Functions that pass `inp`, `out`, `w`, `b` around get messy. The lesson's refactor: each layer
is an object that *remembers* its input and output during the forward pass (`__call__`), so
that its `backward()` needs no arguments: it reads `self.out.g` and sets `self.inp.g` (and the
gradients of its weights).

Write `Relu`, `Lin` and `Mse` this way (use the plain `relu`; the lesson's experiment with
`relu(x) - 0.5` is not part of this homework), and `Model(w1, b1, w2, b2)`: `model(x, targ)`
runs the layers and returns the loss, and `model.backward()` calls the loss's and the layers'
`backward()` in reverse order.""",
    "module_forward": r"""## Part 6: a `Module` base class

Every class in part 5 repeats the same bookkeeping: remember the inputs, compute, remember the
output. Move it into a base class `Module`:

* `__call__(self, *args)` stores `args` in `self.args`, sets `self.out = self.forward(*args)`
  and returns it;
* `backward(self)` calls `self.bwd(self.out, *self.args)`.

Then each layer only says what is specific to it: `forward(...)` and `bwd(out, ...)`, which
receives the output (carrying `out.g`) and the same arguments the forward pass got.
As in the lesson, `Lin.bwd` may compute `w.g` with `torch.einsum("bi,bj->ij", inp, out.g)`.""",
    "lin_without_einsum": r"""## Part 7: `Lin` without einsum

Look again at $\partial L/\partial w_{kj} = \sum_i \text{inp}_{ik}\, g_{ij}$. Building it as
`(inp.unsqueeze(-1) * out.g.unsqueeze(1)).sum(0)` first materialises an `(n, in, out)` tensor
of per-image outer products, only to sum it away. For the lesson's MNIST first layer that is
50,000 x 784 x 50 floats, about 7.8 GB, for a result of 784 x 50 (with our 1,500 digits of
64 pixels it is 1500 x 64 x 50 floats, 19 MB: harmless here, but it grows with every
dimension). A sum over $i$ of products is exactly what a matrix product computes, without the
big intermediate.

Write `Lin(Module)` again so that `bwd` gets `w.g` from **one matrix product** (no `einsum`,
no outer product). The rest of the layer is as in part 6.""",
    "nn_module": r"""## Part 8: `nn.Linear` and `nn.Module`

Now let PyTorch do it. `nn.Linear(n_in, n_out)` holds a weight and a bias (note: its
`weight` has the shape `(n_out, n_in)` and it computes `x @ weight.T + bias`), and autograd
computes their gradients with `loss.backward()`: allowed here.

Write `Model(n_in, nh, n_out)` as a subclass of `nn.Module` with layers `nn.Linear(n_in, nh)`,
`nn.ReLU()`, `nn.Linear(nh, n_out)`; `model(x, targ)` returns the `mse` loss.

One trap: `nn.Module` only finds the parameters of submodules it knows about. A layer stored as
an attribute (`self.l1 = nn.Linear(...)`) is registered; layers in a plain Python list are
not, so `model.parameters()` would be empty and an optimiser would never update them. Use
`nn.ModuleList` or `nn.Sequential` for a list of layers.""",
}

SOLUTIONS = {
    "mse_grad": r'''def mse_grad(inp, targ):
    """Store in inp.g the gradient of mse(inp, targ) with respect to inp, shape (n, 1)."""
    ### BEGIN SOLUTION
    inp.g = 2. * (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]
    ### END SOLUTION''',
    "relu_grad": r'''def relu_grad(inp, out):
    """Store in inp.g the gradient of the loss with respect to relu's input, from out.g."""
    ### BEGIN SOLUTION
    inp.g = (inp > 0).float() * out.g
    ### END SOLUTION''',
    "lin_grad": r'''def lin_grad(inp, out, w, b):
    """For out = inp @ w + b, store inp.g (n, in), w.g (in, out) and b.g (out,) from out.g (n, out)."""
    ### BEGIN SOLUTION
    inp.g = out.g @ w.t()
    w.g = (inp.unsqueeze(-1) * out.g.unsqueeze(1)).sum(0)
    b.g = out.g.sum(0)
    ### END SOLUTION''',
    "forward_and_backward": r'''def forward_and_backward(inp, targ):
    """Forward lin, relu, lin, mse with w1, b1, w2, b2; then set .g on inp, w1, b1, w2, b2 with parts 1-3."""
    ### BEGIN SOLUTION
    l1 = lin(inp, w1, b1)
    l2 = relu(l1)
    out = lin(l2, w2, b2)
    # The loss value itself is not needed by the backward pass.
    loss = mse(out, targ)

    mse_grad(out, targ)
    lin_grad(l2, out, w2, b2)
    relu_grad(l1, l2)
    lin_grad(inp, l1, w1, b1)
    ### END SOLUTION''',
    "layers_as_classes": r'''class Relu():
    def __call__(self, inp):
        """Remember inp and self.out = relu(inp); return self.out."""
        ### BEGIN SOLUTION
        self.inp = inp
        self.out = inp.clamp_min(0.)
        return self.out
        ### END SOLUTION

    def backward(self):
        """Set self.inp.g from self.out.g."""
        ### BEGIN SOLUTION
        self.inp.g = (self.inp > 0).float() * self.out.g
        ### END SOLUTION


class Lin():
    def __init__(self, w, b):
        self.w, self.b = w, b

    def __call__(self, inp):
        """Remember inp and self.out = inp @ w + b; return self.out."""
        ### BEGIN SOLUTION
        self.inp = inp
        self.out = inp @ self.w + self.b
        return self.out
        ### END SOLUTION

    def backward(self):
        """Set self.inp.g, self.w.g and self.b.g from self.out.g."""
        ### BEGIN SOLUTION
        self.inp.g = self.out.g @ self.w.t()
        # Builds an (n, in, out) tensor only to sum it: part 7 does better.
        self.w.g = (self.inp.unsqueeze(-1) * self.out.g.unsqueeze(1)).sum(0)
        self.b.g = self.out.g.sum(0)
        ### END SOLUTION


class Mse():
    def __call__(self, inp, targ):
        """Remember inp and targ and self.out = mse(inp, targ); return self.out."""
        ### BEGIN SOLUTION
        self.inp, self.targ = inp, targ
        self.out = mse(inp, targ)
        return self.out
        ### END SOLUTION

    def backward(self):
        """Set self.inp.g, the gradient of the loss with respect to the prediction."""
        ### BEGIN SOLUTION
        self.inp.g = 2. * (self.inp.squeeze(-1) - self.targ).unsqueeze(-1) / self.targ.shape[0]
        ### END SOLUTION


class Model():
    def __init__(self, w1, b1, w2, b2):
        """Keep the layers Lin(w1, b1), Relu(), Lin(w2, b2) and the loss Mse()."""
        ### BEGIN SOLUTION
        self.layers = [Lin(w1, b1), Relu(), Lin(w2, b2)]
        self.loss = Mse()
        ### END SOLUTION

    def __call__(self, x, targ):
        """Run x through the layers; return the loss against targ."""
        ### BEGIN SOLUTION
        for layer in self.layers:
            x = layer(x)
        return self.loss(x, targ)
        ### END SOLUTION

    def backward(self):
        """Backward through the loss, then through the layers in reverse order."""
        ### BEGIN SOLUTION
        self.loss.backward()
        for layer in reversed(self.layers):
            layer.backward()
        ### END SOLUTION''',
    "module_forward": r'''class Module():
    def __call__(self, *args):
        """Remember args, set self.out = self.forward(*args) and return it."""
        ### BEGIN SOLUTION
        self.args = args
        self.out = self.forward(*args)
        return self.out
        ### END SOLUTION

    def forward(self, *args):
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def backward(self):
        """Call self.bwd with the output and the arguments of the forward pass."""
        ### BEGIN SOLUTION
        self.bwd(self.out, *self.args)
        ### END SOLUTION


class Relu(Module):
    def forward(self, inp):
        """Return relu(inp)."""
        ### BEGIN SOLUTION
        return inp.clamp_min(0.)
        ### END SOLUTION

    def bwd(self, out, inp):
        """Set inp.g from out.g."""
        ### BEGIN SOLUTION
        inp.g = (inp > 0).float() * out.g
        ### END SOLUTION


class Lin(Module):
    def __init__(self, w, b):
        self.w, self.b = w, b

    def forward(self, inp):
        """Return inp @ w + b."""
        ### BEGIN SOLUTION
        return inp @ self.w + self.b
        ### END SOLUTION

    def bwd(self, out, inp):
        """Set inp.g, self.w.g and self.b.g from out.g."""
        ### BEGIN SOLUTION
        inp.g = out.g @ self.w.t()
        self.w.g = torch.einsum("bi,bj->ij", inp, out.g)
        self.b.g = out.g.sum(0)
        ### END SOLUTION


class Mse(Module):
    def forward(self, inp, targ):
        """Return mse(inp, targ)."""
        ### BEGIN SOLUTION
        return mse(inp, targ)
        ### END SOLUTION

    def bwd(self, out, inp, targ):
        """Set inp.g, the gradient of the loss with respect to the prediction."""
        ### BEGIN SOLUTION
        inp.g = 2. * (inp.squeeze(-1) - targ).unsqueeze(-1) / targ.shape[0]
        ### END SOLUTION''',
    "lin_without_einsum": r'''class Lin(Module):
    def __init__(self, w, b):
        self.w, self.b = w, b

    def forward(self, inp):
        """Return inp @ w + b."""
        ### BEGIN SOLUTION
        return inp @ self.w + self.b
        ### END SOLUTION

    def bwd(self, out, inp):
        """Set inp.g, self.w.g and self.b.g from out.g; w.g with one matrix product."""
        ### BEGIN SOLUTION
        inp.g = out.g @ self.w.t()
        self.w.g = inp.t() @ out.g
        self.b.g = out.g.sum(0)
        ### END SOLUTION''',
    "nn_module": r'''class Model(nn.Module):
    def __init__(self, n_in, nh, n_out):
        """Register the layers nn.Linear(n_in, nh), nn.ReLU(), nn.Linear(nh, n_out)."""
        super().__init__()
        ### BEGIN SOLUTION
        self.layers = nn.ModuleList([nn.Linear(n_in, nh), nn.ReLU(), nn.Linear(nh, n_out)])
        ### END SOLUTION

    def forward(self, x, targ):
        """Run x through the layers; return mse against targ."""
        ### BEGIN SOLUTION
        for layer in self.layers:
            x = layer(x)
        return mse(x, targ)
        ### END SOLUTION''',
}

# The public check each test cell runs: the arguments are names the part's cell defines.
CHECK_ARGS = {
    "mse_grad": "mse_grad",
    "relu_grad": "relu_grad",
    "lin_grad": "lin_grad",
    "forward_and_backward": "forward_and_backward",
    "layers_as_classes": "Relu, Lin, Mse, Model",
    "module_forward": "Module, Relu, Lin, Mse",
    "lin_without_einsum": "Lin",
    "nn_module": "Model",
}

KEEP_MODEL = r'''# Part 8 reuses the name Model. Part 5's Model looks up Lin, Relu and Mse when it is created, so from
# here on it builds your Module layers (parts 6 and 7): keep it for the training at the end.
ModelByHand = Model'''

TRAIN_MD = r"""## Training with your own layers

Everything is in place to train the network with nothing but your code: your `Model` from
part 5, which now builds part 7's `Lin` and part 6's `Relu` and `Mse`. Each step runs the
forward pass, the backward pass, and moves every weight a little against its gradient:
`p -= lr * p.g`. The loss should fall steadily. (The grader does not run the cells below.)"""

TRAIN = r'''def accuracy(pred, targ):
    """Fraction of images whose prediction, rounded to a digit, is the right digit."""
    return (pred.squeeze(-1).round().clamp(0, 9) == targ).float().mean().item()


# Fresh weights, so that training leaves the globals of the parts above alone.
torch.manual_seed(0)
params = [torch.randn(m, nh) * math.sqrt(2 / m), torch.zeros(nh),
          torch.randn(nh, 1) / math.sqrt(nh), torch.zeros(1)]
lr, steps = 0.03, 300
losses = []
net = ModelByHand(*params)
for step in range(steps + 1):
    loss = net(x_train, y_train)
    losses.append(loss.item())
    net.backward()
    for p in params:
        p -= lr * p.g
    if step % 50 == 0:
        pred = lin(relu(lin(x_valid, params[0], params[1])), params[2], params[3])
        print(f"step {step:3d}  train loss {loss.item():6.3f}  valid loss {mse(pred, y_valid).item():6.3f}"
              f"  valid accuracy (rounded) {accuracy(pred, y_valid):.2f}")'''

PLOT = r'''try:
    import matplotlib.pyplot as plt
except ImportError:
    print("matplotlib is not installed: the losses are printed above.")
else:
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(losses)
    ax.set(xlabel="step", ylabel="training loss (MSE)", yscale="log", title="Backprop by hand, learning")
    plt.show()'''

TORCH_MD = r"""### The same, with PyTorch

For comparison, part 8's `Model` trained the usual PyTorch way: autograd fills `.grad`, and an
optimiser (`torch.optim.SGD`) does the `p -= lr * p.grad` step for every registered parameter."""

TORCH_TRAIN = r'''torch.manual_seed(0)
torch_model = Model(m, nh, 1)
opt = torch.optim.SGD(torch_model.parameters(), lr=lr)
for step in range(steps + 1):
    loss = torch_model(x_train, y_train)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 100 == 0:
        print(f"step {step:3d}  train loss {loss.item():6.3f}")'''

CLOSING_MD = r"""## What you built

You computed every gradient of a neural network with the chain rule, checked it against
autograd, turned it into reusable layers, removed a memory-hungry intermediate, and trained
the network with it. `loss.backward()` in PyTorch does exactly this bookkeeping for any
network: each operation records its inputs in the forward pass and knows its local
derivative for the backward pass."""


def read_points(rubric: Path = RUBRIC) -> dict[str, int]:
    """Points per part, from the assignment's rubric (the single source of points)."""
    parts = tomllib.loads(rubric.read_text())["parts"]
    return {part: spec["points"] for part, spec in parts.items()}


def nbgrader_meta(grade_id: str, *, grade: bool, solution: bool, locked: bool, points=None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution}
    if points is not None:
        meta["points"] = points
    return meta


def test_cell_source(part: str) -> str:
    check = f"check_{part}"
    return (f"from gbcheck import {check}\n{check}({CHECK_ARGS[part]})\n"
            "### BEGIN HIDDEN TESTS\n"
            f"# The hidden suite assignments/{ASSIGNMENT}/test_{part}.py runs on the grader's trusted side.\n"
            "### END HIDDEN TESTS")


class _Cells:
    """Collects cells with stable ids, so the file only changes when the lesson does."""

    def __init__(self):
        self.cells = []
        self._md_count = 0

    def md(self, text: str):
        self._md_count += 1
        cell = nbformat.v4.new_markdown_cell(text)
        cell.id = f"md-{self._md_count:02d}"
        self.cells.append(cell)

    def code(self, text: str, grade_id: str, *, kind: str, points=None):
        cell = nbformat.v4.new_code_cell(text)
        cell.id = grade_id.replace("_", "-")
        cell.metadata["nbgrader"] = nbgrader_meta(
            grade_id, grade=kind == "test", solution=kind == "solution",
            locked=kind != "solution", points=points)
        if kind == "show":
            cell.metadata["tags"] = [SKIP_TAG]
        self.cells.append(cell)


def build(points: dict[str, int]) -> nbformat.NotebookNode:
    if set(points) != set(SOLUTIONS):
        raise SystemExit(f"rubric parts {sorted(points)} differ from the notebook's {sorted(SOLUTIONS)}")
    c = _Cells()
    c.md(INTRO)
    c.code(SETUP, "setup", kind="locked")
    c.md(FORWARD_MD)
    c.code(FORWARD, "forward_pass", kind="locked")
    c.code(FORWARD_CHECK, "forward_check", kind="locked")
    c.md(CHAIN_MD)
    for part in points:  # the rubric's order is the lesson's order
        c.md(PART_MD[part])
        c.code(SOLUTIONS[part], part, kind="solution")
        c.code(test_cell_source(part), f"test_{part}", kind="test", points=points[part])
        if part == "lin_without_einsum":
            c.code(KEEP_MODEL, "keep_model", kind="show")
    c.md(TRAIN_MD)
    c.code(TRAIN, "train_by_hand", kind="show")
    c.code(PLOT, "train_plot", kind="show")
    c.md(TORCH_MD)
    c.code(TORCH_TRAIN, "train_nn_module", kind="show")
    c.md(CLOSING_MD)
    nb = nbformat.v4.new_notebook(cells=c.cells)
    nb.nbformat_minor = 5
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    nbformat.validate(nb)
    return nb


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--check", action="store_true", help="exit 1 if the committed notebook is out of date")
    args = ap.parse_args(argv)
    text = nbformat.writes(build(read_points())) + "\n"
    if args.check:
        current = args.out.read_text() if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date: run tools/build_notebook.py", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text)
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
