"""Compression of the plain (unencrypted) part of an update, with error feedback.

Only the plain float32 values are compressed; ciphertexts travel as they are.
Three codecs and one policy:

- ``none``: little-endian float32, header-less: exactly the bytes xcloud
  sent before compression existed (the count comes from the authenticated
  message header).
- ``q8``: 8-bit symmetric quantization with one float32 scale per chunk of
  ``chunk`` values (``scale = max|x| / 127`` over the chunk, ``q = rint(x /
  scale)`` in [-127, 127]), so one large value only coarsens its own chunk.
  Rounding is deterministic; the error per value is at most ``scale / 2``
  (plus float32 rounding, below ``2e-5 * scale``).
- ``topk``: the ``ceil(fraction * n)`` values of largest magnitude; their
  positions as a bitmap or as delta-encoded LEB128 varints, whichever is
  smaller, and their values as q8 (per-chunk scales over the kept values).
- ``auto`` (a policy, not a codec): picks a codec from the sender's measured
  uplink bandwidth (:class:`AutoPolicy`).

Error feedback (Seide et al., "1-bit stochastic gradient descent and its
application to data-parallel distributed training of speech DNNs",
Interspeech 2014; Karimireddy et al., "Error feedback fixes SignSGD and other
gradient compression schemes", ICML 2019): the sender keeps the residual
``e`` of what compression dropped and adds it to its next vector, ``p = x +
e; send C(p); e = p - decode(C(p))``. The sum of everything sent then equals
the sum of the true vectors minus the current residual, which stays bounded,
so nothing is lost for good, only delayed. The residual lives in an
:class:`ErrorFeedback` object owned by the sender (each client for its
uplink, the server for the downlink) and is checkpointable.

Wire layout of ``q8`` and ``topk`` (little-endian, version 1)::

    0 u8 version | 1 u8 codec id (1 q8, 2 topk) | 2 u8 index form (0 none,
    1 bitmap, 2 varint deltas) | 3 u8 value form (1 q8) | 4 u32 chunk
    8 u64 n (values) | 16 u64 k (kept values) | 24 u64 index bytes
    32 f32 scale[ceil(k / chunk)] | i8 value[k] | index bytes

Varint deltas: the first kept position, then each position minus the
previous one minus 1, each as an unsigned LEB128 varint of minimal length.
Decoding checks every field against the count the receiver expects and the
exact blob length before allocating anything, and raises
:class:`CodecError` (an :class:`~xcloud.errors.IntegrityError`) for any
truncated, extended, malformed or non-canonical input.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from xcloud.errors import IntegrityError

__all__ = [
    "CODECS",
    "POLICIES",
    "AutoPolicy",
    "Codec",
    "CodecError",
    "ErrorFeedback",
    "compress",
    "decode",
    "make_compression",
    "resolve",
]

CODECS = ("none", "q8", "topk")
POLICIES = (*CODECS, "auto")

MAX_VALUES = 1 << 31  # far above any update; keeps every index sum inside int64
MAX_CHUNK = 1 << 24

_VERSION = 1
_IDS = {"q8": 1, "topk": 2}
_NAMES = {v: k for k, v in _IDS.items()}
_INDEX_NONE, _INDEX_BITMAP, _INDEX_VARINT = 0, 1, 2
_VALUE_Q8 = 1
_HEADER = struct.Struct("<BBBBIQQQ")  # 32 bytes
_VARINT_MAX_BYTES = 5  # positions and gaps are below 2^31 < 2^35


class CodecError(IntegrityError):
    """An encoded plain part that is truncated, malformed, oversized or of another codec."""


# -- codecs -----------------------------------------------------------------------


@dataclass(frozen=True)
class Codec:
    """A compression codec for float32 vectors.

    Parameters
    ----------
    name : str
        ``"none"``, ``"q8"`` or ``"topk"``.
    chunk : int
        Values per q8 scale (q8 and topk values).
    fraction : float
        topk: fraction of the values kept, in (0, 1].

    Raises
    ------
    ValueError
        For an unknown name or an out-of-range parameter.
    """

    name: str = "none"
    chunk: int = 4096
    fraction: float = 0.1

    def __post_init__(self) -> None:
        if self.name not in CODECS:
            raise ValueError(f"codec must be one of {', '.join(CODECS)}, got {self.name!r}")
        if not 1 <= self.chunk <= MAX_CHUNK:
            raise ValueError(f"chunk must be in [1, {MAX_CHUNK}], got {self.chunk}")
        if not 0.0 < self.fraction <= 1.0:
            raise ValueError(f"topk fraction must be in (0, 1], got {self.fraction}")

    def kept(self, n: int) -> int:
        """Number of values topk keeps out of ``n`` (all of them for the other codecs)."""
        if self.name != "topk" or n == 0:
            return n
        return min(n, max(1, math.ceil(self.fraction * n - 1e-9)))

    def encode(self, values: np.ndarray) -> tuple[bytes, np.ndarray]:
        """Encodes a float32 vector.

        Returns
        -------
        (bytes, numpy.ndarray)
            The encoding, and exactly what :func:`decode` will return for it
            (the sender needs it for error feedback).

        Raises
        ------
        ValueError
            For a non-finite value or more than ``MAX_VALUES`` values.
        """
        x = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
        if x.size > MAX_VALUES:
            raise ValueError(f"at most {MAX_VALUES} values can be encoded, got {x.size}")
        if self.name == "none":
            if not np.all(np.isfinite(x)):
                raise ValueError("cannot encode non-finite values")
            return x.astype("<f4").tobytes(), x.copy()
        if self.name == "q8":
            scales, q = _quantize(x, self.chunk)
            head = _HEADER.pack(_VERSION, _IDS["q8"], _INDEX_NONE, _VALUE_Q8, self.chunk, x.size, x.size, 0)
            return head + scales.tobytes() + q.tobytes(), _dequantize(scales, q, self.chunk)
        return self._encode_topk(x)

    def _encode_topk(self, x: np.ndarray) -> tuple[bytes, np.ndarray]:
        n = x.size
        k = self.kept(n)
        if k == n:
            idx = np.arange(n, dtype=np.int64)
        else:
            idx = np.sort(np.argpartition(np.abs(x), n - k)[n - k :]).astype(np.int64)
        scales, q = _quantize(x[idx], self.chunk)
        bitmap_len = (n + 7) // 8
        gaps = np.diff(idx, prepend=-1) - 1  # the first position itself, then distances minus one
        if _varint_size(gaps) < bitmap_len:
            form, index = _INDEX_VARINT, _varint_encode(gaps)
        else:
            mask = np.zeros(n, dtype=bool)
            mask[idx] = True
            form, index = _INDEX_BITMAP, np.packbits(mask, bitorder="little").tobytes()
        head = _HEADER.pack(_VERSION, _IDS["topk"], form, _VALUE_Q8, self.chunk, n, k, len(index))
        sent = np.zeros(n, dtype=np.float32)
        sent[idx] = _dequantize(scales, q, self.chunk)
        return head + scales.tobytes() + q.tobytes() + index, sent


def _chunk_counts(n: int, chunk: int) -> np.ndarray:
    """Values in each chunk: ``chunk`` each, the last one possibly shorter (no allocation beyond n)."""
    m = -(-n // chunk)
    counts = np.full(m, chunk, dtype=np.int64)
    if m:
        counts[-1] = n - chunk * (m - 1)
    return counts


def _quantize(x: np.ndarray, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-chunk symmetric int8 quantization: returns (float32 scales, int8 values in [-127, 127])."""
    n = x.size
    if n == 0:
        return np.zeros(0, "<f4"), np.zeros(0, np.int8)
    starts = np.arange(0, n, chunk)
    scales = (np.maximum.reduceat(np.abs(x), starts) / np.float32(127.0)).astype("<f4")
    if not np.all(np.isfinite(scales)):
        raise ValueError("cannot encode non-finite values")
    safe = np.where(scales > 0, scales, np.float32(1.0))
    q = np.rint(x / np.repeat(safe, _chunk_counts(n, chunk)))
    return scales, np.clip(q, -127, 127).astype(np.int8)


