"""The sandbox wire format's array reader: np.save's own headers read fast, everything else as np.load does."""
from __future__ import annotations

import io

import numpy as np
import pytest

from autograder.sandbox import wire

SHAPES = [(), (0,), (1,), (7,), (3, 2), (1, 5), (4000, 3), (2, 3, 4), (2, 0, 3)]
DTYPES = ["<f4", "<f8", ">f8", "<f2", "|b1", "<i8", "|i1", "<u2", ">i4"]


def _saved(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ["C", "F"])
def test_every_plain_array_reads_back_as_np_load_reads_it(dtype, order):
    """For each dtype, shape and memory order np.save writes, is the array load_array returns
    (through its own header reader) the one np.load returns: values, dtype, shape, layout, writable?"""
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        arr = np.asarray(rng.normal(size=shape) * 100, order=order).astype(dtype, order=order)
        data = _saved(arr)
        assert wire._plain_npy(data) is not None, (dtype, shape, order)  # the fast path was taken
        got, want = wire.load_array(data), np.load(io.BytesIO(data), allow_pickle=False)
        assert got.dtype == want.dtype and got.shape == want.shape, (dtype, shape, order)
        assert np.array_equal(got, want, equal_nan=True)
        assert (got.flags.c_contiguous, got.flags.f_contiguous, got.flags.writeable) == \
            (want.flags.c_contiguous, want.flags.f_contiguous, want.flags.writeable)


@pytest.mark.parametrize("mangle", [
    lambda d: d[:-1],                                     # data cut short
    lambda d: d[:8] + b"\xff\x00" + d[10:],               # header length that does not match
    lambda d: d.replace(b"'<f4'", b"'<c8'"),              # complex: not a plain real array
    lambda d: d.replace(b"'<f4'", b"'|O4'"),              # objects: never unpickled
    lambda d: d.replace(b"(3, 2)", b"(3, -2)"),
    lambda d: d.replace(b"(3, 2)", b"(99999999999, 2)"),  # more elements than the cap
    lambda d: b"garbage" + d,
], ids=["short", "header_length", "complex", "object", "negative_shape", "huge", "garbage"])
def test_a_mangled_array_is_refused_as_np_load_would_refuse_it(mangle):
    """Does an array whose bytes were tampered with (by student code in the sandbox) come back as
    None, never as something else, whichever reader looked at it?"""
    data = mangle(_saved(np.zeros((3, 2), np.float32)))
    assert wire._plain_npy(data) is None
    assert wire.load_array(data) is None


def test_other_header_forms_still_go_through_np_load():
    """Is a valid .npy file in a form np.save does not write (format 2.0, other spacing) still read?"""
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.arange(6.0).reshape(2, 3), version=(2, 0))
    data = buf.getvalue()
    assert wire._plain_npy(data) is None
    assert np.array_equal(wire.load_array(data), np.arange(6.0).reshape(2, 3))
