"""Unpredictable randomness for differential privacy, from the kernel's stream cipher.

DP noise and the Poisson choice of each DP-SGD step's records must be
unpredictable to everyone but the cloud that draws them: whoever can replay
the noise can subtract it, and whoever knows which steps used a record voids
the amplification by subsampling that the accountant counts on. PyTorch's
CPU generator (a Mersenne Twister) is not a cryptographic generator, so
xcloud draws both from :class:`xcloud._native.RealSampler`: AES-256-CTR
under a 32-byte key from the OS CSPRNG (``os.urandom``), turned into uniform
and Gaussian reals by branch-free arithmetic in the kernel
(``cpp/src/ring/real_sampler.h``). Each Gaussian value is the sum of four
independent Box-Muller normals over 2, the defence against floating-point
attacks on Gaussian samplers that Opacus's ``secure_mode`` also takes.

Tests and resume checks may derive the key from a label and a seed
(:meth:`DPRandom.derived`); such noise is reproducible, and removable by
anyone who knows the seed, so production code never does.
"""

from __future__ import annotations

import hashlib
import math
import operator
from collections.abc import Sequence

import numpy as np
import torch

from xcloud import _native

__all__ = ["DPRandom"]


class DPRandom:
    """A stream of uniform and Gaussian values for DP, from AES-256-CTR.

    Parameters
    ----------
    key : bytes, optional
        32 bytes. None (production): the kernel draws a fresh key from the OS
        CSPRNG itself, so the key never exists in Python's memory.

    Raises
    ------
    TypeError
        If ``key`` is not bytes.
    ValueError
        If ``key`` is not 32 bytes.

    Notes
    -----
    Consecutive calls continue one keystream; Gaussian values are made in
    pairs, so calls of even sizes give the values one larger call would (an
    odd count drops its last pair's second value). Safe to share between
    threads (the kernel serialises the calls).
    """

    def __init__(self, key: bytes | None = None) -> None:
        if key is None:
            self._sampler = _native.RealSampler()
            return
        if not isinstance(key, bytes):
            raise TypeError(f"a DPRandom key must be bytes, got {type(key).__name__}")
        if len(key) != 32:
            raise ValueError("a DPRandom key must be exactly 32 bytes")
        self._sampler = _native.RealSampler(key)

    @classmethod
    def derived(cls, label: str, *parts: object) -> DPRandom:
        """A reproducible stream: the key is SHA-256 of the label and parts. Tests only."""
        text = ":".join([label, *(repr(p) for p in parts)])
        return cls(hashlib.sha256(text.encode("utf-8")).digest())

    @property
    def bytes_drawn(self) -> int:
        """Keystream bytes used so far (8 per uniform value, 64 per two Gaussian ones)."""
        return int(self._sampler.bytes_drawn)

    def gaussian(
        self,
        shape: Sequence[int] | torch.Size,
        std: float,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> torch.Tensor:
        """Gaussian noise of mean 0 and standard deviation ``std``.

        Drawn in float64 on the CPU and then converted to ``dtype`` on ``device``.

        Raises
        ------
        ValueError
            If ``std`` is negative or not finite, or a dimension is negative.
        """
        dims = tuple(operator.index(d) for d in shape)
        if any(d < 0 for d in dims):
            raise ValueError(f"negative dimension in shape {dims}")
        if not (np.isfinite(std) and std >= 0):
            raise ValueError(f"std must be finite and non-negative, got {std}")
        values = self._sampler.gaussian(math.prod(dims), float(std))  # Python integers: no overflow
        return torch.from_numpy(values).reshape(dims).to(dtype=dtype, device=device)

    def uniform(self, n: int) -> torch.Tensor:
        """``n`` uniform float64 values in [0, 1), on the grid 2^-52."""
        n = operator.index(n)
        if n < 0:
            raise ValueError(f"n must be non-negative, got {n}")
        return torch.from_numpy(self._sampler.uniform(int(n)))

    def bernoulli(self, n: int, rate: float) -> torch.Tensor:
        """``n`` independent draws that are True with probability ``rate`` (within 2^-52).

        Raises
        ------
        ValueError
            If ``rate`` is not in [0, 1] or ``n`` is negative.
        """
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be in [0, 1], got {rate}")
        return self.uniform(n) < rate
