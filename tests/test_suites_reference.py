"""The hidden suites checked against themselves, without any sandbox: cases, references, probes."""
from __future__ import annotations

import ast
import inspect
from collections import Counter

import numpy as np
import pytest

from autograder import assignment, rubric
from autograder.sandbox.launcher import Limits

RUBRIC = rubric.load("gradient_backward")
cases = assignment.load(RUBRIC.folder, "cases")
verdicts = assignment.load(RUBRIC.folder, "verdicts")
probes = assignment.load(RUBRIC.folder, "probes")
reference = assignment.load(RUBRIC.folder, "reference")

ALL = cases.all_cases()
SMALL = [c for c in ALL if c.shape.get("n", 0) <= probes.BIG_BATCH]
NET_PROBES = {"forward_and_backward", "class_model", "module_model", "nn_model"}


def test_case_ids_are_unique_stable_and_cover_every_part():
    """Are ids unique, the order stable, each part given a modest number of cases with real probes?"""
    assert len({c.id for c in ALL}) == len(ALL)
    assert [c.id for c in cases.all_cases()] == [c.id for c in ALL]
    counts = Counter(c.part for c in ALL)
    assert set(counts) == set(RUBRIC.part_names)
    assert all(3 <= k <= 8 for k in counts.values()), counts
    for part in RUBRIC.part_names:
        assert cases.cases_for(part) == [c for c in ALL if c.part == part]
    for c in ALL:
        assert callable(getattr(probes, c.probe)), c.probe
        assert c.id == f"{c.part}/{c.name}"


def test_cases_cover_batch_of_one_both_dtypes_and_odd_layer_shapes():
    """Does every graded part see a batch of 1 and float32, parts 1-7 float64, and non-square layers?"""
    for part in RUBRIC.part_names:
        mine = cases.cases_for(part)
        assert any(c.shape.get("n") == 1 for c in mine), part
        assert any(c.dtype == "float32" for c in mine), part
        if part != "nn_module":
            assert any(c.dtype == "float64" for c in mine), part
    layers = [c.shape for c in ALL if "i" in c.shape]
    assert any(s["i"] != s["o"] for s in layers) and any(s["o"] == 1 for s in layers)
    assert any(s["nh"] >= 200 for s in (c.shape for c in ALL) if "nh" in s), "no wide hidden layer"
    for c in cases.cases_for("nn_module"):
        m, nh = c.shape["m"], c.shape["nh"]
        assert m != nh and 1 not in (m, nh), "parameters could not be matched by shape"


@pytest.mark.parametrize("case", SMALL, ids=lambda c: c.id)
def test_inputs_and_references_are_deterministic(case):
    """Do two fresh computations give bit-identical inputs and autograd references of the case's dtype?"""
    first, second = case.make_inputs(), case.make_inputs()
    assert first.keys() == second.keys()
    for k in first:
        assert first[k].dtype == np.dtype(case.dtype) and np.array_equal(first[k], second[k]), k
    again = reference._computed(case)     # a fresh autograd computation, not the kit's cache
    for k, v in reference.expected(case).items():
        assert v.dtype == np.float64 and np.array_equal(v, again[k]), k


@pytest.mark.parametrize("case", [c for c in ALL if c.probe in NET_PROBES or "relu" in c.probe],
                         ids=lambda c: c.id)
def test_relu_inputs_stay_clear_of_the_kink(case):
    """Is every pre-activation at least 0.05 away from 0, in the case's own dtype?"""
    x = reference.inputs(case)
    pre = x["inp"] if "inp" in x else x["x"] @ x["w1"] + x["b1"]
    assert np.abs(pre).min() >= cases.KINK_MARGIN


def _closed_form(case) -> dict[str, np.ndarray]:
    """The gradients written out by hand, to check the autograd references against."""
    x = {k: v.astype(np.float64) for k, v in reference.inputs(case).items()}
    if "targ" in x and "inp" in x:
        return {"inp.g": 2 * (x["inp"][:, 0] - x["targ"])[:, None] / len(x["targ"])}
    if "w" in x:
        return {"inp.g": x["out_g"] @ x["w"].T, "w.g": x["inp"].T @ x["out_g"],
                "b.g": x["out_g"].sum(0)}
    if "out_g" in x:
        return {"inp.g": (x["inp"] > 0) * x["out_g"]}
    if "w1" in x:
        l1 = x["x"] @ x["w1"] + x["b1"]
        l2 = np.maximum(l1, 0)
        g_out = 2 * ((l2 @ x["w2"] + x["b2"])[:, 0] - x["targ"])[:, None] / len(x["targ"])
        g_l1 = (g_out @ x["w2"].T) * (l1 > 0)
        grads = {"x.g": g_l1 @ x["w1"].T, "w1.g": x["x"].T @ g_l1, "b1.g": g_l1.sum(0),
                 "w2.g": l2.T @ g_out, "b2.g": g_out.sum(0)}
        if case.probe == "nn_model":
            return {"w1.grad": grads["w1.g"].T, "b1.grad": grads["b1.g"],
                    "w2.grad": grads["w2.g"].T, "b2.grad": grads["b2.g"]}
        return grads
    return {"returned": 2 * x["a"] + x["b"]}


