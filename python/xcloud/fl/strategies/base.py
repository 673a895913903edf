"""The strategy interface: how clients are weighted, and what is encrypted."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xcloud.fl.layout import ParameterLayout
from xcloud.fl.protection import ProtectionPlan, selective_plan

__all__ = ["ClientReport", "Strategy", "staleness_discount"]


@dataclass(frozen=True)
class ClientReport:
    """What the aggregator knows about a client's update (all public metadata)."""

    client_id: str
    num_samples: int
    loss: float
    bandwidth_mbps: float = 100.0
    staleness: int = 0


def staleness_discount(staleness: int, exponent: float) -> float:
    """FedBuff's polynomial staleness discount ``(1 + s) ** -exponent`` (Nguyen et al., 2022).

    An update computed from a global model ``s`` versions old counts this
    much relative to a fresh one (equation 8 as DESIGN.md reads it).

    Raises
    ------
    ValueError
        If ``staleness`` is negative or ``exponent`` is negative or not finite.
    """
    if staleness < 0:
        raise ValueError(f"staleness must be >= 0, got {staleness}")
    if not (np.isfinite(exponent) and exponent >= 0):
        raise ValueError(f"staleness exponent must be finite and >= 0, got {exponent}")
    return float((1.0 + staleness) ** -exponent)


class Strategy(ABC):
    """Aggregation weights (equations 3, 5, 6, 8) and the protection plan of a round.

    ``staleness_exponent`` discounts stale updates (asynchronous or carried
    ones) by :func:`staleness_discount` after the rule's own weights; fresh
    updates (staleness 0) are unaffected.
    """

    name: str = "strategy"
    encrypt: bool = False
    staleness_exponent: float = 0.5

    @abstractmethod
    def raw_weights(self, reports: Sequence[ClientReport]) -> np.ndarray:
        """Unnormalised non-negative weights, one per report."""

    def weights(self, reports: Sequence[ClientReport]) -> np.ndarray:
        """Normalised weights (sum 1).

        Raises
        ------
        ValueError
            If there are no reports or the weights are not finite and positive in sum.
        """
        if not reports:
            raise ValueError("no client reports to weight")
        w = np.asarray(self.raw_weights(reports), dtype=np.float64)
        if any(r.staleness for r in reports) and w.shape == (len(reports),):
            w = w * np.array([staleness_discount(r.staleness, self.staleness_exponent) for r in reports])
            if np.all(np.isfinite(w)) and w.sum() > 0:
                w = self.bound(w / w.sum())
        if w.shape != (len(reports),) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(f"{self.name}: invalid weights {w!r}")
        return w / w.sum()

    def bound(self, w: np.ndarray) -> np.ndarray:
        """Re-applies the rule's bounds to normalised weights after the staleness discount (default: none)."""
        return w

    def plan(self, layout: ParameterLayout) -> ProtectionPlan:
        """Everything encrypted when ``encrypt`` is set, else nothing."""
        return selective_plan(layout, 1.0 if self.encrypt else 0.0)

    def describe(self) -> str:
        return self.name
