"""Dynamic weighting (equations 5 and 6), as DESIGN.md reads them.

The paper's text says clients with lower loss, more data and more bandwidth
get more weight; the printed formula w_k = L_k / (|D_k| B_k^alpha) does the
opposite. :class:`DynamicWeighting` implements the intent:

    w_k  proportional to  |D_k| * (B_k / median B)^alpha * (median L / L_k)^beta

normalised, then capped at ``max_share`` (the excess is redistributed to the
others) so no client dominates. :class:`PrintedWeighting` is the formula as
printed, kept under its own name for comparison.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xcloud.fl.strategies.base import ClientReport, Strategy

__all__ = ["DEFAULT_ALPHA", "DEFAULT_BETA", "DEFAULT_MAX_SHARE", "DynamicWeighting", "PrintedWeighting", "cap_shares"]

# Defaults of DynamicWeighting, which xcloud run's --weight-alpha, --weight-beta and --max-share share.
DEFAULT_ALPHA = 0.1
DEFAULT_BETA = 1.0
DEFAULT_MAX_SHARE = 0.5


def cap_shares(w: np.ndarray, max_share: float) -> np.ndarray:
    """Normalises ``w`` and caps every share at ``max_share``, redistributing the excess proportionally.

    If ``max_share * len(w) < 1`` the cap is raised to ``1 / len(w)`` (uniform).
    """
    w = np.asarray(w, dtype=np.float64)
    w = w / w.sum()
    cap = max(max_share, 1.0 / len(w))
    for _ in range(len(w)):
        over = w > cap + 1e-15
        if not over.any():
            break
        excess = float((w[over] - cap).sum())
        w[over] = cap
        free = ~over & (w < cap)
        if not free.any():
            break
        w[free] += excess * w[free] / w[free].sum()
    return w / w.sum()


class DynamicWeighting(Strategy):
    """Weights from data size, bandwidth and loss, favouring more data, more bandwidth and lower loss.

    Parameters
    ----------
    alpha : float
        Exponent of the relative bandwidth (0 ignores bandwidth). 0.1, as
        ``xcloud run``: at 0.5 the clouds on slow links got so little weight
        that, on non-IID clouds under record-level DP, the model's perplexity
        doubled (README).
    beta : float
        Exponent of the inverse relative loss (0 ignores loss).
    max_share : float
        No client gets more than this share (bounded influence).
    encrypt : bool
        Encrypt the whole update (a hybrid plan is added by :class:`HybridEncryption`).
    """

    def __init__(
        self,
        alpha: float = DEFAULT_ALPHA,
        beta: float = DEFAULT_BETA,
        max_share: float = DEFAULT_MAX_SHARE,
        encrypt: bool = False,
    ) -> None:
        if alpha < 0 or beta < 0:
            raise ValueError("alpha and beta must be non-negative")
        if not 0 < max_share <= 1:
            raise ValueError("max_share must be in (0, 1]")
        self.alpha, self.beta, self.max_share, self.encrypt = alpha, beta, max_share, encrypt
        self.name = "dynamic"

    def raw_weights(self, reports: Sequence[ClientReport]) -> np.ndarray:
        n = np.array([r.num_samples for r in reports], dtype=np.float64)
        b = np.array([r.bandwidth_mbps for r in reports], dtype=np.float64)
        loss = np.array([r.loss for r in reports], dtype=np.float64)
        if np.any(n <= 0) or np.any(b <= 0) or np.any(~np.isfinite(loss)) or np.any(loss <= 0):
            raise ValueError("dynamic weighting needs positive sample counts, bandwidths and finite positive losses")
        raw = n * (b / np.median(b)) ** self.alpha * (np.median(loss) / loss) ** self.beta
        return cap_shares(raw, self.max_share)

    def bound(self, w: np.ndarray) -> np.ndarray:
        """Keeps ``max_share`` after stale updates were discounted."""
        return cap_shares(w, self.max_share)

    def describe(self) -> str:
        return f"dynamic(alpha={self.alpha}, beta={self.beta}, max_share={self.max_share})"


class PrintedWeighting(Strategy):
    """The paper's equation 5 as printed: w_k = L_k / (|D_k| * B_k^alpha).

    It gives MORE weight to higher loss, less data and less bandwidth; kept
    only to compare against :class:`DynamicWeighting`.
    """

    def __init__(self, alpha: float = 0.5, encrypt: bool = False) -> None:
        self.alpha, self.encrypt = alpha, encrypt
        self.name = "printed-eq5"

    def raw_weights(self, reports: Sequence[ClientReport]) -> np.ndarray:
        n = np.array([r.num_samples for r in reports], dtype=np.float64)
        b = np.array([r.bandwidth_mbps for r in reports], dtype=np.float64)
        loss = np.array([r.loss for r in reports], dtype=np.float64)
        if np.any(n <= 0) or np.any(b <= 0) or np.any(~np.isfinite(loss)) or np.any(loss < 0):
            raise ValueError("the printed formula needs positive sample counts and bandwidths and finite losses")
        return loss / (n * b**self.alpha)
