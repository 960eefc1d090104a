"""The sandbox's wire format, in one place: frames between the supervisor and a job's processes, JSON lines with the host, and the case records both sides agree on.

Imports only the standard library and numpy: the supervisor inside the sandbox imports it too.
Everything decoded here comes from processes that ran student code: it is data to check,
never a verdict, so every reader caps sizes and checks types.
"""
from __future__ import annotations

import array
import fcntl
import io
import json
import math
import mmap
import os
import re
import socket
import struct

import numpy as np

# --- frames: supervisor <-> job processes (a stream socket) ---------------------------------
# A frame is: header length (u32), blob count (u32), the JSON header, then per blob its
# length (u64) and its bytes. Arrays travel as blobs of .npy bytes (never pickled). A blob
# of at least SHARE_BYTES that the supervisor holds for good (a hidden input) travels as a
# sealed memfd instead: its length field has the SHARED bit set, no bytes follow, and the
# fd rides on the frame as SCM_RIGHTS. Only the job side accepts such blobs.
_HEAD = struct.Struct("!II")
_BLOB = struct.Struct("!Q")
MAX_HEADER_BYTES = 4 << 20
MAX_BLOBS = 64
MAX_FRAME_BYTES = 256 << 20
SHARED = 1 << 63
SHARE_BYTES = 1 << 20
_SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE


class WireError(ValueError):
    """A frame or record that breaks the format: the sender is not following the protocol."""


class SharedBlob:
    """Bytes the supervisor keeps for good, in a sealed memfd: handed to a job as an fd, so a
    large input (part 7's memory case, 6 MB) is not copied through the channel (13 MB took
    about 90 ms a case in the sandbox). The seals make it read-only for every process, so the
    same fd can serve every submission."""

    def __init__(self, data: bytes):
        self.size = len(data)
        self.fd = os.memfd_create("input", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]
        fcntl.fcntl(self.fd, fcntl.F_ADD_SEALS, _SEALS)

    def __len__(self):
        return self.size


def shareable(data: bytes):
    """`data` as the supervisor should hold it: a SharedBlob when large, else the bytes."""
    return SharedBlob(data) if len(data) >= SHARE_BYTES else data


def encode_frame(header: dict, blobs=()) -> bytes:
    head = json.dumps(header, separators=(",", ":")).encode()
    parts = [_HEAD.pack(len(head), len(blobs)), head]
    for blob in blobs:
        if isinstance(blob, SharedBlob):
            parts.append(_BLOB.pack(SHARED | blob.size))
        else:
            parts += [_BLOB.pack(len(blob)), bytes(blob)]
    return b"".join(parts)


def frame_fds(blobs=()) -> list[int]:
    """The fds to send with `encode_frame(header, blobs)`, in order (SCM_RIGHTS)."""
    return [b.fd for b in blobs if isinstance(b, SharedBlob)]


def rights(fds) -> list:
    """The ancillary data that passes `fds` with the first byte of a frame (sendmsg)."""
    return [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]


class FrameReader:
    """Cuts a byte stream into frames; `feed` returns the complete ones, in order. Shared
    blobs come back as read-only mappings, and only when `accept_fds` (the job side: the
    supervisor never takes an fd from a process that runs student code)."""

    def __init__(self, max_frame: int = MAX_FRAME_BYTES, *, accept_fds: bool = False):
        self.buf = bytearray()
        self.max_frame = max_frame
        self.accept_fds = accept_fds
        self.fds: list[int] = []
        self.ready: list[tuple[dict, list[bytes]]] = []

    def feed(self, data: bytes, fds=()) -> list[tuple[dict, list[bytes]]]:
        self.fds += fds
        self.buf += data
        frames = []
        while (frame := self._one()) is not None:
            frames.append(frame)
        return frames

    def _one(self):
        if len(self.buf) < _HEAD.size:
            return None
        hlen, nblobs = _HEAD.unpack_from(self.buf)
        if hlen > MAX_HEADER_BYTES or nblobs > MAX_BLOBS:
            raise WireError("frame header too large")
        pos = _HEAD.size + hlen
        if len(self.buf) < pos:
            return None
        blobs = []
        for _ in range(nblobs):
            if len(self.buf) < pos + _BLOB.size:
                return None
            (blen,) = _BLOB.unpack_from(self.buf, pos)
            pos += _BLOB.size
            if blen & SHARED:
                blobs.append(blen & ~SHARED)  # mapped below, once the frame is complete
                continue
            if blen > self.max_frame:
                raise WireError("frame too large")
            if len(self.buf) < pos + blen:
                return None
            blobs.append(bytes(self.buf[pos:pos + blen]))
            pos += blen
        try:
            header = json.loads(bytes(self.buf[_HEAD.size:_HEAD.size + hlen]))
        except ValueError as exc:
            raise WireError("frame header is not JSON") from exc
        del self.buf[:pos]
        if not isinstance(header, dict):
            raise WireError("frame header is not an object")
        return header, [self._mapped(b) if isinstance(b, int) else b for b in blobs]

    def _mapped(self, size: int):
        if not self.accept_fds or not self.fds:
            raise WireError("a shared blob without its file")
        fd = self.fds.pop(0)
        try:
            if size > self.max_frame or os.fstat(fd).st_size != size:
                raise WireError("a shared blob of the wrong size")
            return mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ) if size else b""
        finally:
            os.close(fd)


