"""The round-wise learning-rate schedule: its factors, its validation and that every method trains with it."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from tiny_config import TINY

from xcloud.fl.config import RunConfig
from xcloud.fl.schedule import LR_SCHEDULES, lr_factor
from xcloud.fl.simulation import FederatedRun


def test_constant_is_one_in_every_round():
    assert [lr_factor("constant", r, 5, 0.1) for r in range(7)] == [1.0] * 7


def test_cosine_decays_from_one_towards_the_final_factor():
    f = [lr_factor("cosine", r, 30, 0.1) for r in range(30)]
    assert f[0] == 1.0
    assert all(a > b for a, b in zip(f, f[1:], strict=False))  # strictly decreasing
    assert f[15] == pytest.approx(0.55)  # half-way: the midpoint of 1 and 0.1
    assert 0.1 < f[-1] < 0.11  # the last round trains just above the final factor
    # Half a cosine: final + (1 - final) * (1 + cos(pi r / R)) / 2.
    assert f[7] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 7 / 30)))
    assert lr_factor("cosine", 40, 30, 0.1) == f[-1]  # beyond the run's rounds: the last factor
    assert lr_factor("cosine", 0, 1, 0.1) == 1.0  # a one-round run trains at the full rate
    assert [lr_factor("cosine", r, 4, 1.0) for r in range(4)] == [1.0] * 4  # final 1: constant


def test_a_partial_decay_holds_the_rates_then_decays_over_the_last_rounds():
    f = [lr_factor("cosine", r, 30, 0.1, 0.5) for r in range(30)]
    assert f[:16] == [1.0] * 16  # constant through round 15 (the decay starts at factor 1 there)
    assert all(a > b for a, b in zip(f[15:], f[16:], strict=False))
    assert f[16] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 15)))
    assert 0.1 < f[-1] < 0.12
    # At least one decaying round, and the first of them trains at the full rate; decay 1 is the default.
    assert [lr_factor("cosine", r, 10, 0.1, 0.01) for r in range(10)] == [1.0] * 10
    whole = [lr_factor("cosine", r, 30, 0.1, 1.0) for r in range(30)]
    assert whole == [lr_factor("cosine", r, 30, 0.1) for r in range(30)]


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("linear", 0, 5, 0.1), "lr_schedule"),
        (("cosine", 0, 0, 0.1), "rounds >= 1"),
        (("cosine", -1, 5, 0.1), "round_id >= 0"),
        (("cosine", 0, 5, 1.5), "lr_final"),
        (("cosine", 0, 5, -0.1), "lr_final"),
        (("cosine", 0, 5, 0.1, 0.0), "lr_decay"),
        (("cosine", 0, 5, 0.1, 1.5), "lr_decay"),
    ],
)
def test_bad_schedule_arguments_are_refused(args, match):
    with pytest.raises(ValueError, match=match):
        lr_factor(*args)


def test_the_config_refuses_an_unknown_schedule_or_final_factor():
    assert LR_SCHEDULES == ("constant", "cosine")
    with pytest.raises(ValueError, match="lr_schedule must be one of constant, cosine"):
        replace(TINY, lr_schedule="step").validate()
    with pytest.raises(ValueError, match=r"lr_final must be in \[0, 1\]"):
        replace(TINY, lr_final=2.0).validate()
    with pytest.raises(ValueError, match=r"lr_decay must be in \(0, 1\]"):
        replace(TINY, lr_decay=0.0).validate()
    with pytest.raises(ValueError, match=r"dp_lr_final must be in \[0, 1\]"):
        replace(TINY, dp_lr_final=1.5).validate()
    assert RunConfig().dp_lr_final == 0.1 and RunConfig().lr_final == 0.02  # DP-SGD keeps more of its rate
    replace(TINY, lr_schedule="cosine", dp_lr_final=0.0).validate()
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match=r"dp_lr_decay must be in \(0, 1\]"):
            replace(TINY, dp_lr_decay=bad).validate()
    assert (RunConfig().lr_decay, RunConfig().dp_lr_decay) == (0.7, 0.5)  # DP-SGD decays later
    replace(TINY, dp_lr_decay=-1.0).validate()
    replace(TINY, lr_schedule="cosine", lr_final=0.0, lr_decay=0.5).validate()


@pytest.mark.parametrize(
    ("method", "base"),
    [("fedavg", "lr"), ("dp", "dp_lr"), ("xcloud", "dp_lr"), ("centralized", "lr")],
)
def test_every_method_trains_each_round_at_the_scheduled_rate(method, base, tmp_path, local_lrs):
    """What reaches local training is the base rate (lr, or dp_lr under DP-SGD) times the round's factor."""
    seen = local_lrs
    cfg = replace(  # dp_lr_final and dp_lr_decay negative: DP-SGD follows lr_final and lr_decay as well
        TINY,
        method=method,
        rounds=3,
        lr=0.002,
        dp_lr=0.02,
        lr_schedule="cosine",
        lr_final=0.25,
        dp_lr_final=-1.0,
        lr_decay=0.7,
        dp_lr_decay=-1.0,
    )
    run = FederatedRun(cfg, tmp_path)
    per_round = 1 if method == "centralized" else cfg.clouds
    for r in range(cfg.rounds):
        run.run_round(r)
        assert len(seen) == per_round * (r + 1)
        expected = getattr(cfg, base) * lr_factor("cosine", r, 3, 0.25, 0.7)  # 1, 1, then 0.625
        np.testing.assert_allclose(seen[-per_round:], [expected] * per_round, rtol=1e-12)
    assert seen[0] > seen[-1]


