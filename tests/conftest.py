"""Shared fixtures for the kernel tests.

Contexts and key pairs are session-scoped: key generation is cheap, but
sharing keeps the suite fast and lets tests combine ciphertexts.

- ``default_ctx`` / ``default_keys``: xcloud's secure defaults (N = 4096), for
  precision claims and the known sizes of the wire format.
- ``small_ctx`` / ``small_keys``: ``CkksContext.insecure(log_n=10)`` (N = 1024),
  for fuzzing, property tests and cheap cases.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import xcloud


@pytest.fixture(scope="session")
def default_ctx() -> xcloud.CkksContext:
    return xcloud.CkksContext()


@pytest.fixture(scope="session")
def default_keys(default_ctx: xcloud.CkksContext) -> xcloud.KeySet:
    return default_ctx.keygen()


@pytest.fixture(scope="session")
def small_ctx() -> xcloud.CkksContext:
    return xcloud.CkksContext.insecure(log_n=10)


@pytest.fixture(scope="session")
def small_keys(small_ctx: xcloud.CkksContext) -> xcloud.KeySet:
    return small_ctx.keygen()


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A numpy generator seeded from the test's name: reproducible, distinct per test."""
    seed = int.from_bytes(hashlib.sha256(request.node.nodeid.encode()).digest()[:8], "little")
    return np.random.default_rng(seed)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Runs a module's tiny models on one torch thread (fastest, and no stalls on a busy 2-core machine)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def local_lrs(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The learning rate of every local training the simulation starts, in order (train_local is wrapped)."""
    import xcloud.fl.simulation as sim

    seen: list[float] = []
    real = sim.train_local

    def spy(model: Any, dataset: Any, cfg: Any, **kw: Any) -> Any:
        seen.append(cfg.lr)
        return real(model, dataset, cfg, **kw)

    monkeypatch.setattr(sim, "train_local", spy)
    return seen
