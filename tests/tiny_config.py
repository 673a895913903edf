"""The tiny federated configuration the end-to-end tests share: every code path in seconds on two cores.

Tests derive their variants with ``dataclasses.replace(TINY, ...)``.
"""

from __future__ import annotations

from xcloud.fl.config import RunConfig

TINY = RunConfig(
    clouds=3,
    rounds=2,
    local_steps=2,
    batch_size=8,
    notes_per_hospital=30,
    vocab_size=400,
    block_size=32,
    n_layer=1,
    n_head=2,
    n_embd=16,
    min_clients=2,
    dp_epsilon=50.0,
    # Plain FedAvg, as the tests were written for (xcloud run's default adds
    # SCAFFOLD and FedAvgM 0.5; the tests that want them say so).
    drift_correction="none",
    server_momentum=0.0,
    dp_batch_size=0,  # DP-SGD on batch_size, as the tests were written for (xcloud run's default: 128)
)
