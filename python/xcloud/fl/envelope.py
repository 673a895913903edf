"""Authenticated message envelopes.

Layout (version 1): ``magic (4) | u16 version | u32 header length | header
(UTF-8 JSON) | u32 blob count | (u64 length | bytes) per blob | HMAC-SHA256``
over everything before it. Every message carries a kind (the magic), the
parameter fingerprint and round id in its header, and a MAC: a wrong, stale,
truncated or tampered message is rejected with a clear error.
"""

from __future__ import annotations

import hmac
import json
import struct
from hashlib import sha256
from typing import Any

from xcloud.errors import IntegrityError

__all__ = ["open_envelope", "seal_envelope"]

_VERSION = 1
_MAC_LEN = 32
_MAX_HEADER = 1 << 20
_MAX_BLOBS = 16


def seal_envelope(kind: bytes, header: dict[str, Any], blobs: list[bytes], mac_key: bytes) -> bytes:
    """Serialises and authenticates a message."""
    if len(kind) != 4:
        raise ValueError("kind must be 4 bytes")
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    parts = [kind, struct.pack("<HI", _VERSION, len(head)), head, struct.pack("<I", len(blobs))]
    for b in blobs:
        parts.append(struct.pack("<Q", len(b)))
        parts.append(bytes(b))
    body = b"".join(parts)
    return body + hmac.new(mac_key, body, sha256).digest()


def open_envelope(kind: bytes, data: bytes, mac_key: bytes) -> tuple[dict[str, Any], list[memoryview]]:
    """Verifies and parses a message of the given kind.

    Raises
    ------
    IntegrityError
        For a wrong kind or version, a bad MAC, truncation, or malformed fields.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"message must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < 4 + 6 + 4 + _MAC_LEN:
        raise IntegrityError(f"message truncated ({len(data)} bytes)")
    if data[:4] != kind:
        raise IntegrityError(f"wrong message kind {data[:4]!r}, expected {kind!r}")
    body, tag = data[:-_MAC_LEN], data[-_MAC_LEN:]
    if not hmac.compare_digest(hmac.new(mac_key, body, sha256).digest(), tag):
        raise IntegrityError("message authentication failed (tampered, truncated, or wrong key)")
    version, head_len = struct.unpack_from("<HI", body, 4)
    if version != _VERSION:
        raise IntegrityError(f"unsupported message version {version}")
    pos = 10
    if head_len > _MAX_HEADER or pos + head_len + 4 > len(body):
        raise IntegrityError("bad header length")
    try:
        header = json.loads(body[pos : pos + head_len].decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise IntegrityError(f"malformed header: {e}") from None
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
