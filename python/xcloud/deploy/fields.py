"""Bytes fields of the messages that xcloud's ServerApp and ClientApps exchange over Flower.

A Flower config record may carry an int where bytes belong, and ``bytes(n)``
of an int allocates n zero bytes (``bytes(2**62)``: 4 EiB), so no party calls
``bytes()`` on a field another party sent without this check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xcloud.errors import IntegrityError

__all__ = ["blob"]


def blob(msg: Mapping[str, Any], name: str, *, default: bytes | None = None) -> bytes:
    """Field ``name`` of ``msg`` as bytes (``default`` when absent, if given).

    Raises
    ------
    IntegrityError
        (a ValueError) When the field is absent without a default, or is not
        bytes, bytearray or memoryview.
    """
    v = msg.get(name, default)
    if not isinstance(v, (bytes, bytearray, memoryview)):
        raise IntegrityError(f"field {name!r} is {'missing' if v is None else 'a ' + type(v).__name__}, not bytes")
    return bytes(v)
