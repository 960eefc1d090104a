"""The hidden test cases of gradient_backward: which probe runs on which deterministic inputs."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

# Pre-activations closer to 0 than this would make ReLU's gradient depend on `>` vs `>=`.
KINK_MARGIN = 0.05


@dataclass(frozen=True)
class Case:
    """One call of one probe on one set of inputs; `id` is unique across the assignment."""
    part: str
    name: str
    probe: str
    dtype: str = "float32"
    seed: int = 0
    dims: tuple[tuple[str, int], ...] = ()
    # Share of the part's points relative to the other cases (the scoring reads it).
    weight: float = 1.0
    # > 0: the sandbox's supervisor measures the peak memory this case adds (from the kernel)
    # and fails it above this many MB.
    peak_mb: float = 0.0

    @property
    def id(self) -> str:
        return f"{self.part}/{self.name}"

    @property
    def shape(self) -> dict[str, int]:
        return dict(self.dims)

    def make_inputs(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        arrays = _MAKERS[_FAMILY[self.probe]](rng, **self.shape)
        return {k: v.astype(self.dtype) for k, v in arrays.items()}


def _away_from_kink(rng, shape) -> np.ndarray:
    """Random values with random signs whose magnitude is at least KINK_MARGIN."""
    return rng.choice([-1.0, 1.0], size=shape) * (KINK_MARGIN * 2 + np.abs(rng.normal(size=shape)))


def _mse_inputs(rng, n):
    return {"inp": rng.normal(size=(n, 1)), "targ": rng.normal(size=(n,))}


def _relu_inputs(rng, n, k):
    return {"inp": _away_from_kink(rng, (n, k)), "out_g": rng.normal(size=(n, k))}


def _lin_inputs(rng, n, i, o):
    return {"inp": rng.normal(size=(n, i)), "w": rng.normal(size=(i, o)) / np.sqrt(i),
            "b": rng.normal(size=(o,)) * 0.5, "out_g": rng.normal(size=(n, o))}


def _net_inputs(rng, n, m, nh):
    """A two-layer net's inputs whose hidden pre-activations all stay clear of ReLU's kink."""
    w1 = rng.normal(size=(m, nh)) * 2.0 / np.sqrt(m)
    b1 = rng.normal(size=(nh,)) * 0.5
    rows = []
    while sum(len(r) for r in rows) < n:
        # Whole rows are redrawn: a sample's pre-activations cannot be nudged one by one.
        cand = rng.normal(size=(256, m))
        pre = cand @ w1 + b1
        rows.append(cand[np.abs(pre).min(axis=1) >= 2 * KINK_MARGIN])
    x = np.concatenate(rows)[:n]
    return {"x": x, "targ": rng.normal(size=(n,)), "w1": w1, "b1": b1,
            "w2": rng.normal(size=(nh, 1)) / np.sqrt(nh), "b2": rng.normal(size=(1,)) * 0.5}


def _module_base_inputs(rng, n, k):
    return {"a": rng.normal(size=(n, k)), "b": rng.normal(size=(n, k))}


_MAKERS = {"mse": _mse_inputs, "relu": _relu_inputs, "lin": _lin_inputs, "net": _net_inputs,
           "module_base": _module_base_inputs}

# probe name -> the family of inputs it reads
_FAMILY = {
    "mse_grad": "mse", "relu_grad": "relu", "lin_grad": "lin", "forward_and_backward": "net",
    "class_relu": "relu", "class_lin": "lin", "class_mse": "mse", "class_model": "net",
    "module_base": "module_base", "module_relu": "relu", "module_lin": "lin",
    "module_mse": "mse", "module_model": "net", "lin_bwd": "lin", "nn_model": "net",
}


def _c(part, name, probe, dtype="float32", seed=0, **dims) -> Case:
    return Case(part, name, probe, dtype, seed, tuple(dims.items()))


# The part-7 memory case: an (n, in, out) float32 intermediate needs 2000*784*50*4 bytes
# (314 MB), far more than the MEMORY_CASE_PEAK_MB the case may add at its peak, while
# inp.T @ out.g needs 6 MB of inputs and 160 KB out (an honest Lin.bwd peaks at 36 MB).
# At 4000 rows (627 MB against 256) the case was a fifth of every submission's probing.
MEMORY_CASE_DIMS = {"n": 2000, "i": 784, "o": 50}
MEMORY_CASE_PEAK_MB = 128

_CASES = [
    _c("mse_grad", "n64_f32", "mse_grad", seed=101, n=64),
    _c("mse_grad", "n1_f32", "mse_grad", seed=102, n=1),
    _c("mse_grad", "n7_f64", "mse_grad", "float64", seed=103, n=7),
    _c("mse_grad", "n1000_f32", "mse_grad", seed=104, n=1000),
    _c("mse_grad", "n50_f64", "mse_grad", "float64", seed=105, n=50),

    _c("relu_grad", "64x50_f32", "relu_grad", seed=201, n=64, k=50),
    _c("relu_grad", "1x10_f32", "relu_grad", seed=202, n=1, k=10),
    _c("relu_grad", "32x200_f64", "relu_grad", "float64", seed=203, n=32, k=200),
    _c("relu_grad", "16x3_f32", "relu_grad", seed=204, n=16, k=3),
    _c("relu_grad", "8x100_f64", "relu_grad", "float64", seed=205, n=8, k=100),

    _c("lin_grad", "64_20x50_f32", "lin_grad", seed=301, n=64, i=20, o=50),
    _c("lin_grad", "1_5x3_f32", "lin_grad", seed=302, n=1, i=5, o=3),
    _c("lin_grad", "32_50x1_f64", "lin_grad", "float64", seed=303, n=32, i=50, o=1),
    _c("lin_grad", "16_10x200_f64", "lin_grad", "float64", seed=304, n=16, i=10, o=200),
    _c("lin_grad", "8_30x30_f32", "lin_grad", seed=305, n=8, i=30, o=30),

    _c("forward_and_backward", "64_20_50_f32", "forward_and_backward", seed=401, n=64, m=20, nh=50),
    _c("forward_and_backward", "1_10_30_f32", "forward_and_backward", seed=402, n=1, m=10, nh=30),
    _c("forward_and_backward", "32_10_200_f64", "forward_and_backward", "float64", seed=403,
       n=32, m=10, nh=200),
    _c("forward_and_backward", "16_784_50_f32", "forward_and_backward", seed=404, n=16, m=784, nh=50),

    _c("layers_as_classes", "relu_64x50_f32", "class_relu", seed=501, n=64, k=50),
    _c("layers_as_classes", "relu_1x10_f64", "class_relu", "float64", seed=502, n=1, k=10),
    _c("layers_as_classes", "lin_64_20x50_f32", "class_lin", seed=503, n=64, i=20, o=50),
    _c("layers_as_classes", "lin_1_5x3_f64", "class_lin", "float64", seed=504, n=1, i=5, o=3),
    _c("layers_as_classes", "mse_n64_f32", "class_mse", seed=505, n=64),
    _c("layers_as_classes", "mse_n1_f64", "class_mse", "float64", seed=506, n=1),
    _c("layers_as_classes", "model_64_20_50_f32", "class_model", seed=507, n=64, m=20, nh=50),
    _c("layers_as_classes", "model_16_10_200_f64", "class_model", "float64", seed=508,
       n=16, m=10, nh=200),

    _c("module_forward", "module_keeps_args", "module_base", seed=601, n=4, k=3),
    _c("module_forward", "relu_64x50_f32", "module_relu", seed=602, n=64, k=50),
    _c("module_forward", "lin_64_20x50_f32", "module_lin", seed=603, n=64, i=20, o=50),
    _c("module_forward", "lin_1_5x3_f64", "module_lin", "float64", seed=604, n=1, i=5, o=3),
    _c("module_forward", "mse_n32_f32", "module_mse", seed=605, n=32),
    _c("module_forward", "model_64_20_50_f32", "module_model", seed=606, n=64, m=20, nh=50),
    _c("module_forward", "model_1_10_30_f64", "module_model", "float64", seed=607, n=1, m=10, nh=30),

    _c("lin_without_einsum", "64_20x50_f32", "lin_bwd", seed=701, n=64, i=20, o=50),
    _c("lin_without_einsum", "1_5x3_f64", "lin_bwd", "float64", seed=702, n=1, i=5, o=3),
    _c("lin_without_einsum", "32_50x1_f32", "lin_bwd", seed=703, n=32, i=50, o=1),
    # The point of part 7: an (n, in, out) outer product fails here, so it weighs 2/3 of the part.
    replace(_c("lin_without_einsum", "memory_2000_784x50_f32", "lin_bwd", seed=704,
               **MEMORY_CASE_DIMS), weight=6.0, peak_mb=MEMORY_CASE_PEAK_MB),

    _c("nn_module", "64_20_50", "nn_model", seed=801, n=64, m=20, nh=50),
    _c("nn_module", "1_10_30", "nn_model", seed=802, n=1, m=10, nh=30),
    _c("nn_module", "128_784_50", "nn_model", seed=803, n=128, m=784, nh=50),
]


def all_cases() -> list[Case]:
    """Every case, in a stable order (parts in rubric order)."""
    return list(_CASES)


def cases_for(part: str) -> list[Case]:
    return [c for c in _CASES if c.part == part]


def case_by_id(case_id: str) -> Case:
    return next(c for c in _CASES if c.id == case_id)