# The largest scale whose 127 multiples are finite float32 (what _quantize can make: max |x| / 127).
_MAX_SCALE = float(np.finfo(np.float32).max) / 127


def _dequantize(scales: np.ndarray, q: np.ndarray, chunk: int) -> np.ndarray:
    """Inverse of :func:`_quantize` (float32; the sender and receiver compute the same bits).

    ``scales`` must hold ``ceil(q.size / chunk)`` values (the decoder checks it first).
    """
    return q.astype(np.float32) * np.repeat(scales.astype(np.float32), _chunk_counts(q.size, chunk))


def _varint_nbytes(v: np.ndarray) -> np.ndarray:
    n = np.ones(v.size, dtype=np.int64)
    for j in range(1, _VARINT_MAX_BYTES):
        n += v >= (1 << (7 * j))
    return n


def _varint_size(v: np.ndarray) -> int:
    return int(_varint_nbytes(v).sum())


def _varint_encode(v: np.ndarray) -> bytes:
    """Unsigned LEB128 of non-negative int64 values below 2^35, vectorised."""
    nb = _varint_nbytes(v)
    out = np.zeros(int(nb.sum()), dtype=np.uint8)
    starts = np.cumsum(nb) - nb
    for j in range(_VARINT_MAX_BYTES):
        sel = nb > j
        if not sel.any():
            break
        byte = (v[sel] >> (7 * j)) & 0x7F
        more = (nb[sel] > j + 1).astype(np.int64) << 7
        out[starts[sel] + j] = (byte | more).astype(np.uint8)
    return out.tobytes()


