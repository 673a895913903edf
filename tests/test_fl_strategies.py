"""Weighting rules (equations 5 and 6) and protection plans (equation 4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xcloud.fl.config import RunConfig
from xcloud.fl.layout import ParameterLayout
from xcloud.fl.protection import selective_plan
from xcloud.fl.simulation import make_strategy
from xcloud.fl.strategies import ClientReport, DynamicWeighting, FedAvg, HybridEncryption, PrintedWeighting, cap_shares


def _reports(samples, losses, bandwidths):
    return [
        ClientReport(f"c{i}", n, loss, b)
        for i, (n, loss, b) in enumerate(zip(samples, losses, bandwidths, strict=True))
    ]


def test_fedavg_weights_are_sample_proportions():
    reports = _reports([100, 300], [1.0, 1.0], [10.0, 10.0])
    w = FedAvg().weights(reports)
    np.testing.assert_allclose(w, [0.25, 0.75])


def test_dynamic_weighting_favours_more_data_lower_loss_more_bandwidth():
    base = DynamicWeighting(alpha=0.5, beta=1.0, max_share=1.0)
    more_data = base.weights(_reports([100, 200], [2.0, 2.0], [100.0, 100.0]))
    lower_loss = base.weights(_reports([100, 100], [2.0, 1.0], [100.0, 100.0]))
    more_bw = base.weights(_reports([100, 100], [2.0, 2.0], [10.0, 1000.0]))
    assert more_data[1] > more_data[0]
    assert lower_loss[1] > lower_loss[0]
    assert more_bw[1] > more_bw[0]


def test_printed_formula_gives_more_weight_to_higher_loss_and_less_data():
    printed = PrintedWeighting(alpha=0.5)
    higher_loss = printed.weights(_reports([100, 100], [1.0, 3.0], [100.0, 100.0]))
    less_data = printed.weights(_reports([300, 100], [1.0, 1.0], [100.0, 100.0]))
    assert higher_loss[1] > higher_loss[0]
    assert less_data[1] > less_data[0]


def test_xcloud_default_weights_favour_bandwidth_but_mildly():
    # The default run's four links (1000 / 500 / 100 / 50 Mbit/s), equal data and loss: bandwidth^0.1 keeps the
    # order but gives the slowest cloud at least 0.2 of the weight (bandwidth^0.5 gave it 0.10; README).
    cfg = RunConfig(method="xcloud")
    strategy = make_strategy(cfg)
    w = strategy.weights(_reports([2550] * 4, [3.0] * 4, [1000.0, 500.0, 100.0, 50.0]))
    assert list(w) == sorted(w, reverse=True)
    assert w.min() >= 0.2 and w.max() <= 0.3
    np.testing.assert_allclose(w.sum(), 1.0)
    assert cfg.weight_alpha == 0.1


def test_dynamic_weighting_is_bounded():
    w = DynamicWeighting(max_share=0.4).weights(_reports([10_000, 10, 10, 10], [1.0] * 4, [100.0] * 4))
    assert w.max() <= 0.4 + 1e-12
    assert w.sum() == pytest.approx(1.0)


def test_cap_shares_falls_back_to_uniform_when_cap_is_too_small():
    w = cap_shares(np.array([5.0, 1.0, 1.0]), max_share=0.1)
    np.testing.assert_allclose(w, [1 / 3] * 3)


@pytest.mark.parametrize(
    "reports",
    [[], _reports([0, 10], [1.0, 1.0], [1.0, 1.0]), _reports([10, 10], [float("nan"), 1.0], [1.0, 1.0])],
)
def test_dynamic_weighting_rejects_bad_reports(reports):
    with pytest.raises(ValueError):
        DynamicWeighting().weights(reports)


def _layout():
    state = {
        "wte.weight": torch.zeros(50, 8),
        "h.0.w": torch.zeros(8, 8),
        "h.1.w": torch.zeros(8, 8),
        "lm_head.weight": torch.zeros(50, 8),
    }
    return ParameterLayout.from_state(state)


def test_hybrid_plan_always_encrypts_embedding_and_head():
    layout = _layout()
    plan = HybridEncryption(FedAvg(), fraction=0.0).plan(layout)
    mask = plan.mask()
    offsets = layout.offsets()
    assert set(plan.encrypted) == {"wte.weight", "lm_head.weight"}
    a, b = offsets["wte.weight"]
    assert mask[a:b].all()
    a, b = offsets["h.0.w"]
    assert not mask[a:b].any()


def test_encrypted_fraction_knob_is_monotone_and_reaches_everything():
    layout = _layout()
    fractions = [selective_plan(layout, f).fraction for f in (0.0, 0.1, 0.5, 0.9, 1.0)]
    assert fractions == sorted(fractions)
    assert fractions[0] == 0.0
    assert fractions[-1] == 1.0
    assert selective_plan(layout, 0.1).fraction >= 0.1


def test_plan_digest_binds_layout_and_names():
    layout = _layout()
    a = selective_plan(layout, 0.0, always=["wte.weight"])
    b = selective_plan(layout, 0.0, always=["lm_head.weight"])
    assert a.digest() != b.digest()


@pytest.mark.parametrize("fraction", [-0.1, 1.5, float("nan")])
def test_bad_fraction_is_rejected(fraction):
    with pytest.raises(ValueError):
        selective_plan(_layout(), fraction)


def test_layout_round_trip_and_shape_check():
    state = {"a": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.ones(4)}
    layout = ParameterLayout.from_state(state)
    vec = layout.flatten(state)
    back = layout.unflatten(vec, state)
    assert torch.equal(back["a"], state["a"])
    with pytest.raises(ValueError):
        layout.flatten({"a": torch.zeros(3, 2), "b": torch.ones(4)})


def test_dynamic_weights_keep_max_share_after_the_staleness_discount():
    reports = [ClientReport("a", 500, 1.0)] + [ClientReport(c, 100, 1.0, staleness=3) for c in "bcd"]
    w = DynamicWeighting(alpha=0.0, beta=0.0, max_share=0.5).weights(reports)
    assert w.sum() == pytest.approx(1.0)
    assert w.max() <= 0.5 + 1e-12
    assert w[1] == pytest.approx(w[2]) == pytest.approx(w[3])
