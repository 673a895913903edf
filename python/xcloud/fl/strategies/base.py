"""The strategy interface: how clients are weighted, and what is encrypted."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xcloud.fl.layout import ParameterLayout
from xcloud.fl.protection import ProtectionPlan, selective_plan

__all__ = ["ClientReport", "Strategy"]


@dataclass(frozen=True)
class ClientReport:
    """What the aggregator knows about a client's update (all public metadata)."""

    client_id: str
    num_samples: int
    loss: float
    bandwidth_mbps: float = 100.0
    staleness: int = 0


class Strategy(ABC):
    """Aggregation weights (equations 3, 5, 6) and the protection plan of a round."""

    name: str = "strategy"
    encrypt: bool = False

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
        if w.shape != (len(reports),) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(f"{self.name}: invalid weights {w!r}")
        return w / w.sum()

    def plan(self, layout: ParameterLayout) -> ProtectionPlan:
        """Everything encrypted when ``encrypt`` is set, else nothing."""
        return selective_plan(layout, 1.0 if self.encrypt else 0.0)

    def describe(self) -> str:
        return self.name
