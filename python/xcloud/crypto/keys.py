"""Key sets: the secret key (clients only) and the public key."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from xcloud import _native

if TYPE_CHECKING:
    from xcloud.crypto.context import CkksContext

__all__ = ["KeySet"]


class KeySet:
    """A CKKS key pair, or only its public part.

    In shared-key mode the clients hold the full key set and the aggregation
    server holds nothing (or :meth:`public_only`). The secret key never leaves
    memory except through :meth:`save_secret` / :meth:`secret_bytes`, and is
    zeroed when the native object is destroyed.
    """

    def __init__(self, native: _native.KeySet, ctx: CkksContext) -> None:
        self._native = native
        self.ctx = ctx

    @property
    def has_secret(self) -> bool:
        return bool(self._native.has_secret)

    @property
    def key_id(self) -> bytes:
        """16 bytes identifying the key pair (derived from the public key)."""
        return bytes(self._native.key_id)

    def public_only(self) -> KeySet:
        """The same keys without the secret key (for servers and public-key senders)."""
        return KeySet(self._native.public_only(), self.ctx)

    def public_bytes(self) -> bytes:
        """The public key in xcloud's key format (no secret material)."""
        return bytes(self._native.public_to_bytes())

    def secret_bytes(self) -> bytes:
        """The secret and public key in xcloud's key format. Handle with care.

        Raises
        ------
        ValueError
            If this key set has no secret key.
        """
        return bytes(self._native.secret_to_bytes())

    def save_public(self, path: str | os.PathLike[str]) -> None:
        """Writes the public key to ``path`` (mode 0644)."""
        _write_file(path, self.public_bytes(), 0o644)

    def save_secret(self, path: str | os.PathLike[str]) -> None:
        """Writes the secret key to a new file readable by its owner only (mode 0600).

        Raises
        ------
        FileExistsError
            If ``path`` exists: secret keys are never overwritten silently.
        """
        _write_file(path, self.secret_bytes(), 0o600, exclusive=True)

    @classmethod
    def from_bytes(cls, ctx: CkksContext, data: bytes) -> KeySet:
        """Parses key bytes made under ``ctx``.

        Raises
        ------
        IntegrityError
            For malformed, truncated, tampered or mismatched bytes.
        TypeError
            If ``data`` is not bytes, bytearray or memoryview (``bytes(n)`` of an
            int would allocate ``n`` zero bytes).
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"key bytes must be bytes, bytearray or memoryview, got {type(data).__name__}")
        return cls(_native.KeySet.from_bytes(ctx._params, bytes(data)), ctx)

    @classmethod
    def load(cls, ctx: CkksContext, path: str | os.PathLike[str]) -> KeySet:
        with open(path, "rb") as f:
            return cls.from_bytes(ctx, f.read())

    def __repr__(self) -> str:
        kind = "secret+public" if self.has_secret else "public only"
        return f"KeySet({kind}, id={self.key_id.hex()[:16]})"


def _write_file(path: str | os.PathLike[str], data: bytes, mode: int, exclusive: bool = False) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    finally:
        os.close(fd)
