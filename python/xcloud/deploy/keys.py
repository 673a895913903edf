"""Key setup across machines: the CKKS secret key reaches the clients only.

Every node makes an X25519 identity when it joins. A *sealed blob* is a
one-way message to one identity (an ECIES-style construction): a fresh
ephemeral X25519 key, HKDF-SHA256 over the shared secret to a one-time key
(RFC 5869), ChaCha20-Poly1305 over the payload (RFC 8439), with an
associated-data label that binds what the blob is and for whom. Whoever
relays a blob (the aggregation server) cannot open it, and a flipped bit, a
blob for another recipient or one relabelled as something else is refused.

Shared-key mode: one client, the key holder, generates the CKKS key set and
seals its secret key to every other client's identity; the server relays the
blobs. Public-key mode: the key holder keeps the secret key, and the others
receive only the public key. Each client also seals the HMAC key that
authenticates its updates to the server's identity.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from xcloud.crypto import CkksContext, KeySet
from xcloud.errors import IntegrityError

__all__ = [
    "NodeIdentity",
    "open_mac_key",
    "open_sealed",
    "open_secret_key",
    "seal",
    "seal_mac_key",
    "share_secret_key",
]

_MAGIC = b"XCSB"
_VERSION = 1
_HEAD = struct.Struct("<4sB")  # magic, version
_PUB_LEN = 32
_NONCE_LEN = 12
_TAG_LEN = 16
MAX_SEALED = 1 << 30  # a sealed CKKS secret key is a few tens of kB; anything near this is refused


class NodeIdentity:
    """A node's X25519 key pair, made from the OS CSPRNG.

    Parameters
    ----------
    private : X25519PrivateKey, optional
        An existing key (default: a fresh one).
    """

    def __init__(self, private: X25519PrivateKey | None = None) -> None:
        self._private = private if private is not None else X25519PrivateKey.generate()

    @property
    def public_bytes(self) -> bytes:
        """The 32-byte public key, what other parties seal to."""
        return self._private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def private_bytes(self) -> bytes:
        """The 32-byte private key, for the node's own persistent state only."""
        return self._private.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )

    @classmethod
    def from_private_bytes(cls, data: bytes) -> NodeIdentity:
        """Restores an identity saved with :meth:`private_bytes`.

        Raises
        ------
        ValueError
            If ``data`` is not a 32-byte X25519 private key.
        """
        if len(data) != _PUB_LEN:
            raise ValueError(f"an X25519 private key has 32 bytes, got {len(data)}")
        return cls(X25519PrivateKey.from_private_bytes(bytes(data)))

    def exchange(self, peer_public: bytes) -> bytes:
        return self._private.exchange(X25519PublicKey.from_public_bytes(peer_public))


def _derive(shared: bytes, ephemeral: bytes, recipient: bytes, label: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient, info=b"xcloud sealed blob v1\0" + label
    ).derive(shared)


def seal(recipient_public: bytes, payload: bytes, label: bytes) -> bytes:
    """Encrypts ``payload`` so that only the holder of ``recipient_public``'s private key can read it.

    Layout: ``magic "XCSB" | u8 version | ephemeral public key (32) | nonce
    (12) | ChaCha20-Poly1305 ciphertext and tag``; ``label`` is associated
    data (not sent: the recipient must expect the same label).

    Raises
    ------
    ValueError
        If ``recipient_public`` is not a 32-byte X25519 public key.
    """
    if len(recipient_public) != _PUB_LEN:
        raise ValueError(f"an X25519 public key has 32 bytes, got {len(recipient_public)}")
    eph = NodeIdentity()
    key = _derive(eph.exchange(recipient_public), eph.public_bytes, bytes(recipient_public), label)
    nonce = os.urandom(_NONCE_LEN)
    head = _HEAD.pack(_MAGIC, _VERSION) + eph.public_bytes + nonce
    return head + ChaCha20Poly1305(key).encrypt(nonce, bytes(payload), head + label)


def open_sealed(identity: NodeIdentity, blob: bytes, label: bytes) -> bytes:
    """Decrypts a blob made by :func:`seal` for ``identity`` under ``label``.

    Raises
    ------
    IntegrityError
        Malformed, truncated or tampered blob, another recipient or another label.
    """
    blob = bytes(blob)
    n_head = _HEAD.size + _PUB_LEN + _NONCE_LEN
    if len(blob) < n_head + _TAG_LEN or len(blob) > MAX_SEALED:
        raise IntegrityError(f"sealed blob has a bad length ({len(blob)} bytes)")
    magic, version = _HEAD.unpack_from(blob)
    if magic != _MAGIC or version != _VERSION:
        raise IntegrityError("not a sealed blob of a known version")
    eph = blob[_HEAD.size : _HEAD.size + _PUB_LEN]
    nonce = blob[_HEAD.size + _PUB_LEN : n_head]
    try:
        key = _derive(identity.exchange(eph), eph, identity.public_bytes, label)
        return ChaCha20Poly1305(key).decrypt(nonce, blob[n_head:], blob[:n_head] + label)
    except (InvalidTag, ValueError):
        raise IntegrityError("sealed blob does not open (tampered, for another recipient or another purpose)") from None


def _secret_label(client_id: str, ctx: CkksContext, key_id: bytes) -> bytes:
    return b"ckks-secret-key\0" + client_id.encode() + b"\0" + ctx.fingerprint + key_id


def share_secret_key(keys: KeySet, recipients: Mapping[str, bytes]) -> dict[str, bytes]:
    """Seals the secret key of ``keys`` to each recipient (client id -> X25519 public key).

    Raises
    ------
    ValueError
        If ``keys`` holds no secret key.
    """
    if not keys.has_secret:
        raise ValueError("only a key set with its secret key can be shared")
    secret = keys.secret_bytes()
    return {cid: seal(pub, secret, _secret_label(cid, keys.ctx, keys.key_id)) for cid, pub in recipients.items()}


def open_secret_key(identity: NodeIdentity, client_id: str, blob: bytes, ctx: CkksContext, key_id: bytes) -> KeySet:
    """Opens this client's sealed secret key and checks it is the announced key.

    Raises
    ------
    IntegrityError
        If the blob does not open for this client, context and key id, or
        holds another key.
    """
    keys = KeySet.from_bytes(ctx, open_sealed(identity, blob, _secret_label(client_id, ctx, key_id)))
    if keys.key_id != key_id or not keys.has_secret:
        raise IntegrityError("the sealed key is not the announced secret key")
    return keys


def _mac_label(client_id: str) -> bytes:
    return b"update-mac-key\0" + client_id.encode()


def seal_mac_key(server_public: bytes, client_id: str, mac_key: bytes) -> bytes:
    """Seals the HMAC key of ``client_id``'s updates to the server's identity."""
    if len(mac_key) < 32:
        raise ValueError("an update MAC key needs at least 32 bytes")
    return seal(server_public, mac_key, _mac_label(client_id))


def open_mac_key(server: NodeIdentity, client_id: str, blob: bytes) -> bytes:
    """The server's side of :func:`seal_mac_key`.

    Raises
    ------
    IntegrityError
        If the blob does not open as ``client_id``'s MAC key.
    """
    key = open_sealed(server, blob, _mac_label(client_id))
    if len(key) < 32:
        raise IntegrityError("MAC key too short")
    return key
