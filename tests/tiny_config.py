"""The tiny federated configuration the end-to-end tests share: every code path in seconds on two cores.

Tests derive their variants with ``dataclasses.replace(TINY, ...)``.
"""

from __future__ import annotations

from xcloud.fl.config import PLAIN_FEDAVG, RunConfig

TINY = RunConfig(
    # Plain FedAvg on constant rates, DP-SGD on batch_size at 0.01 and 15% held out, as the tests were
    # written for (xcloud run's default adds SCAFFOLD, FedAvgM 0.5, a cosine decay, a DP batch of 256 at
    # 0.007 and holds out 2% of ten times the notes; the tests that want any of these say so).
    **PLAIN_FEDAVG,
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
)
