"""Typed Python API over the native CKKS kernel.

``UnsupportedVersionError`` (a subclass of :class:`xcloud.IntegrityError`) is
raised for ciphertext bytes of a wire-format version this build does not read.
"""

from xcloud._native import UnsupportedVersionError
from xcloud.crypto.blocks import (
    MAX_SEEDS_PER_BLOCK,
    CiphertextBlocks,
    add,
    aggregate,
    decrypt_blocks,
    dyadic_weights,
    encrypt_blocks,
    encrypt_blocks_derand,
)
from xcloud.crypto.context import PRESETS, CkksContext, CkksLiteral
from xcloud.crypto.keys import KeySet

__all__ = [
    "MAX_SEEDS_PER_BLOCK",
    "PRESETS",
    "CiphertextBlocks",
    "CkksContext",
    "CkksLiteral",
    "KeySet",
    "UnsupportedVersionError",
    "add",
    "aggregate",
    "decrypt_blocks",
    "dyadic_weights",
    "encrypt_blocks",
    "encrypt_blocks_derand",
]