@pytest.mark.parametrize(
    ("method", "base", "final", "decay"),
    [
        ("fedavg", "lr", 0.25, 0.5),
        ("dp", "dp_lr", 0.6, 1.0),
        ("xcloud", "dp_lr", 0.6, 1.0),
        ("centralized", "lr", 0.25, 0.5),
    ],
)
def test_dp_sgd_decays_on_its_own_schedule(method, base, final, decay, tmp_path, local_lrs):
    """dp_lr_final and dp_lr_decay bend DP-SGD's schedule only; training without DP keeps lr_final and lr_decay."""
    seen = local_lrs
    cfg = replace(
        TINY,
        method=method,
        rounds=4,
        lr=0.002,
        dp_lr=0.02,
        lr_schedule="cosine",
        lr_final=0.25,
        dp_lr_final=0.6,
        lr_decay=0.5,  # without DP: 1, 1, then two decaying rounds
        dp_lr_decay=1.0,  # DP-SGD: four decaying rounds
    )
    run = FederatedRun(cfg, tmp_path)
    per_round = 1 if method == "centralized" else cfg.clouds
    for r in range(cfg.rounds):
        run.run_round(r)
    factors = [lr_factor("cosine", r, 4, final, decay) for r in range(4)]
    assert (factors[1] < 1.0) == (base == "dp_lr")  # the two schedules differ from round 1
    expected = [getattr(cfg, base) * f for f in factors for _ in range(per_round)]
    np.testing.assert_allclose(seen, expected, rtol=1e-12)


def test_cosine_changes_learning_and_is_the_main_jobs_default(tmp_path):
    assert RunConfig().lr_schedule == "cosine" and TINY.lr_schedule == "constant"  # TINY: plain FedAvg
    a = FederatedRun(replace(TINY, method="fedavg"), tmp_path / "a")
    b = FederatedRun(replace(TINY, method="fedavg", lr_schedule="cosine", lr_final=0.0, lr_decay=1.0), tmp_path / "b")
    for r in range(2):
        a.run_round(r)
        b.run_round(r)
    va, vb = a.layout.flatten(a.global_state), b.layout.flatten(b.global_state)
    assert not np.array_equal(va, vb)  # round 1 trains at half the rate


def test_resume_keeps_the_schedule_and_refuses_other_rounds(tmp_path):
    """An interrupted cosine run resumes on the same schedule; other rounds would bend it, so they are refused."""
    cfg = replace(TINY, method="fedavg", rounds=2, lr_schedule="cosine", lr_final=0.0, lr_decay=1.0)
    full = FederatedRun(cfg, tmp_path / "full")
    for r in range(2):
        full.run_round(r)
    first = FederatedRun(cfg, tmp_path / "first")
    first.run_round(0)
    state = first.state_dict()  # the checkpoint after round 0
    resumed = FederatedRun(cfg, tmp_path / "resumed")
    resumed.load_state_dict(state)
    resumed.run_round(resumed.next_round)
    np.testing.assert_array_equal(resumed.layout.flatten(resumed.global_state), full.layout.flatten(full.global_state))
    with pytest.raises(ValueError, match="learning-rate schedule spans 2 rounds; with rounds=3"):
        FederatedRun(replace(cfg, rounds=3), tmp_path / "more").load_state_dict(state)
    FederatedRun(replace(TINY, method="fedavg", rounds=3), tmp_path / "c").load_state_dict(
        FederatedRun(replace(TINY, method="fedavg"), tmp_path / "d").state_dict()
    )  # a constant rate may run longer on resume, as before