_FDS_SPACE = socket.CMSG_SPACE(MAX_BLOBS * array.array("i").itemsize)


def recv_frame(sock, reader: FrameReader):
    """Blocking read of the next frame from a socket (the job side's loop), with the fds of
    its shared blobs."""
    while not reader.ready:
        chunk, ancillary, _, _ = sock.recvmsg(1 << 20, _FDS_SPACE)
        fds = array.array("i")
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
        if not chunk:
            raise EOFError("the supervisor closed the channel")
        reader.ready += reader.feed(chunk, list(fds))
    return reader.ready.pop(0)


# --- arrays ----------------------------------------------------------------------------------
MAX_ARRAY_ELEMENTS = 64 * 1024 * 1024


def array_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


# The header `np.save` writes for a plain array (format 1.0). numpy parses headers with
# `ast.literal_eval`, which is most of the cost of a small array; this reads exactly that form.
_NPY_HEADER = re.compile(rb"\x93NUMPY\x01\x00(..)\{'descr': '([<>|][biuf]\d{1,2})', "
                         rb"'fortran_order': (False|True), 'shape': \((|\d{1,10},|\d{1,10}(?:, \d{1,10})+)\), \} *\n",
                         re.DOTALL)


def _plain_npy(data: bytes) -> np.ndarray | None:
    """The array of a header in np.save's own form, as np.load would return it; None for any
    other form (np.load then reads it)."""
    m = _NPY_HEADER.match(data)
    if m is None or struct.unpack("<H", m.group(1))[0] + 10 != m.end():
        return None
    dtype = np.dtype(m.group(2).decode())
    shape = tuple(int(n) for n in m.group(4).split(b",") if n.strip())
    count = math.prod(shape)
    if count > MAX_ARRAY_ELEMENTS or len(data) < m.end() + count * dtype.itemsize:
        return None
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=m.end())
    return flat.reshape(shape, order="F" if m.group(3) == b"True" else "C").copy(order="K")


def load_array(data: bytes) -> np.ndarray | None:
    """A plain numeric array from .npy bytes, or None: never unpickles anything."""
    try:
        arr = _plain_npy(data) if isinstance(data, (bytes, mmap.mmap)) else None
        if arr is None:
            arr = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception:  # noqa: BLE001 - whatever the bytes are, they are not an array we take
        return None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf" or arr.size > MAX_ARRAY_ELEMENTS:
        return None
    return arr


# --- host <-> supervisor: one JSON object per line, a report's arrays raw after it ----------

def encode_line(payload: dict) -> bytes:
    return (json.dumps(payload, separators=(",", ":")) + "\n").encode()


def encode_report(payload: dict) -> list:
    """A report as one JSON line naming its case files by position (`blob_sizes`), then each
    file's bytes as they are: no base64 to encode, escape, parse and decode."""
    blobs, cases = [], []
    for case in payload.get("cases", []):
        files = {}
        for name, data in case.get("files", {}).items():
            files[name] = len(blobs)
            blobs.append(data)
        cases.append({**case, "files": files})
    header = {**payload, "cases": cases, "blob_sizes": [len(b) for b in blobs]} \
        if "cases" in payload else payload
    return [encode_line(header), *blobs]


