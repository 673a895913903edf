"""The two messages of a round: a client's protected update and the server's aggregate.

Both are authenticated envelopes (:mod:`xcloud.fl.envelope`). An update
carries the plain part, encoded by the codec its header names
(:mod:`xcloud.fl.compression`; float32 values by default), and the encrypted
part as xcloud ciphertext wire bytes; its header binds the round id, the
parameter fingerprint, the key id, the protection plan and the codec. The
aggregate likewise names the codec of its plain part. A header whose codec is
``none`` omits the field, so uncompressed messages are byte for byte what they
were before compression existed.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from xcloud.crypto import CiphertextBlocks, CkksContext
from xcloud.errors import IntegrityError
from xcloud.fl.compression import CodecError, decode
from xcloud.fl.envelope import open_envelope, open_signed, seal_envelope, seal_signed

__all__ = [
    "AggregateHeader",
    "UpdateHeader",
    "open_update",
    "pack_aggregate",
    "pack_update",
    "unpack_aggregate",
    "unpack_update",
]

UPDATE_KIND = b"XCUP"
# The bandwidth an update may report, in Mbit/s: 1 kbit/s to 10 Tbit/s. Near 0
# (5e-324, say) the bandwidth ratios of dynamic weighting become infinite and
# fail the whole round; the aggregator rejects values outside, clients clamp
# what they measured into it.
MIN_BANDWIDTH_MBPS, MAX_BANDWIDTH_MBPS = 1e-3, 1e7
AGGREGATE_KIND = b"XCAG"


@dataclass(frozen=True)
class UpdateHeader:
    """Public metadata of a client update."""

    client_id: str
    round_id: int
    fingerprint: str  # hex of the CKKS parameter fingerprint
    key_id: str  # hex of the key id ("" when nothing is encrypted)
    plan: str  # hex of the protection plan digest
    num_samples: int
    loss: float
    bandwidth_mbps: float
    n_plain: int
    n_encrypted: int
    codec: str = "none"  # of the plain part (xcloud.fl.compression.CODECS)


@dataclass(frozen=True)
class AggregateHeader:
    """Public metadata of a round's aggregate."""

    round_id: int
    fingerprint: str
    plan: str
    clients: list[str]
    weights: list[float]
    n_plain: int
    n_encrypted: int
    codec: str = "none"


def _plain_blob(header: UpdateHeader | AggregateHeader, plain: np.ndarray | bytes) -> bytes:
    """The plain part's bytes: float32 values for codec ``none``, else the codec's encoding as given."""
    if isinstance(plain, (bytes, bytearray)):
        if header.codec == "none":
            raise ValueError("an uncompressed plain part is passed as values, not bytes")
        return bytes(plain)
    if header.codec != "none":
        raise ValueError(f"a {header.codec} plain part is passed as its encoding (bytes)")
    values = np.ascontiguousarray(plain, dtype="<f4")
    if values.size != header.n_plain:
        raise ValueError("plain part size differs from the header")
    return values.tobytes()


def _header_dict(header: UpdateHeader | AggregateHeader) -> dict[str, Any]:
    raw = asdict(header)
    if raw["codec"] == "none":
        del raw["codec"]  # the uncompressed format predates the field: keep its exact bytes
    return raw


def pack_update(header: UpdateHeader, plain: np.ndarray | bytes, ct: CiphertextBlocks | None, mac_key: bytes) -> bytes:
    """Serialises and authenticates a client update.

    Parameters
    ----------
    header : UpdateHeader
    plain : numpy.ndarray or bytes
        The plain values (codec ``none``) or their encoding by ``header.codec``
        (:func:`xcloud.fl.compression.compress`).
    ct : CiphertextBlocks or None
    mac_key : bytes
    """
    blobs = [_plain_blob(header, plain), ct.to_bytes() if ct is not None else b""]
    return seal_envelope(UPDATE_KIND, _header_dict(header), blobs, mac_key)


_MAX_COUNT = 1 << 40


