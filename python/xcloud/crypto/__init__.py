"""Typed Python API over the native CKKS kernel."""

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
    "add",
    "aggregate",
    "decrypt_blocks",
    "dyadic_weights",
    "encrypt_blocks",
    "encrypt_blocks_derand",
]
