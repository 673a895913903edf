"""Authenticated message envelopes.

Layout (version 1): ``magic (4) | u16 version | u32 header length | header
(UTF-8 JSON) | u32 blob count | (u64 length | bytes) per blob | tag`` where the
tag covers everything before it: HMAC-SHA256 (32 bytes) for client updates,
whose key the client shares with the server only, or an Ed25519 signature
(64 bytes) for the server's aggregate, which every client verifies with the
server's public key (a MAC key shared by all clients would let one client
forge the aggregate for the others). Every message carries a kind (the
magic), the parameter fingerprint and round id in its header: a wrong, stale,
truncated or tampered message is rejected with a clear error.
"""

from __future__ import annotations

import hmac
import json
import struct
from hashlib import sha256
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from xcloud.errors import IntegrityError

__all__ = ["open_envelope", "open_signed", "seal_envelope", "seal_signed"]

_VERSION = 1
_MAC_LEN = 32
_SIG_LEN = 64
_MAX_HEADER = 1 << 20
_MAX_BLOBS = 16


def seal_envelope(kind: bytes, header: dict[str, Any], blobs: list[bytes], mac_key: bytes) -> bytes:
    """Serialises a message and appends its HMAC-SHA256 under ``mac_key``."""
    body = _body(kind, header, blobs)
    return body + hmac.new(mac_key, body, sha256).digest()


def seal_signed(kind: bytes, header: dict[str, Any], blobs: list[bytes], key: Ed25519PrivateKey) -> bytes:
    """Serialises a message and appends its Ed25519 signature."""
    body = _body(kind, header, blobs)
    return body + key.sign(body)


def _body(kind: bytes, header: dict[str, Any], blobs: list[bytes]) -> bytes:
    if len(kind) != 4:
        raise ValueError("kind must be 4 bytes")
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    parts = [kind, struct.pack("<HI", _VERSION, len(head)), head, struct.pack("<I", len(blobs))]
    for b in blobs:
        parts.append(struct.pack("<Q", len(b)))
        parts.append(bytes(b))
    return b"".join(parts)


def open_envelope(kind: bytes, data: bytes, mac_key: bytes) -> tuple[dict[str, Any], list[memoryview]]:
    """Verifies and parses a message of the given kind.

    Raises
    ------
    IntegrityError
        For a wrong kind or version, a bad MAC, truncation, or malformed fields.
    """
    body, tag = _split(kind, data, _MAC_LEN)
    if not hmac.compare_digest(hmac.new(mac_key, body, sha256).digest(), tag):
        raise IntegrityError("message authentication failed (tampered, truncated, or wrong key)")
    return _parse(body)


def open_signed(kind: bytes, data: bytes, key: Ed25519PublicKey) -> tuple[dict[str, Any], list[memoryview]]:
    """Verifies the Ed25519 signature of a message and parses it.

    Raises
    ------
    IntegrityError
        For a wrong kind or version, a bad signature, truncation, or malformed fields.
    """
    body, tag = _split(kind, data, _SIG_LEN)
    try:
        key.verify(tag, body)
    except InvalidSignature:
        raise IntegrityError("message signature is invalid (tampered, truncated, or not from the server)") from None
    return _parse(body)


def _split(kind: bytes, data: bytes, tag_len: int) -> tuple[bytes, bytes]:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"message must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < 4 + 6 + 4 + tag_len:
        raise IntegrityError(f"message truncated ({len(data)} bytes)")
    if data[:4] != kind:
        raise IntegrityError(f"wrong message kind {data[:4]!r}, expected {kind!r}")
    return data[:-tag_len], data[-tag_len:]


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _parse(body: bytes) -> tuple[dict[str, Any], list[memoryview]]:
    version, head_len = struct.unpack_from("<HI", body, 4)
    if version != _VERSION:
        raise IntegrityError(f"unsupported message version {version}")
    pos = 10
    if head_len > _MAX_HEADER or pos + head_len + 4 > len(body):
        raise IntegrityError("bad header length")
    try:
        header = json.loads(body[pos : pos + head_len].decode(), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        # ValueError also covers integers beyond Python's digit limit and the
        # NaN/Infinity literals; RecursionError, headers nested too deeply.
        raise IntegrityError(f"malformed header: {type(e).__name__}: {e}") from None
    if not isinstance(header, dict):
        raise IntegrityError("malformed header: not an object")
    pos += head_len
    (count,) = struct.unpack_from("<I", body, pos)
    pos += 4
    if count > _MAX_BLOBS:
        raise IntegrityError("too many blobs")
    view = memoryview(body)
    blobs: list[memoryview] = []
    for _ in range(count):
        if pos + 8 > len(body):
            raise IntegrityError("truncated blob length")
        (n,) = struct.unpack_from("<Q", body, pos)
        pos += 8
        if n > len(body) - pos:
            raise IntegrityError("blob extends past the message")
        blobs.append(view[pos : pos + n])
        pos += n
    if pos != len(body):
        raise IntegrityError("trailing bytes after the last blob")
    return header, blobs
