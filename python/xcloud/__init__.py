"""xcloud: privacy-preserving federated training across clouds on a native CKKS kernel."""

from xcloud.crypto import (
    CiphertextBlocks,
    CkksContext,
    CkksLiteral,
    KeySet,
    add,
    aggregate,
    decrypt_blocks,
    dyadic_weights,
    encrypt_blocks,
    encrypt_blocks_derand,
)
from xcloud.errors import IntegrityError, ParameterError

__version__ = "0.1.0"

__all__ = [
    "CiphertextBlocks",
    "CkksContext",
    "CkksLiteral",
    "IntegrityError",
    "KeySet",
    "ParameterError",
    "add",
    "aggregate",
    "decrypt_blocks",
    "dyadic_weights",
    "encrypt_blocks",
    "encrypt_blocks_derand",
]
