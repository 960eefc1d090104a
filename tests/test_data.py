"""The lesson's data: the bundled digits, get_data on them and on an mnist.pkl.gz, and the normalisation."""
from __future__ import annotations

import gzip
import hashlib
import pickle
import re
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIR = ROOT / "source" / "gradient_backward"
DIGITS = SOURCE_DIR / "digits.npz"


@pytest.fixture(scope="module")
def setup_cell():
    nb = nbformat.read(str(SOURCE_DIR / "gradient_backward.ipynb"), as_version=4)
    return next(c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "setup")


@pytest.fixture()
def setup_ns(setup_cell, tmp_path, monkeypatch):
    """The setup cell's namespace after running it where only digits.npz is present."""
    shutil.copy(DIGITS, tmp_path / "digits.npz")
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile(setup_cell, "setup", "exec"), ns)
    return ns


def test_digits_npz_holds_all_1797_uci_digits_as_uint8():
    """Does digits.npz hold x uint8 (1797, 64) in 0..16 and y uint8 (1797,) with every digit present?"""
    with np.load(DIGITS, allow_pickle=False) as d:
        x, y = d["x"], d["y"]
    assert (x.dtype, x.shape, y.dtype, y.shape) == (np.uint8, (1797, 64), np.uint8, (1797,))
    assert x.max() == 16 and set(np.unique(y)) == set(range(10))


def test_data_license_names_the_source_and_the_file_hash():
    """Does DATA_LICENSE.md credit UCI under CC BY 4.0 and record the committed file's sha256?"""
    text = (SOURCE_DIR / "DATA_LICENSE.md").read_text()
    assert "CC BY 4.0" in text and "Optical Recognition of Handwritten Digits" in text and "BSD-3" in text
    assert hashlib.sha256(DIGITS.read_bytes()).hexdigest() in re.findall(r"[0-9a-f]{64}", text)


def test_get_data_without_path_splits_the_bundled_digits(setup_ns):
    """Does get_data() give float32 train/valid tensors of the bundled digits, targets as digit values?"""
    x_train, y_train, x_valid, y_valid = setup_ns["get_data"]()
    assert [t.dtype for t in (x_train, y_train, x_valid, y_valid)] == [torch.float32] * 4
    assert tuple(x_train.shape) == (1500, 64) and tuple(x_valid.shape) == (297, 64)
    assert tuple(y_train.shape) == (1500,) and tuple(y_valid.shape) == (297,)
    with np.load(DIGITS) as d:
        assert np.array_equal(y_valid.numpy(), d["y"][1500:].astype(np.float32))
        assert np.array_equal(x_train.numpy(), d["x"][:1500].astype(np.float32))


def test_get_data_with_path_reads_the_lessons_mnist_pickle(setup_ns, tmp_path):
    """Does get_data(path) read a gzip'd latin1 pickle ((x_train, y_train), (x_valid, y_valid), test)?"""
    rng = np.random.default_rng(0)
    x_tr, x_va = rng.random((5, 784), dtype=np.float32), rng.random((3, 784), dtype=np.float32)
    y_tr, y_va = np.array([5, 0, 4, 1, 9]), np.array([3, 1, 4])
    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(((x_tr, y_tr), (x_va, y_va), (x_va[:1], y_va[:1])), f, protocol=2)
    x_train, y_train, x_valid, y_valid = setup_ns["get_data"](str(path))
    assert [t.dtype for t in (x_train, y_train, x_valid, y_valid)] == [torch.float32] * 4
    assert np.array_equal(x_train.numpy(), x_tr) and np.array_equal(x_valid.numpy(), x_va)
    assert y_train.tolist() == [5.0, 0.0, 4.0, 1.0, 9.0] and y_valid.tolist() == [3.0, 1.0, 4.0]


def test_setup_normalises_both_sets_with_the_training_statistics(setup_ns):
    """Is x_train scaled to mean 0, std 1, and x_valid with the training mean and std (not its own)?"""
    raw_train, _, raw_valid, _ = setup_ns["get_data"]()
    x_train, x_valid = setup_ns["x_train"], setup_ns["x_valid"]
    assert abs(x_train.mean().item()) < 1e-5 and abs(x_train.std().item() - 1) < 1e-5
    expected_valid = (raw_valid - raw_train.mean()) / raw_train.std()
    assert torch.allclose(x_valid, expected_valid, atol=1e-6)
    assert setup_ns["n"] == 1500 and setup_ns["m"] == 64 and setup_ns["nh"] == 50


def test_setup_weights_are_seeded_kaiming(setup_ns, setup_cell, tmp_path):
    """Are w1, b1, w2, b2 the same on every run, in the (in, out) layout, with Kaiming scale for w1?"""
    again: dict = {}
    exec(compile(setup_cell, "setup", "exec"), again)
    for k in ("w1", "b1", "w2", "b2"):
        assert torch.equal(setup_ns[k], again[k])
    shapes = [tuple(setup_ns[k].shape) for k in ("w1", "b1", "w2", "b2")]
    assert shapes == [(64, 50), (50,), (50, 1), (1,)]
    assert 0.8 < setup_ns["w1"].std().item() / (2 / 64) ** 0.5 < 1.2
