"""FedAvg: weights proportional to the number of training samples (McMahan et al., 2017)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xcloud.fl.strategies.base import ClientReport, Strategy

__all__ = ["FedAvg", "UniformWeights"]


class FedAvg(Strategy):
    """w_k = |D_k| / sum_j |D_j|; with ``encrypt`` the whole update is encrypted (HE-FL)."""

    def __init__(self, encrypt: bool = False) -> None:
        self.encrypt = encrypt
        self.name = "fedavg+he" if encrypt else "fedavg"

    def raw_weights(self, reports: Sequence[ClientReport]) -> np.ndarray:
        return np.array([max(r.num_samples, 0) for r in reports], dtype=np.float64)


class UniformWeights(Strategy):
    """w_k = 1 / K: the weighting client-level DP is calibrated for (each client's influence is bounded equally)."""

    def __init__(self, encrypt: bool = False) -> None:
        self.encrypt = encrypt
        self.name = "uniform+he" if encrypt else "uniform"

    def raw_weights(self, reports: Sequence[ClientReport]) -> np.ndarray:
        return np.ones(len(reports), dtype=np.float64)
