"""Is what an observer sees of a ciphertext distinguishable from uniform randomness?

Under RLWE a fresh CKKS ciphertext ``(c0, c1) = (-a s + m + e, a)`` is
indistinguishable from a uniformly random pair; ``c1`` is expanded from a
seed, so the c0 residues are what travels. If the encryption works, every
residue modulo each prime ``q`` is uniform on ``[0, q)``, and so is every byte
of their packing. This module checks that with Pearson's chi-square test of
equal bin counts: residues into ``bins`` equal slices of ``[0, q)`` per prime,
raw bytes into their 256 values. The same byte test fails at once on plain
float32 updates, whose sign and exponent bits take few values: that contrast
is what a meter reading "chance" rests on.

A test at level ``alpha`` rejects a truly uniform source with probability
``alpha``; use the derandomised encryption entry points where a test must be
reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import chi2

__all__ = ["UniformityTest", "bytes_uniformity", "chi_square_uniform", "residue_uniformity"]


@dataclass(frozen=True)
class UniformityTest:
    """Result of a chi-square test of uniformity.

    Attributes
    ----------
    statistic : float
        Pearson's chi-square statistic (the largest over primes for residues).
    dof : int
        Degrees of freedom (bins - 1).
    p_value : float
        The smallest p-value over the tested groups.
    alpha : float
        Level of the test, Bonferroni-corrected over groups.
    samples : int
        Values tested.
    uniform : bool
        True when no group rejects uniformity at its level.
    """

    statistic: float
    dof: int
    p_value: float
    alpha: float
    samples: int
    uniform: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def chi_square_uniform(counts: np.ndarray) -> tuple[float, int, float]:
    """Pearson's chi-square test that ``counts`` come from equally likely bins: (statistic, dof, p-value).

    Raises
    ------
    ValueError
        If there are fewer than two bins, negative counts, or fewer than five
        expected values per bin (the test's usual validity condition).
    """
    c = np.asarray(counts, dtype=np.float64).ravel()
    if c.size < 2 or np.any(c < 0):
        raise ValueError("need at least two bins of non-negative counts")
    n = c.sum()
    expected = n / c.size
    if expected < 5:
        raise ValueError(f"too few samples for a chi-square test: {expected:.1f} expected per bin (need >= 5)")
    stat = float(((c - expected) ** 2 / expected).sum())
    dof = c.size - 1
    return stat, dof, float(chi2.sf(stat, dof))


def residue_uniformity(
    residues: np.ndarray, primes: Sequence[int], bins: int = 256, alpha: float = 0.001
) -> UniformityTest:
    """Tests the c0 residues of a ciphertext, prime by prime, for uniformity on ``[0, q)``.

    Parameters
    ----------
    residues : numpy.ndarray
        uint64 residues of shape (blocks, primes, N)
        (:meth:`xcloud.CiphertextBlocks.c0_view`).
    primes : sequence of int
        The moduli, one per residue row.
    bins : int
        Equal slices of ``[0, q)``.
    alpha : float
        Overall level; each prime is tested at ``alpha / len(primes)``.

    Raises
    ------
    ValueError
        For a shape that does not match ``primes``, an empty array, or a
        residue not below its prime.
    """
    r = np.asarray(residues)
    if r.ndim != 3 or r.size == 0:
        raise ValueError(f"residues must be a non-empty (blocks, primes, N) array, got shape {r.shape}")
    if r.shape[1] != len(primes):
        raise ValueError(f"residues have {r.shape[1]} prime rows but {len(primes)} primes were given")
    if not 0 < alpha < 1 or bins < 2:
        raise ValueError("alpha must be in (0, 1) and bins >= 2")
    level = alpha / len(primes)
    worst_p, worst_stat, dof = 1.0, 0.0, bins - 1
    for i, q in enumerate(primes):
        v = r[:, i, :].astype(np.uint64).ravel()
        if v.max() >= np.uint64(q):
            raise ValueError(f"a residue is not below its prime {q}")
        # bin = floor(v * bins / q), in floating point: q < 2^53 keeps it exact enough for a histogram.
        idx = np.minimum((v.astype(np.float64) * bins / float(q)).astype(np.int64), bins - 1)
        stat, dof, p = chi_square_uniform(np.bincount(idx, minlength=bins))
        if p < worst_p:
            worst_p, worst_stat = p, stat
        worst_stat = max(worst_stat, stat)
    return UniformityTest(worst_stat, dof, worst_p, alpha, int(r.size), bool(worst_p >= level))


def bytes_uniformity(data: bytes | bytearray | memoryview | np.ndarray, alpha: float = 0.001) -> UniformityTest:
    """Tests raw bytes for uniformity over their 256 values.

    Raises
    ------
    ValueError
        If there are too few bytes (fewer than 1,280).
    """
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")
    b = np.frombuffer(bytes(data) if not isinstance(data, np.ndarray) else data.tobytes(), dtype=np.uint8)
    if b.size == 0:
        raise ValueError("no bytes to test")
    stat, dof, p = chi_square_uniform(np.bincount(b, minlength=256))
    return UniformityTest(stat, dof, p, alpha, int(b.size), bool(p >= alpha))
