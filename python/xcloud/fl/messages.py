"""The two messages of a round: a client's protected update and the server's aggregate.

Both are authenticated envelopes (:mod:`xcloud.fl.envelope`). An update
carries the plain part as float32 values and the encrypted part as xcloud
ciphertext wire bytes; its header binds the round id, the parameter
fingerprint, the key id and the protection plan.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from xcloud.crypto import CiphertextBlocks, CkksContext
from xcloud.errors import IntegrityError
from xcloud.fl.envelope import open_envelope, open_signed, seal_envelope, seal_signed

__all__ = ["AggregateHeader", "UpdateHeader", "pack_aggregate", "pack_update", "unpack_aggregate", "unpack_update"]

UPDATE_KIND = b"XCUP"
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


def pack_update(header: UpdateHeader, plain: np.ndarray, ct: CiphertextBlocks | None, mac_key: bytes) -> bytes:
    """Serialises and authenticates a client update."""
    plain = np.ascontiguousarray(plain, dtype="<f4")
    if plain.size != header.n_plain:
        raise ValueError("plain part size differs from the header")
    blobs = [plain.tobytes(), ct.to_bytes() if ct is not None else b""]
    return seal_envelope(UPDATE_KIND, asdict(header), blobs, mac_key)


_MAX_COUNT = 1 << 40


def _header(cls: type, raw: dict[str, Any]) -> Any:
    """Builds a header dataclass, checking every field's type and range (an authenticated
    sender can still send nonsense, which must be rejected, not crash the receiver)."""
    names = {f.name: f.type for f in fields(cls)}
    if set(raw) != set(names):
        raise IntegrityError(f"malformed message header: fields {sorted(raw)}")
    for name, want in names.items():
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


def unpack_update(
    data: bytes, mac_key: bytes, ctx: CkksContext
) -> tuple[UpdateHeader, np.ndarray, CiphertextBlocks | None]:
    """Verifies and parses a client update.

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
    if len(plain_b) != 4 * header.n_plain:
        raise IntegrityError(f"plain part has {len(plain_b)} bytes, the header announces {header.n_plain} values")
    plain = np.frombuffer(plain_b, dtype="<f4").astype(np.float32)
    ct = CiphertextBlocks.from_bytes(ctx, ct_b) if len(ct_b) else None
    return header, plain, ct


def pack_aggregate(
    header: AggregateHeader, plain: np.ndarray, ct: CiphertextBlocks | None, signing_key: Ed25519PrivateKey
) -> bytes:
    """Serialises a round's aggregate and signs it with the server's Ed25519 key."""
    plain = np.ascontiguousarray(plain, dtype="<f4")
    blobs = [plain.tobytes(), ct.to_bytes() if ct is not None else b""]
    return seal_signed(AGGREGATE_KIND, asdict(header), blobs, signing_key)


def unpack_aggregate(
    data: bytes, server_key: Ed25519PublicKey, ctx: CkksContext
) -> tuple[AggregateHeader, np.ndarray, CiphertextBlocks | None]:
    """Verifies the server's signature and parses an aggregate. Raises IntegrityError."""
    raw, blobs = open_signed(AGGREGATE_KIND, data, server_key)
    header: AggregateHeader = _header(AggregateHeader, raw)
    if len(blobs) != 2 or len(blobs[0]) != 4 * header.n_plain:
        raise IntegrityError("aggregate parts do not match the header")
    plain = np.frombuffer(blobs[0], dtype="<f4").astype(np.float32)
    ct = CiphertextBlocks.from_bytes(ctx, blobs[1]) if len(blobs[1]) else None
    return header, plain, ct
