"""A seeded train/validation split of a client's note indices."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["split_train_val"]


def split_train_val(indices: ArrayLike, val_fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split ``indices`` at random into train and validation parts.

    The validation part has ``round(val_fraction * n)`` elements, but at
    least one and at most ``n - 1`` when ``val_fraction > 0`` and ``n >= 2``,
    so both parts are usable; with ``n == 1`` or ``val_fraction == 0``
    everything is training data. Whole notes go to one side, never split.

    Parameters
    ----------
    indices : ArrayLike
        One-dimensional integer indices (e.g. a client's partition).
    val_fraction : float
        In ``[0, 1)``.
    seed : int
        Non-negative seed of numpy's Generator.

    Returns
    -------
    tuple[np.ndarray, np.ndarray]
        ``(train, val)``, sorted int64 arrays, disjoint, together equal to ``indices``.

    Raises
    ------
    ValueError
        If ``indices`` is not a 1-D integer array, ``val_fraction`` is outside
        ``[0, 1)`` or ``seed`` is negative.
    """
    idx = np.asarray(indices)
    if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise ValueError(f"indices must be a 1-D integer array, got shape {idx.shape} and dtype {idx.dtype}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    idx = idx.astype(np.int64)
    n = idx.size
    n_val = round(val_fraction * n)
    if val_fraction > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    elif n < 2:
        n_val = 0
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(idx[order[n_val:]]), np.sort(idx[order[:n_val]])
