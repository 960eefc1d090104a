"""The sandbox wire format: its array reader (np.save's own headers read fast, everything else as np.load does) and its frames, large inputs passed as sealed files."""
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


def _pair():
    import socket
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)


def test_a_large_input_arrives_as_a_read_only_file_with_the_same_array():
    """Does a frame with a large input (a sealed memfd) and a small one (bytes) reach the job
    side with both arrays intact, the large one mapped rather than copied through the socket?"""
    big = np.random.default_rng(1).normal(size=(4000, 784)).astype("<f4")
    small = np.arange(5.0)
    blobs = [wire.shareable(_saved(big)), wire.shareable(_saved(small))]
    assert isinstance(blobs[0], wire.SharedBlob) and isinstance(blobs[1], bytes)
    ours, theirs = _pair()
    frame = wire.encode_frame({"op": "case", "index": 3}, blobs)
    assert len(frame) < 1024                      # the 12.5 MB went as a file, not as bytes
    ours.sendmsg([frame], wire.rights(wire.frame_fds(blobs)))
    header, got = wire.recv_frame(theirs, wire.FrameReader(accept_fds=True))
    assert header == {"op": "case", "index": 3}
    assert np.array_equal(wire.load_array(got[0]), big) and np.array_equal(wire.load_array(got[1]), small)
    assert wire.load_array(got[0]).flags.writeable


def _punch_hole(fd, length):
    """fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE): zeroes a range without a write."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
    if libc.fallocate(fd, 0x3, 0, length) != 0:
        raise OSError(ctypes.get_errno(), "fallocate refused")


def _mprotect_writable(fd, size):
    """mmap the file read-only and shared, then ask mprotect for write access."""
    import ctypes
    import mmap
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
    assert addr not in (None, ctypes.c_void_p(-1).value)       # mapping it for reading is fine
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    if libc.mprotect(addr, size, mmap.PROT_READ | mmap.PROT_WRITE) != 0:
        raise OSError(ctypes.get_errno(), "mprotect refused")
    ctypes.memset(addr, 0x41, 1)                                # a write, had it been allowed


def test_a_shared_input_cannot_be_changed_by_the_job_that_receives_it():
    """Can a process that received the file of a hidden input write, grow, shrink or unseal it
    (the same file serves the next submission)? Each attempt runs, and each is refused."""
    import fcntl
    import mmap
    import os
    blob = wire.SharedBlob(_saved(np.ones((600, 600))))
    ours, theirs = _pair()
    ours.sendmsg([wire.encode_frame({"op": "case"}, [blob])], wire.rights([blob.fd]))
    reader = wire.FrameReader(accept_fds=True)
    chunk, anc, _, _ = theirs.recvmsg(1 << 20, wire._FDS_SPACE)
    fd = int.from_bytes(anc[0][2][:4], "little")
    attempts = {
        "write": lambda: os.pwrite(fd, b"x", 0),
        "write through /proc": lambda: os.write(os.open(f"/proc/self/fd/{fd}", os.O_RDWR), b"x"),
        "shrink": lambda: os.ftruncate(fd, 10),
        "grow": lambda: os.ftruncate(fd, blob.size + 4096),
        "map for writing": lambda: mmap.mmap(fd, blob.size, flags=mmap.MAP_SHARED,
                                             prot=mmap.PROT_READ | mmap.PROT_WRITE),
        "change the seals": lambda: fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_GROW),
        "map for reading, then make it writable": lambda: _mprotect_writable(fd, blob.size),
        "punch a hole": lambda: _punch_hole(fd, 4096),
    }
    refused = {}
    for what, attempt in attempts.items():
        try:
            attempt()
            refused[what] = False
        except OSError:
            refused[what] = True
    assert refused == dict.fromkeys(attempts, True)
    assert fcntl.fcntl(fd, fcntl.F_GET_SEALS) & fcntl.F_SEAL_WRITE   # the attempts ran on the file
    (_, got), = reader.feed(chunk, [fd])
    assert np.array_equal(wire.load_array(got[0]), np.ones((600, 600)))


def test_the_supervisor_side_never_takes_a_file_from_a_job():
    """Does a frame that claims a shared blob, sent toward the supervisor (whose reader takes no
    fds), fail as a broken frame instead of mapping anything?"""
    blob = wire.SharedBlob(_saved(np.ones((600, 600))))
    frame = wire.encode_frame({"op": "case_done"}, [blob])
    with pytest.raises(wire.WireError):
        wire.FrameReader().feed(frame, [blob.fd])


# --- supervisor -> host: a report's arrays as raw bytes after its JSON line -------------------

class _Zygote:
    """What `Lane._receive` reads from: the lane supervisor's channel, here a file holding `data`."""

    def __init__(self, data: bytes, report_mb: int = 1):
        import tempfile
        from types import SimpleNamespace
        from autograder.sandbox.launcher import Lane, Limits
        stream = tempfile.TemporaryFile()
        stream.write(data)
        stream.seek(0)
        self.lane = SimpleNamespace(sock=stream, _buf=bytearray(), limits=Limits(report_mb=report_mb))
        for name in ("_receive", "_read_more"):
            setattr(self.lane, name, getattr(Lane, name).__get__(self.lane))

    def receive(self) -> dict:
        return self.lane._receive(5)


