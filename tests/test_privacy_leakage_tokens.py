"""The bag-of-words token meter: a real attack on plain updates, chance on ciphertext and hybrid updates."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from tiny_config import TINY as TINY_BASE

from xcloud.experiments.leakage import (
    Recorder,
    _KnobRun,
    client_truth,
    eavesdropper_view,
    server_view,
    token_meter,
)
from xcloud.fl.simulation import FederatedRun
from xcloud.models import GPT, TrainConfig, train_local
from xcloud.privacy import RecordDP, RecordDPConfig
from xcloud.privacy.leakage import (
    bag_of_words,
    batch_tokens,
    otsu_threshold,
    rate_at_precision,
    replay_batches,
    roc_auc,
    row_scores,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = replace(TINY_BASE, rounds=1, local_steps=3, threads=1)


def _observe(run: FederatedRun, rec: Recorder) -> list[dict]:
    run.run_round(0)
    rows = []
    for r, cid, msg in rec.uplink:
        rows.append(token_meter(server_view(run, r, cid, msg), client_truth(run, r, cid)))
    return rows


# -- known answers on synthetic rows --------------------------------------------------------------------------


def test_untouched_rows_give_exact_bag(rng):
    rows = np.zeros((50, 8))
    truth = [3, 7, 11, 20, 42]
    rows[truth] = rng.normal(0, 1e-3, (5, 8))
    leak = bag_of_words(rows, truth)
    assert leak.recall == 1.0 and leak.precision == 1.0 and leak.rate == 1.0 and leak.auc == 1.0
    assert leak.chance_precision == pytest.approx(0.1)


def test_common_direction_rows_are_not_flagged(rng):
    # Output-head shape: every row moves along one shared direction; the target rows move differently.
    common = rng.normal(0, 1, 16)
    rows = np.tile(common, (60, 1)) + rng.normal(0, 1e-4, (60, 16))
    truth = [1, 5, 9]
    rows[truth] += rng.normal(0, 1, (3, 16))
    leak = bag_of_words(rows, truth)
    assert leak.recall == 1.0 and leak.precision == 1.0


def test_noise_rows_read_chance(rng):
    rows = rng.normal(0, 1, (400, 16))
    truth = rng.choice(400, 100, replace=False)
    leak = bag_of_words(rows, truth)
    assert abs(leak.auc - 0.5) < 0.1
    assert leak.rate < 0.1
    assert leak.precision < 0.4  # prevalence 0.25


def test_rate_at_precision_keeps_ties_together():
    scores = np.array([3.0, 2.0, 2.0, 1.0])
    labels = np.array([True, True, False, True])
    # Cuts: {0} precision 1 recall 1/3; {0,1,2} precision 2/3; all: 3/4.
    assert rate_at_precision(scores, labels, 0.9) == pytest.approx(1 / 3)
    assert rate_at_precision(scores, labels, 0.7) == pytest.approx(1.0)


def test_otsu_separates_zeros_from_moved_rows():
    s = np.r_[np.zeros(30), np.full(10, 1e-6)]
    t = otsu_threshold(s)
    assert 0 < t < 1e-6


# -- the batches a client trained on -------------------------------------------------------------------------


class _Recording(torch.utils.data.Dataset):
    """Wraps a dataset and records every index train_local reads."""

    def __init__(self, ds):
        self.ds, self.seen = ds, []

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        self.seen.append(int(i))
        return self.ds[i]


@pytest.mark.parametrize("use_dp", [False, True])
def test_replayed_batches_are_the_trained_batches(tmp_path, use_dp):
    run = FederatedRun(replace(TINY, method="fedavg"), tmp_path)
    ds = run.train_sets[0]
    dp = RecordDP(RecordDPConfig(target_epsilon=50.0), len(ds), 8, 3, 1) if use_dp else None
    model = GPT(run.gpt_config)
    rec = _Recording(ds)
    train_local(model, rec, TrainConfig(local_steps=3, batch_size=8, device="cpu"), seed=1234, dp=dp)
    replayed = replay_batches(len(ds), 8, 3, 1234, dp=dp)
    assert rec.seen == [int(i) for b in replayed for i in b]
    assert len(batch_tokens(ds, replayed)) > 10


# -- on real federated updates -------------------------------------------------------------------------------


def test_token_meter_recovers_most_tokens_from_plain_fedavg(tmp_path):
    rec = Recorder()
    run = FederatedRun(replace(TINY, method="fedavg"), tmp_path, client_hook=rec.hook)
    rows = _observe(run, rec)
    assert len(rows) == TINY.clouds
    for row in rows:
        assert row["kind"] == "plain"
        assert row["recall"] > 0.8 and row["precision"] >= 0.9
        assert row["rate"] > 0.8
        assert row["auc"] > 0.9


def test_token_meter_reads_chance_on_ciphertext(tmp_path):
    rec = Recorder()
    run = FederatedRun(replace(TINY, method="he"), tmp_path, client_hook=rec.hook)
    rows = _observe(run, rec)
    for row in rows:
        assert row["kind"] == "ciphertext"
        assert abs(row["auc"] - 0.5) < 0.15
        assert row["rate"] < 0.1
        assert row["precision"] < 0.6


def test_hybrid_with_embedding_and_head_encrypted_drops_leakage_to_chance(tmp_path):
    probe = FederatedRun(replace(TINY, method="fedavg"), tmp_path / "probe")
    sizes = dict(zip(probe.layout.names, probe.layout.sizes, strict=True))
    share = (sizes["wte.weight"] + sizes["lm_head.weight"]) / probe.layout.total
    results = {}
    for label, fraction in (("plain", 0.0), ("hybrid", share)):
        rec = Recorder()
        run = _KnobRun(replace(TINY, method="fedavg"), tmp_path / label, fraction, client_hook=rec.hook)
        results[label] = (run.plan, _observe(run, rec))
    plan, rows = results["hybrid"]
    assert set(plan.encrypted) == {"wte.weight", "lm_head.weight"}
    assert 0 < plan.fraction < 1
    assert min(r["rate"] for r in results["plain"][1]) > 0.8
    for row in rows:
        assert row["kind"] == "ciphertext"
        assert row["rate"] < 0.1 and abs(row["auc"] - 0.5) < 0.15


def test_eavesdropper_reads_what_the_server_reads(tmp_path):
    rec = Recorder()
    run = FederatedRun(replace(TINY, method="xcloud"), tmp_path, client_hook=rec.hook)
    run.run_round(0)
    r, cid, msg = rec.uplink[0]
    a, b = server_view(run, r, cid, msg), eavesdropper_view(run, r, cid, msg)
    assert a.encrypted == b.encrypted == ("wte.weight", "lm_head.weight")
    for name in a.tensors:
        np.testing.assert_array_equal(a.tensors[name], b.tensors[name])


# -- bad input ---------------------------------------------------------------------------------------------


def test_bad_input_raises_value_error():
    rows = np.zeros((10, 4))
    with pytest.raises(ValueError, match="empty"):
        bag_of_words(rows, [])
    with pytest.raises(ValueError, match="2-D"):
        bag_of_words(np.zeros(10), [1])
    with pytest.raises(ValueError, match="2-D"):
        row_scores(np.zeros((0, 4)))
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        bag_of_words(rows, [3, 10])
    with pytest.raises(ValueError, match="NaN"):
        row_scores(np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match="differ"):
        rate_at_precision(np.zeros(3), np.ones(4, bool))
    with pytest.raises(ValueError, match="differ"):
        roc_auc(np.zeros(3), np.ones(4, bool))
    with pytest.raises(ValueError, match="positive and one negative"):
        roc_auc(np.zeros(3), np.ones(3, bool))
    with pytest.raises(ValueError, match="no scores"):
        otsu_threshold(np.zeros(0))
    with pytest.raises(ValueError, match="no batches"):
        batch_tokens([], [])
    with pytest.raises(ValueError, match="positive"):
        replay_batches(0, 8, 3, 1)
