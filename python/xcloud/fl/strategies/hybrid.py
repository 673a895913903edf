"""Hybrid selective encryption (equation 4 as DESIGN.md reads it).

Wraps a weighting strategy: the same weights apply to the encrypted and the
plain half of every update; a sensitivity mask picks the encrypted tensors,
always including the token embedding and the output head.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xcloud.fl.layout import ParameterLayout
from xcloud.fl.protection import ProtectionPlan, selective_plan
from xcloud.fl.strategies.base import ClientReport, Strategy

__all__ = ["HybridEncryption"]


class HybridEncryption(Strategy):
    """Encrypts ``always`` plus further tensors up to ``fraction`` of the update.

    Parameters
    ----------
    base : Strategy
        The weighting rule (e.g. :class:`DynamicWeighting`).
    fraction : float
        Target encrypted fraction in [0, 1].
    always : sequence of str
        Tensors always encrypted (default: the token embedding and output head
        of :class:`xcloud.models.GPT`).
    """

    def __init__(
        self, base: Strategy, fraction: float = 0.0, always: Sequence[str] = ("wte.weight", "lm_head.weight")
    ) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"encrypted fraction must be in [0, 1], got {fraction}")
        self.base, self.fraction, self.always = base, fraction, tuple(always)
        self.encrypt = True
        self.name = f"hybrid({base.name})"

    def raw_weights(self, reports: Sequence[ClientReport]) -> np.ndarray:
        return self.base.raw_weights(reports)

    def bound(self, w: np.ndarray) -> np.ndarray:
        return self.base.bound(w)

    def plan(self, layout: ParameterLayout) -> ProtectionPlan:
        always = [n for n in self.always if n in layout.names]
        if len(always) != len(self.always):
            missing = sorted(set(self.always) - set(always))
            raise ValueError(f"hybrid encryption: the model has no parameters {missing}")
        return selective_plan(layout, self.fraction, always=always)

    def describe(self) -> str:
        return f"hybrid(fraction>={self.fraction}, always={list(self.always)}, weights={self.base.describe()})"