def _varint_decode(b: np.ndarray, k: int) -> np.ndarray:
    """Parses exactly ``k`` minimal LEB128 varints filling ``b``; raises CodecError otherwise."""
    if k == 0:
        if b.size:
            raise CodecError("topk index has bytes but no values")
        return np.zeros(0, dtype=np.int64)
    last = (b & 0x80) == 0
    if int(last.sum()) != k or not last[-1]:
        raise CodecError("topk index does not hold exactly the announced number of positions")
    ends = np.flatnonzero(last)
    starts = np.empty(k, dtype=np.int64)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts + 1
    if int(lengths.max()) > _VARINT_MAX_BYTES:
        raise CodecError("topk index has an overlong position")
    if np.any((lengths > 1) & (b[ends] == 0)):
        raise CodecError("topk index has a non-minimal position encoding")
    within = np.arange(b.size, dtype=np.int64) - np.repeat(starts, lengths)
    parts = (b & 0x7F).astype(np.int64) << (7 * within)
    return np.bitwise_or.reduceat(parts, starts)


def decode(data: bytes | memoryview, n: int, codec: str) -> np.ndarray:
    """Decodes an encoded plain part of ``n`` values made by ``codec``.

    Parameters
    ----------
    data : bytes-like
        The encoding.
    n : int
        The number of values the receiver expects (from the authenticated
        message header and its own protection plan, never from ``data``).
    codec : str
        The codec named in the authenticated message header.

    Returns
    -------
    numpy.ndarray
        float32, shape (n,).

    Raises
    ------
    CodecError
        For an unknown codec, or a truncated, extended or malformed encoding,
        or one of another codec or size.
    """
    if codec not in CODECS:
        raise CodecError(f"unknown codec {codec!r:.40}")
    if not 0 <= n <= MAX_VALUES:
        raise CodecError(f"value count {n} out of range")
    buf = memoryview(data).cast("B")
    if codec == "none":
        if len(buf) != 4 * n:
            raise CodecError(f"plain part has {len(buf)} bytes, {n} float32 values need {4 * n}")
        return np.frombuffer(buf, dtype="<f4").astype(np.float32)
    if len(buf) < _HEADER.size:
        raise CodecError(f"{codec} encoding truncated ({len(buf)} bytes)")
    version, cid, form, vform, chunk, n_wire, k, index_len = _HEADER.unpack_from(buf, 0)
    if version != _VERSION:
        raise CodecError(f"unsupported encoding version {version}")
    if _NAMES.get(cid) != codec:
        raise CodecError(f"encoding is of codec id {cid}, the header names {codec}")
    if vform != _VALUE_Q8:
        raise CodecError(f"unknown value form {vform}")
    if not 1 <= chunk <= MAX_CHUNK:
        raise CodecError(f"chunk {chunk} out of range")
    if n_wire != n:
        raise CodecError(f"encoding holds {n_wire} values, {n} expected")
    if codec == "q8":
        if k != n or form != _INDEX_NONE or index_len != 0:
            raise CodecError("q8 encoding with a sparse index")
    else:
        if not (k <= n and (k >= 1 or n == 0)):
            raise CodecError(f"topk keeps {k} of {n} values")
        if form == _INDEX_BITMAP:
            if index_len != (n + 7) // 8:
                raise CodecError("topk bitmap of the wrong length")
        elif form == _INDEX_VARINT:
            if not k <= index_len <= _VARINT_MAX_BYTES * k:
                raise CodecError("topk index length inconsistent with its count")
        else:
            raise CodecError(f"unknown topk index form {form}")
    m = -(-k // chunk)
    expect = _HEADER.size + 4 * m + k + index_len  # Python ints: no overflow
    if len(buf) != expect:
        raise CodecError(f"{codec} encoding has {len(buf)} bytes, its header announces {expect}")
    pos = _HEADER.size
    scales = np.frombuffer(buf, dtype="<f4", count=m, offset=pos)
    pos += 4 * m
    if not np.all(np.isfinite(scales)) or np.any(scales < 0):
        raise CodecError("negative or non-finite quantization scale")
    if np.any(scales > _MAX_SCALE):  # 127 * scale would overflow float32 to inf
        raise CodecError(f"quantization scale beyond {_MAX_SCALE:.3g}")
    q = np.frombuffer(buf, dtype=np.int8, count=k, offset=pos)
    pos += k
    if np.any(q == -128):
        raise CodecError("quantized value out of range")
    values = _dequantize(scales, q, chunk)
    if codec == "q8":
        return values
    raw = np.frombuffer(buf, dtype=np.uint8, count=index_len, offset=pos)
    if form == _INDEX_BITMAP:
        bits = np.unpackbits(raw, bitorder="little")
        if np.any(bits[n:]):
            raise CodecError("topk bitmap has bits set past the last value")
        idx = np.flatnonzero(bits[:n])
        if idx.size != k:
            raise CodecError(f"topk bitmap marks {idx.size} positions, {k} announced")
    else:
        gaps = _varint_decode(raw, k)
        if k and int(gaps.max()) >= n:
            raise CodecError("topk position out of range")
        idx = np.cumsum(gaps + 1) - 1  # strictly increasing; each term < n <= 2^31, so no overflow
        if k and int(idx[-1]) >= n:
            raise CodecError("topk position out of range")
    out = np.zeros(n, dtype=np.float32)
    out[idx] = values
    return out


# -- error feedback -----------------------------------------------------------------


class ErrorFeedback:
    """A sender's residual: what compression has dropped so far and will add to its next vector.

    Thread safety: one object per sender and link; not for concurrent use.
    """

    def __init__(self) -> None:
        self.residual: np.ndarray | None = None

    def compensate(self, values: np.ndarray) -> np.ndarray:
        """``values`` plus the residual (float32, a new array).

        Raises
        ------
        ValueError
            If ``values`` has another size than the residual.
        """
        x = np.asarray(values, dtype=np.float32).reshape(-1)
        if self.residual is None:
            return x.copy()
        if self.residual.size != x.size:
            raise ValueError(f"error feedback holds {self.residual.size} values, got {x.size}")
        return x + self.residual

    def update(self, target: np.ndarray, sent: np.ndarray) -> None:
        """Keeps ``target - sent``: the part of ``target`` the receiver did not get."""
        self.residual = (np.asarray(target, np.float32) - np.asarray(sent, np.float32)).reshape(-1)

    def reset(self) -> None:
        self.residual = None

    def state_dict(self) -> dict[str, Any]:
        """The residual (a float32 copy, or None before the first send)."""
        return {"residual": None if self.residual is None else self.residual.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores :meth:`state_dict` output (a numpy array, a torch tensor or None).

        Raises
        ------
        ValueError
            For a residual that is not a finite 1-D vector.
        """
        r = state.get("residual")
        if r is None:
            self.residual = None
            return
        if hasattr(r, "numpy"):
            r = r.detach().cpu().numpy()
        arr = np.array(r, dtype=np.float32)
        if arr.ndim != 1 or not np.all(np.isfinite(arr)):
            raise ValueError("error-feedback residual must be a finite 1-D vector")
        self.residual = arr


def compress(values: np.ndarray, codec: Codec, feedback: ErrorFeedback | None = None) -> bytes:
    """Encodes ``values`` with ``codec``, through ``feedback``'s residual when given.

    The lossless ``none`` codec sends the residual along and clears it (a
    sender whose policy moves from a lossy codec to ``none`` pays its debt).

    Raises
    ------
    ValueError
        For non-finite values or a residual of another size.
    """
    if feedback is None:
        return codec.encode(values)[0]
    target = feedback.compensate(values)
    if codec.name == "none":
        feedback.reset()
        return codec.encode(target)[0]
    blob, sent = codec.encode(target)
    feedback.update(target, sent)
    return blob


# -- per-link policy ------------------------------------------------------------------


@dataclass(frozen=True)
class AutoPolicy:
    """Picks a codec per link from the sender's measured uplink bandwidth.

    Parameters
    ----------
    none_mbps : float
        At or above this bandwidth the update travels uncompressed.
    q8_mbps : float
        At or above this (and below ``none_mbps``): q8; below it: topk.
    topk_fraction, chunk
        Parameters of the chosen codecs.

    Raises
    ------
    ValueError
        If the thresholds are not ``0 < q8_mbps <= none_mbps``.
    """

    none_mbps: float = 500.0
    q8_mbps: float = 50.0
    topk_fraction: float = 0.1
    chunk: int = 4096

    def __post_init__(self) -> None:
        if not 0.0 < self.q8_mbps <= self.none_mbps:
            raise ValueError(f"auto thresholds need 0 < q8_mbps <= none_mbps, got {self.q8_mbps}, {self.none_mbps}")
        Codec("topk", self.chunk, self.topk_fraction)  # validates the codec parameters

    def select(self, bandwidth_mbps: float) -> Codec:
        """The codec for a link of ``bandwidth_mbps`` Mbit/s."""
        if bandwidth_mbps >= self.none_mbps:
            return Codec("none", self.chunk, self.topk_fraction)
        if bandwidth_mbps >= self.q8_mbps:
            return Codec("q8", self.chunk, self.topk_fraction)
        return Codec("topk", self.chunk, self.topk_fraction)


def make_compression(
    name: str,
    *,
    topk_fraction: float = 0.1,
    chunk: int = 4096,
    none_mbps: float = 500.0,
    q8_mbps: float = 50.0,
) -> Codec | AutoPolicy:
    """A codec (``none``, ``q8``, ``topk``) or the ``auto`` policy by name.

    Raises
    ------
    ValueError
        For an unknown name or out-of-range parameters.
    """
    if name == "auto":
        return AutoPolicy(none_mbps=none_mbps, q8_mbps=q8_mbps, topk_fraction=topk_fraction, chunk=chunk)
    return Codec(name, chunk, topk_fraction)


def resolve(compression: Codec | AutoPolicy | None, bandwidth_mbps: float) -> Codec:
    """The codec a sender with ``bandwidth_mbps`` of uplink uses under ``compression`` (None: none)."""
    if compression is None:
        return Codec("none")
    if isinstance(compression, AutoPolicy):
        return compression.select(bandwidth_mbps)
    return compression
