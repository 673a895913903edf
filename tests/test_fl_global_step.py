"""The global step every cloud applies to the decrypted aggregate (xcloud.fl.global_step)."""

from __future__ import annotations

import numpy as np
import pytest

from xcloud.fl.config import load_config
from xcloud.fl.global_step import GlobalOptimizer, GlobalStepConfig, global_step_config


def _vectors(n: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal(n).astype(np.float32) * s for s in (1.0, 0.01, 0.02))  # type: ignore[return-value]


def test_sgd_with_unit_lr_and_no_momentum_is_plain_fedavg():
    x, d1, _ = _vectors()
    opt = GlobalOptimizer(GlobalStepConfig(), x.size)
    np.testing.assert_array_equal(opt.step(x, d1), x + d1)


def test_sgd_momentum_follows_fedavgm():
    x, d1, d2 = _vectors()
    opt = GlobalOptimizer(GlobalStepConfig(lr=0.5, beta1=0.9), x.size)
    x1 = opt.step(x, d1)
    x2 = opt.step(x1, d2)
    v1 = d1
    v2 = np.float32(0.9) * v1 + d2
    np.testing.assert_allclose(x1, x + 0.5 * v1, rtol=1e-6)
    np.testing.assert_allclose(x2, x1 + 0.5 * v2, rtol=1e-6)


def test_adam_matches_a_float64_reference():
    x, d1, d2 = _vectors()
    c = GlobalStepConfig(optimizer="adam", lr=0.01, beta1=0.9, beta2=0.99, tau=1e-3)
    opt = GlobalOptimizer(c, x.size)
    got = opt.step(opt.step(x, d1), d2)
    m = v = np.zeros(x.size)
    ref = x.astype(np.float64)
    for d in (d1.astype(np.float64), d2.astype(np.float64)):
        m = 0.9 * m + 0.1 * d
        v = 0.99 * v + 0.01 * d * d
        ref = ref + 0.01 * m / (np.sqrt(v) + 1e-3)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-7)


def test_adam_restores_the_step_of_a_coordinate_only_one_cloud_moves():
    """Averaging over 4 clouds divides a one-cloud coordinate by 4; the adam step does not care about its scale."""
    x = np.zeros(2, dtype=np.float32)
    shared = np.array([0.04, 0.01], dtype=np.float32)  # everyone moves coordinate 0, one cloud in four coordinate 1
    opt = GlobalOptimizer(GlobalStepConfig(optimizer="adam", lr=0.01, beta1=0.0, beta2=0.0, tau=1e-6), 2)
    step = opt.step(x, shared)
    np.testing.assert_allclose(step, [0.01, 0.01], rtol=1e-3)


def test_state_round_trip_continues_identically():
    x, d1, d2 = _vectors()
    c = GlobalStepConfig(optimizer="adam", lr=0.01, beta1=0.9)
    a = GlobalOptimizer(c, x.size)
    x1 = a.step(x, d1)
    b = GlobalOptimizer(c, x.size)
    b.load_state(a.state())
    np.testing.assert_array_equal(a.step(x1, d2), b.step(x1, d2))
    with pytest.raises(ValueError, match="does not match"):
        GlobalOptimizer(GlobalStepConfig(), x.size).load_state(a.state())  # sgd has no second moment


def test_bad_input_changes_nothing():
    x, d1, _ = _vectors()
    opt = GlobalOptimizer(GlobalStepConfig(optimizer="adam", lr=0.01), x.size)
    before = opt.state()
    bad = d1.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="not finite"):
        opt.step(x, bad)
    with pytest.raises(ValueError, match="values"):
        opt.step(x[:-1], d1[:-1])
    after = opt.state()
    for k in before:
        np.testing.assert_array_equal(before[k], after[k])


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"server_optimizer": "lamb"}, "server_optimizer"),
        ({"server_lr": 0.0}, "server_lr"),
        ({"server_momentum": 1.0}, "server_momentum"),
        ({"server_beta2": -0.1}, "server_beta2"),
        ({"server_tau": 0.0}, "server_tau"),
    ],
)
def test_run_config_refuses_bad_global_step_settings(overrides, match):
    with pytest.raises(ValueError, match=match):
        load_config(None, overrides)


def test_run_config_maps_to_the_global_step():
    cfg = load_config(None, {"server_optimizer": "adam", "server_lr": 0.02, "server_momentum": 0.8})
    assert global_step_config(cfg) == GlobalStepConfig(optimizer="adam", lr=0.02, beta1=0.8, beta2=0.99, tau=1e-3)


def test_bytes_round_trip_continues_identically():
    x, d1, d2 = _vectors()
    c = GlobalStepConfig(optimizer="adam", lr=0.01, beta1=0.9)
    a = GlobalOptimizer(c, x.size)
    x1 = a.step(x, d1)
    raw = a.to_bytes()
    assert len(raw) == a.state_nbytes == 4 * 2 * x.size
    b = GlobalOptimizer(c, x.size)
    b.load_bytes(raw)
    np.testing.assert_array_equal(a.step(x1, d2), b.step(x1, d2))
    with pytest.raises(ValueError, match="does not match"):
        b.load_bytes(raw[:-4])
    assert GlobalOptimizer(GlobalStepConfig(), x.size).state_nbytes == 4 * x.size  # sgd keeps no second moment
