"""Fast scalar draws for the text generator, buffered from a numpy Generator.

Generating a note takes a few dozen small random choices; calling numpy's
Generator once per choice costs microseconds each, so this draws uniforms and
normals in blocks and serves them one at a time. The sequence is a pure
function of the Generator's seed. Synthetic test data only: never key material.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

__all__ = ["Draw"]

T = TypeVar("T")

_BLOCK = 4096


class Draw:
    """Scalar uniform, normal and choice draws from a seeded numpy Generator."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._u: list[float] = []
        self._z: list[float] = []

    def uniform(self) -> float:
        """A float in [0, 1)."""
        if not self._u:
            self._u = self._rng.random(_BLOCK).tolist()
        return self._u.pop()

    def normal(self, mean: float, sd: float) -> float:
        """A draw from N(mean, sd**2)."""
        if not self._z:
            self._z = self._rng.standard_normal(_BLOCK).tolist()
        return mean + sd * self._z.pop()

    def index(self, n: int) -> int:
        """An int in [0, n), uniformly."""
        return min(int(self.uniform() * n), n - 1)

    def integer(self, low: int, high: int) -> int:
        """An int in [low, high], both ends included."""
        return low + self.index(high - low + 1)

    def pick(self, options: Sequence[T]) -> T:
        """One element of ``options``, uniformly."""
        return options[self.index(len(options))]

    def weighted(self, cumulative: Sequence[float]) -> int:
        """An index drawn with probabilities given by increasing cumulative weights."""
        i = bisect_right(cumulative, self.uniform() * cumulative[-1])
        return min(i, len(cumulative) - 1)

    def sample(self, options: Sequence[T], k: int) -> list[T]:
        """``min(k, len(options))`` distinct elements, in draw order (partial Fisher-Yates)."""
        pool = list(options)
        k = min(k, len(pool))
        for i in range(k):
            j = i + self.index(len(pool) - i)
            pool[i], pool[j] = pool[j], pool[i]
        return pool[:k]

    def chance(self, p: float) -> bool:
        """True with probability ``p``."""
        return self.uniform() < p