def attach_blobs(payload: dict, blobs: list[bytes]) -> dict:
    """The host's side of `encode_report`: each case's file positions replaced by their bytes.
    A position that names no blob is dropped (that array is then missing, and its test fails)."""
    for case in payload.get("cases", []) if isinstance(payload.get("cases"), list) else []:
        if not isinstance(case, dict):
            continue
        files = case.get("files") if isinstance(case.get("files"), dict) else {}
        case["files"] = {name: blobs[pos] for name, pos in files.items()
                         if isinstance(pos, int) and not isinstance(pos, bool) and 0 <= pos < len(blobs)}
    return payload


def blob_sizes(payload: dict, cap: int) -> list[int] | None:
    """The raw bytes that follow this line, or None when the line's claim is not one to honour
    (not a list of sizes, or more than `cap` in all)."""
    sizes = payload.get("blob_sizes", [])
    if not isinstance(sizes, list) or not all(isinstance(n, int) and not isinstance(n, bool)
                                              and n >= 0 for n in sizes):
        return None
    return sizes if sum(sizes) <= cap else None


# --- case records: what a probe produced, as the supervisor relays it to the host ------------
CASE_STATUSES = ("ok", "error", "crashed", "timeout")


def _plain(value, limit=2000):
    if isinstance(value, bool) or isinstance(value, (int, float)):
        return value
    return str(value)[:limit]


_FLOAT = re.compile(r"-?\d+\.\d{2,}(?:[eE][-+]?\d+)?|-?\d+(?:\.\d*)?[eE][-+]?\d+")
_NUMBER_RUN = re.compile(r"(?:-?\d+[\s,;]+){3,}-?\d+")


def hide_values(text: str) -> str:
    """An error message raised while a hidden input was out, without the numbers it may carry
    (shapes and line numbers stay): student code must not print hidden inputs into feedback."""
    return _NUMBER_RUN.sub("[...]", _FLOAT.sub("…", text))


def _error(err, hide=False) -> dict | None:
    if not isinstance(err, dict):
        return None
    message = str(err.get("message", ""))[:500]
    return {"type": str(err.get("type", ""))[:80], "message": hide_values(message) if hide else message,
            "last_line": str(err.get("last_line", ""))[:300], "memory": bool(err.get("memory"))}


def decode_case(payload) -> dict | None:
    """One case record from the sandbox, checked field by field, as plain Python values:
    index, status, outputs (name -> array), values, missing, notes, error, autograd_used,
    peak_mb. None when the record is not one."""
    rec = payload.get("record") if isinstance(payload, dict) else None
    if not isinstance(rec, dict) or not isinstance(rec.get("index"), int) \
            or isinstance(rec.get("index"), bool):
        return None
    files = payload.get("files") if isinstance(payload.get("files"), dict) else {}
    idx = rec["index"]
    outputs = {}
    arrays = rec.get("arrays") if isinstance(rec.get("arrays"), list) else []
    for pos, name in enumerate(arrays[:MAX_BLOBS]):
        data = files.get(f"case_{idx}__{pos}.npy")
        arr = load_array(data) if isinstance(data, bytes) else None
        if arr is not None:
            outputs[str(name)[:64]] = arr
    values = {str(k)[:80]: _plain(v) for k, v in list(rec["values"].items())[:200]} \
        if isinstance(rec.get("values"), dict) else {}
    for key, value in values.items():
        if key.endswith(".message") and isinstance(value, str):
            values[key] = hide_values(value)
    status = rec.get("status") if rec.get("status") in CASE_STATUSES else "error"
    missing = rec.get("missing") if isinstance(rec.get("missing"), list) else []
    notes = rec.get("notes") if isinstance(rec.get("notes"), list) else []
    peak = rec.get("peak_mb")
    return {"index": idx, "status": status, "outputs": outputs, "values": values,
            "missing": [str(m)[:64] for m in missing if isinstance(m, str)][:50],
            "notes": [str(n)[:200] for n in notes][:10], "error": _error(rec.get("error"), hide=True),
            "autograd_used": bool(rec.get("autograd_used")),
            "peak_mb": float(peak) if isinstance(peak, (int, float)) and not isinstance(peak, bool)
            else None}


def decode_error(err) -> dict | None:
    """A cell's error record: type, message, last line (capped)."""
    return _error(err)
