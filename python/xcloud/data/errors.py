"""The data layer's exception type."""

from __future__ import annotations

__all__ = ["DataIntegrityError"]


class DataIntegrityError(ValueError):
    """A data file or shard is corrupt, malformed, tampered with or of the wrong version.

    The message names the file (and line, where there is one) and what is
    wrong with it. A subclass of :class:`ValueError`, so ``except ValueError``
    catches it.
    """
