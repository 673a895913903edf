"""The global step: how every cloud turns the decrypted aggregate into the next global model.

The server only adds (encrypted) updates; it never holds the plaintext of the
aggregate. Every cloud decrypts the same aggregate delta and applies the same
deterministic rule to the same global model, so all clouds stay bit-identical
without the server ever seeing plaintext weights. The rule is the "server
optimizer" of adaptive federated optimisation (Reddi et al., "Adaptive
Federated Optimization", ICLR 2021), treating the aggregate delta as a
pseudo-gradient step:

- ``sgd``: FedAvgM (Hsu et al., 2019). ``v <- beta1 * v + delta``,
  ``x <- x + lr * v``; with ``beta1 = 0`` and ``lr = 1`` this is plain FedAvg.
- ``adam``: FedAdam. ``m <- beta1 * m + (1 - beta1) * delta``,
  ``v <- beta2 * v + (1 - beta2) * delta^2``, ``x <- x + lr * m / (sqrt(v) + tau)``.
  The per-coordinate normalisation restores the step of coordinates that only
  some clouds move (rows of the embedding for words one hospital uses): plain
  averaging divides such a row's update by the number of clouds.

All arithmetic is float32 numpy, in a fixed order, so the simulation and the
Flower nodes compute the same bits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["GLOBAL_OPTIMIZERS", "GlobalOptimizer", "GlobalStepConfig", "global_step_config"]

GLOBAL_OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class GlobalStepConfig:
    """Settings of the global step (see the module docstring)."""

    optimizer: str = "sgd"
    lr: float = 1.0
    beta1: float = 0.0
    beta2: float = 0.99
    tau: float = 1e-3

    def __post_init__(self) -> None:
        if self.optimizer not in GLOBAL_OPTIMIZERS:
            raise ValueError(f"server_optimizer must be one of {', '.join(GLOBAL_OPTIMIZERS)}, got {self.optimizer!r}")
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"server_lr must be finite and > 0, got {self.lr!r}")
        if not 0.0 <= self.beta1 < 1.0 or not 0.0 <= self.beta2 < 1.0:
            raise ValueError("server_momentum (beta1) and server_beta2 must be in [0, 1)")
        if not (np.isfinite(self.tau) and self.tau > 0):
            raise ValueError(f"server_tau must be finite and > 0, got {self.tau!r}")


class GlobalOptimizer:
    """The state of the global step over a flat float32 parameter vector of ``size`` values."""

    def __init__(self, config: GlobalStepConfig, size: int) -> None:
        self.config = config
        self.size = int(size)
        self.first: np.ndarray = np.zeros(self.size, dtype=np.float32)  # sgd: velocity; adam: first moment
        self.second: np.ndarray = np.zeros(self.size if config.optimizer == "adam" else 0, dtype=np.float32)

    def step(self, params: np.ndarray, delta: np.ndarray) -> np.ndarray:
        """Returns the next global parameters from the current ones and the aggregate delta.

        Raises
        ------
        ValueError
            If a vector has the wrong size or the delta is not finite (nothing is changed then).
        """
        params = np.asarray(params, dtype=np.float32)
        delta = np.asarray(delta, dtype=np.float32)
        if params.shape != (self.size,) or delta.shape != (self.size,):
            raise ValueError(f"global step expects vectors of {self.size} values, got {params.shape} and {delta.shape}")
        if not np.isfinite(delta).all():
            raise ValueError("the aggregate delta is not finite")
        c = self.config
        f32 = np.float32
        if c.optimizer == "sgd":
            self.first = f32(c.beta1) * self.first + delta
            return params + f32(c.lr) * self.first
        self.first = f32(c.beta1) * self.first + f32(1.0 - c.beta1) * delta
        self.second = f32(c.beta2) * self.second + f32(1.0 - c.beta2) * (delta * delta)
        return params + f32(c.lr) * self.first / (np.sqrt(self.second) + f32(c.tau))

    @property
    def state_nbytes(self) -> int:
        """Size of :meth:`to_bytes`'s output."""
        return 4 * (self.first.size + self.second.size)

    def to_bytes(self) -> bytes:
        """The optimizer state as raw float32 values: the first moment, then the second."""
        return self.first.astype(np.float32).tobytes() + self.second.astype(np.float32).tobytes()

    def load_bytes(self, raw: bytes) -> None:
        """Restores :meth:`to_bytes`'s output.

        Raises
        ------
        ValueError
            If ``raw`` does not have this optimizer's size.
        """
        if len(raw) != self.state_nbytes:
            raise ValueError("the stored global step state does not match the run")
        values = np.frombuffer(raw, dtype=np.float32)
        self.load_state({"first": values[: self.first.size], "second": values[self.first.size :]})

    def state(self) -> dict[str, np.ndarray]:
        """The optimizer state, for a checkpoint (copies)."""
        return {"first": self.first.copy(), "second": self.second.copy()}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restores :meth:`state`'s output.

        Raises
        ------
        ValueError
            If the arrays do not fit this optimizer.
        """
        first = np.asarray(state["first"], dtype=np.float32)
        second = np.asarray(state["second"], dtype=np.float32)
        if first.shape != self.first.shape or second.shape != self.second.shape:
            raise ValueError("global optimizer state does not match the model or the optimizer")
        self.first, self.second = first.copy(), second.copy()


def global_step_config(cfg: Any) -> GlobalStepConfig:
    """The global step of a run configuration (the ``server_*`` fields of :class:`~xcloud.fl.config.RunConfig`).

    Raises
    ------
    ValueError
        If a setting is out of range.
    """
    return GlobalStepConfig(
        optimizer=cfg.server_optimizer,
        lr=cfg.server_lr,
        beta1=cfg.server_momentum,
        beta2=cfg.server_beta2,
        tau=cfg.server_tau,
    )