def _header(cls: type, raw: dict[str, Any]) -> Any:
    """Builds a header dataclass, checking every field's type and range (an authenticated
    sender can still send nonsense, which must be rejected, not crash the receiver)."""
    names = {f.name: f.type for f in fields(cls)}
    optional = {f.name for f in fields(cls) if f.default is not MISSING}
    if not set(names) - optional <= set(raw) <= set(names):
        raise IntegrityError(f"malformed message header: fields {sorted(raw)}")
    for name, want in names.items():
        if name not in raw:
            continue
        v = raw[name]
        try:
            ok = _valid(v, str(want))
        except OverflowError:  # an integer too large for a float
            ok = False
        if not ok:
            raise IntegrityError(f"malformed message header: {name}={v!r:.80} is not a valid {want}")
    return cls(**raw)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _valid(v: Any, want: str) -> bool:
    if want == "int":
        return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= _MAX_COUNT
    if want == "float":
        return _is_number(v)
    if want == "str":
        return isinstance(v, str) and len(v) <= 256
    if want == "list[str]":
        return isinstance(v, list) and all(isinstance(x, str) for x in v)
    if want == "list[float]":
        return isinstance(v, list) and all(_is_number(x) for x in v)
    return False


def open_update(
    data: bytes, mac_key: bytes, ctx: CkksContext
) -> tuple[UpdateHeader, memoryview, CiphertextBlocks | None]:
    """Verifies a client update and parses all but its plain part.

    The plain part is returned encoded, so a receiver can check the header
    (the announced count above all) before it decodes anything:
    ``decode(blob, header.n_plain, header.codec)``.

    Raises
    ------
    IntegrityError
        Bad MAC, truncation, malformed fields or ciphertext bytes.
    """
    raw, blobs = open_envelope(UPDATE_KIND, data, mac_key)
    header: UpdateHeader = _header(UpdateHeader, raw)
    if len(blobs) != 2:
        raise IntegrityError("an update has exactly two parts")
    plain_b, ct_b = blobs
    ct = CiphertextBlocks.from_bytes(ctx, ct_b) if len(ct_b) else None
    return header, plain_b, ct


def unpack_update(
    data: bytes, mac_key: bytes, ctx: CkksContext
) -> tuple[UpdateHeader, np.ndarray, CiphertextBlocks | None]:
    """Verifies and parses a client update, decoding its plain part to float32.

    Raises
    ------
    IntegrityError
        Bad MAC, truncation, malformed fields or ciphertext bytes;
        :class:`~xcloud.fl.compression.CodecError` (a subclass) for a plain
        part that does not decode.
    """
    header, plain_b, ct = open_update(data, mac_key, ctx)
    return header, decode(plain_b, header.n_plain, header.codec), ct


def pack_aggregate(
    header: AggregateHeader, plain: np.ndarray | bytes, ct: CiphertextBlocks | None, signing_key: Ed25519PrivateKey
) -> bytes:
    """Serialises a round's aggregate and signs it with the server's Ed25519 key.

    ``plain`` is float32 values for codec ``none``, else their encoding by ``header.codec``.
    """
    blobs = [_plain_blob(header, plain), ct.to_bytes() if ct is not None else b""]
    return seal_signed(AGGREGATE_KIND, _header_dict(header), blobs, signing_key)


def unpack_aggregate(
    data: bytes, server_key: Ed25519PublicKey, ctx: CkksContext, n_plain: int | None = None
) -> tuple[AggregateHeader, np.ndarray, CiphertextBlocks | None]:
    """Verifies the server's signature and parses an aggregate, decoding its plain part.

    ``n_plain``, when given, is the count the receiver expects: an aggregate
    announcing another is refused before its plain part is decoded.

    Raises
    ------
    IntegrityError
        Bad signature, truncation, malformed fields, parts or encoding.
    """
    raw, blobs = open_signed(AGGREGATE_KIND, data, server_key)
    header: AggregateHeader = _header(AggregateHeader, raw)
    if len(blobs) != 2:
        raise IntegrityError("aggregate parts do not match the header")
    if n_plain is not None and header.n_plain != n_plain:
        raise IntegrityError(f"aggregate has {header.n_plain} plain values, {n_plain} expected")
    try:
        plain = decode(blobs[0], header.n_plain, header.codec)
    except CodecError as e:
        raise IntegrityError(f"aggregate parts do not match the header: {e}") from None
    ct = CiphertextBlocks.from_bytes(ctx, blobs[1]) if len(blobs[1]) else None
    return header, plain, ct
