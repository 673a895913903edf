"""The two messages of a round: a client's protected update and the server's aggregate.

Both are authenticated envelopes (:mod:`xcloud.fl.envelope`). An update
carries the plain part as float32 values and the encrypted part as xcloud
ciphertext wire bytes; its header binds the round id, the parameter
fingerprint, the key id and the protection plan.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from xcloud.crypto import CiphertextBlocks, CkksContext
from xcloud.errors import IntegrityError
from xcloud.fl.envelope import open_envelope, seal_envelope

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


def _header(cls: type, raw: dict[str, Any]) -> Any:
    try:
        return cls(**raw)
    except TypeError as e:
        raise IntegrityError(f"malformed message header: {e}") from None


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


def pack_aggregate(header: AggregateHeader, plain: np.ndarray, ct: CiphertextBlocks | None, mac_key: bytes) -> bytes:
    """Serialises and authenticates a round's aggregate (sent to the clients)."""
    plain = np.ascontiguousarray(plain, dtype="<f4")
    blobs = [plain.tobytes(), ct.to_bytes() if ct is not None else b""]
    return seal_envelope(AGGREGATE_KIND, asdict(header), blobs, mac_key)


def unpack_aggregate(
    data: bytes, mac_key: bytes, ctx: CkksContext
) -> tuple[AggregateHeader, np.ndarray, CiphertextBlocks | None]:
    """Verifies and parses an aggregate. Raises IntegrityError."""
    raw, blobs = open_envelope(AGGREGATE_KIND, data, mac_key)
    header: AggregateHeader = _header(AggregateHeader, raw)
    if len(blobs) != 2 or len(blobs[0]) != 4 * header.n_plain:
        raise IntegrityError("aggregate parts do not match the header")
    plain = np.frombuffer(blobs[0], dtype="<f4").astype(np.float32)
    ct = CiphertextBlocks.from_bytes(ctx, blobs[1]) if len(blobs[1]) else None
    return header, plain, ct