def _report(*arrays: np.ndarray) -> dict:
    files = {f"case_0__{i}.npy": wire.array_bytes(a) for i, a in enumerate(arrays)}
    return {"op": "done", "job": "j", "cases": [{"record": {"index": 0, "status": "ok",
                                                             "arrays": [f"a{i}" for i in range(len(arrays))]},
                                                  "files": files}]}


def test_a_reports_arrays_reach_the_host_as_the_supervisor_sent_them():
    """Do the case files of a report, sent raw after its JSON line, decode on the host to the
    same arrays, with a second message right behind them in the stream?"""
    arrays = [np.arange(12, dtype=np.float32).reshape(3, 4), np.random.default_rng(0).normal(size=(700, 300))]
    data = b"".join(wire.encode_report(_report(*arrays))) + wire.encode_line({"op": "clean", "job": "j", "ok": True})
    zygote = _Zygote(data, report_mb=4)
    msg = zygote.receive()
    assert msg["blob_sizes"] == [len(wire.array_bytes(a)) for a in arrays]   # raw, not base64
    decoded = wire.decode_case(msg["cases"][0])
    assert [decoded["outputs"][f"a{i}"].tolist() for i in range(2)] == [a.tolist() for a in arrays]
    assert zygote.receive() == {"op": "clean", "job": "j", "ok": True}


@pytest.mark.parametrize("claim", ["over_the_cap", "negative", "not_a_list", "cut_short"])
def test_a_report_whose_raw_bytes_are_not_what_it_claims_is_no_report(claim):
    """Does the host refuse (an empty reply: the job is failed and the sandbox restarted) a
    report that announces more bytes than a report may hold, a negative or odd size, or
    fewer bytes than it announced?"""
    line, *blobs = wire.encode_report(_report(np.ones((4, 4))))
    header = __import__("json").loads(line)
    header["blob_sizes"] = {"over_the_cap": [2 * 1024 * 1024], "negative": [-1],
                            "not_a_list": "128", "cut_short": header["blob_sizes"]}[claim]
    body = b"".join(blobs)[: -10 if claim == "cut_short" else None]
    assert _Zygote(wire.encode_line(header) + body).receive() == {}


def test_a_file_position_that_names_no_blob_leaves_that_array_missing():
    """A case file pointing past the blobs (or not an index) is dropped, not guessed at."""
    payload = {"cases": [{"record": {"index": 0, "arrays": ["x", "y"]},
                          "files": {"case_0__0.npy": 5, "case_0__1.npy": True}}]}
    wire.attach_blobs(payload, [wire.array_bytes(np.ones(3))])
    assert payload["cases"][0]["files"] == {}
    assert wire.decode_case(payload["cases"][0])["outputs"] == {}