@pytest.mark.parametrize("case", SMALL, ids=lambda c: c.id)
def test_references_agree_with_the_chain_rule_by_hand(case):
    """Do the autograd references equal the hand-derived gradients, and hold every key the suite reads?"""
    ref = reference.expected(case)
    assert set(verdicts.OUTPUTS[case.probe]) <= set(ref)
    for key, want in _closed_form(case).items():
        np.testing.assert_allclose(ref[key], want, rtol=1e-10, atol=1e-12, err_msg=key)


def test_memory_case_cannot_fit_as_an_outer_product_but_fits_as_a_matmul():
    """Does part 7's memory case need more than its measured peak allows only as (n, in, out)?"""
    case = cases.case_by_id("lin_without_einsum/memory_2000_784x50_f32")
    n, i, o = case.shape["n"], case.shape["i"], case.shape["o"]
    x = reference.inputs(case)
    assert x["inp"].shape == (2000, 784) and x["out_g"].shape == (2000, 50)
    assert x["inp"].dtype == np.float32
    limit = case.peak_mb * 2**20
    assert n * i * o * 4 > limit, "an outer product would fit"
    assert (x["inp"].nbytes + x["out_g"].nbytes) * 3 < limit / 4
    ref = reference.expected(case)
    assert ref["w.g"].shape == (i, o) and ref["inp.g"].shape == (probes.SHIP_ROWS, i)
    np.testing.assert_allclose(ref["w.g"], x["inp"].astype(np.float64).T @ x["out_g"], rtol=1e-9)


def test_probes_import_only_stdlib_numpy_and_torch():
    """Does the code sent into the sandbox import nothing from the repository or beyond numpy/torch?"""
    tree = ast.parse(inspect.getsource(probes))
    roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    roots |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert roots <= {"contextlib", "json", "traceback", "numpy", "torch"}, roots


def test_cached_references_equal_a_fresh_autograd_computation_for_every_case():
    """Are the references the kit keeps in .kit/cache (read by every warm worker) bit for bit
    those autograd computes now, for every case, the memory case's cut rows included?"""
    cached = reference._by_case("expected")
    assert set(cached) == {c.id for c in ALL}
    for case in ALL:
        fresh = reference._computed(case)
        assert cached[case.id].keys() == fresh.keys(), case.id
        for k, v in fresh.items():
            assert np.array_equal(cached[case.id][k], v), (case.id, k)


def test_cached_inputs_equal_freshly_drawn_ones_for_every_case():
    """Are the hidden inputs the kit keeps in .kit/cache (the sandbox's and the suites') those
    each case draws now, dtype and all, and read-only?"""
    for case in ALL:
        fresh, kept = case.make_inputs(), reference.inputs(case)
        assert kept.keys() == fresh.keys(), case.id
        for k, v in fresh.items():
            assert kept[k].dtype == v.dtype and np.array_equal(kept[k], v), (case.id, k)
            assert not kept[k].flags.writeable


def test_the_cache_is_computed_once_per_version_of_the_assignments_code(tmp_path, monkeypatch):
    """Is a cached computation reused while the folder's code is unchanged, computed again once
    a module changes, and computed again (never trusted) when its file is unreadable or holds
    something that is not a numeric array?"""
    from autograder import assignment
    monkeypatch.setattr(assignment, "CACHE_DIR", tmp_path / "cache")
    folder = tmp_path / "a"
    folder.mkdir()
    (folder / "cases.py").write_text("N = 3\n")
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.arange(4.0) * len(calls)}

    first = assignment.cached_arrays(folder, "expected", compute)
    second = assignment.cached_arrays(folder, "expected", compute)
    assert len(calls) == 1 and np.array_equal(first["x"], second["x"])
    (folder / "cases.py").write_text("N = 4\n")
    assert np.array_equal(assignment.cached_arrays(folder, "expected", compute)["x"], np.arange(4.0) * 2)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1     # the older version's file is gone
    for stored in (tmp_path / "cache").glob("*.npz"):
        stored.write_bytes(b"not a zip")
    assert np.array_equal(assignment.cached_arrays(folder, "expected", compute)["x"], np.arange(4.0) * 3)
    import zipfile
    for stored in (tmp_path / "cache").glob("*.npz"):      # a member without the .npy header
        with zipfile.ZipFile(stored, "w") as z:
            z.writestr("x.npy", b"not an array")
    assert np.array_equal(assignment.cached_arrays(folder, "expected", compute)["x"], np.arange(4.0) * 4)
    assert len(calls) == 4
