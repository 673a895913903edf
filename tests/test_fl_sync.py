"""Links on the simulated clock, deadlines, carried stragglers and FedBuff asynchronous aggregation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from tiny_config import TINY as TINY_BASE

from xcloud.cli.run import run_training
from xcloud.fl.config import load_config
from xcloud.fl.errors import ClientFailure
from xcloud.fl.simulation import FederatedRun
from xcloud.fl.strategies import ClientReport, FedAvg, staleness_discount
from xcloud.fl.sync import ArrivalQueue, InFlight, split_compute, sync_deadline
from xcloud.net import LinkProfile

TINY = replace(TINY_BASE, rounds=3, probe_links=False, sim_compute_s=1.0)  # a modelled clock: reproducible
FLAT = "100:100:20"  # 100 Mbit/s both ways, 20 ms, no jitter, no loss


def _vec(run: FederatedRun) -> np.ndarray:
    return run.layout.flatten(run.global_state)


def _item(arrival: float, order: int, cid: str = "c") -> InFlight:
    return InFlight(arrival, order, cid, 0, b"\x01\x02", {"loss": 1.0}, 1.0, 0.1, 0.2)


# -- pieces ---------------------------------------------------------------------
def test_staleness_discount_is_fedbuffs_polynomial():
    assert staleness_discount(0, 0.5) == 1.0
    assert staleness_discount(3, 0.5) == pytest.approx(0.5)
    assert staleness_discount(3, 0.0) == 1.0
    with pytest.raises(ValueError, match="staleness"):
        staleness_discount(-1, 0.5)
    with pytest.raises(ValueError, match="exponent"):
        staleness_discount(1, float("nan"))


def test_stale_reports_get_discounted_weights():
    # Prepare: equal sample counts, one update three versions old.
    fresh, stale = ClientReport("a", 100, 1.0), ClientReport("b", 100, 1.0, staleness=3)
    # Execute
    w = FedAvg().weights([fresh, stale])
    # Assert: weight ratio is (1 + 3)^-0.5 = 1/2.
    assert w[1] / w[0] == pytest.approx(0.5)
    assert w.sum() == pytest.approx(1.0)


def test_arrival_queue_orders_by_time_then_client_and_round_trips():
    q = ArrivalQueue()
    for item in (_item(2.0, 0, "late"), _item(1.0, 2, "b"), _item(1.0, 1, "a")):
        q.push(item)
    restored = ArrivalQueue.from_state(q.state())
    assert [q.pop().client_id for _ in range(3)] == ["a", "b", "late"]
    assert restored.clients() == {"a", "b", "late"}
    assert restored.pop().message == b"\x01\x02"
    with pytest.raises(IndexError):
        ArrivalQueue().pop()


def test_split_compute_scales_or_models():
    assert split_compute(2.0, 1.0, 5.0, 0.0) == (10.0, 5.0)
    train, enc = split_compute(3.0, 1.0, 2.0, 4.0)
    assert (train, enc) == pytest.approx((6.0, 2.0))


def test_sync_deadline_fixed_or_from_prediction():
    links = {c: LinkProfile(c, 8.0, 8.0, 0.0) for c in "abc"}  # 1 MB/s
    up = {"a": 1_000_000, "b": 1_000_000, "c": 1_000_000}
    compute = {"a": 1.0, "b": 2.0, "c": 10.0}
    assert sync_deadline(5.0, 2.0, links, up, 0, compute) == 5.0
    assert sync_deadline(0.0, 0.0, links, up, 0, compute) is None
    assert sync_deadline(0.0, 2.0, links, {}, 0, {}) is None  # nothing measured yet
    # median predicted time is b's: 2 s compute + 1 s upload
    assert sync_deadline(0.0, 2.0, links, up, 0, compute) == pytest.approx(6.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sync": "sometimes"}, "sync must be"),
        ({"stragglers": "ignore"}, "stragglers must be"),
        ({"buffer_size": 9}, "buffer_size"),
        ({"slowdowns": [1.0, 0.0]}, "slowdowns"),
        ({"deadline_s": -1.0}, "deadline_s"),
        ({"links": ["nowhere"]}, "unknown link"),
        ({"links": ["1:2"]}, "unknown link"),
        ({"links": ["a:b:c"]}, "must be numbers"),
        ({"links": ["0:10:1"]}, "up_mbps must be at least 0.001"),
        ({"sync": "async", "method": "centralized"}, "federated method"),
    ],
)
def test_bad_sync_and_link_options_are_refused(kwargs, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        FederatedRun(replace(TINY, **kwargs), tmp_path)


def test_link_file_profiles_are_used(tmp_path):
    path = tmp_path / "links.toml"
    path.write_text("[slowpoke]\nup_mbps = 8\ndown_mbps = 16\nlatency_ms = 10\n")
    run = FederatedRun(replace(TINY, method="fedavg", link_file=str(path), links=["slowpoke"]), tmp_path / "r")
    assert {p.up_mbps for p in run.link_profiles.values()} == {8.0}
    assert load_config(None, {"link_file": str(path)}).link_file == str(path)


# -- synchronous rounds on the clock ----------------------------------------------
def test_sync_round_time_is_compute_plus_transfers_and_matches_the_prediction(tmp_path):
    # Prepare: identical loss- and jitter-free links, modelled compute of 1 s.
    run = FederatedRun(replace(TINY, method="he", links=[FLAT]), tmp_path)
    # Execute
    m = run.run_round(0)
    # Assert: exactly compute + upload (bytes * 8 / bandwidth + latency) + download.
    up = max(m.bytes_up // 3, 1)
    down = m.bytes_down // 3
    expected = 1.0 + (up * 8 / 100e6 + 0.02) + (down * 8 / 100e6 + 0.02)
    assert m.sim_round_s == pytest.approx(expected, rel=1e-3)
    assert m.predicted_s == pytest.approx(m.sim_round_s, rel=1e-9)
    assert m.sim_time_s == pytest.approx(m.sim_round_s)
    parts = m.sim_train_s + m.sim_encrypt_s + m.sim_upload_s + m.sim_download_s + m.sim_wait_s
    assert parts == pytest.approx(m.sim_round_s)
    assert run.run_round(1).sim_time_s == pytest.approx(2 * m.sim_round_s, rel=1e-3)


def test_prediction_tracks_jittery_links_within_ten_percent(tmp_path):
    run = FederatedRun(replace(TINY, method="fedavg", links=["cross-cloud"], probe_links=True), tmp_path)
    for r in range(3):
        m = run.run_round(r)
        assert abs(m.predicted_s - m.sim_round_s) <= 0.10 * m.sim_round_s
    # The probe measured the 200 Mbit/s, 40 ms preset.
    measured = run.measured_links["cloud-0"]
    assert measured.up_mbps == pytest.approx(200.0, rel=0.10)
    assert measured.latency_ms == pytest.approx(40.0, rel=0.10)


def test_probed_bandwidth_reaches_the_dynamic_weights(tmp_path):
    run = FederatedRun(replace(TINY, method="xcloud", links=["same-region", "edge"], probe_links=True), tmp_path)
    reported = [c.bandwidth_mbps for c in run.clients]
    assert reported[0] > 10 * reported[1]  # 1000 vs 50 Mbit/s nominal, as measured
    m = run.run_round(0)
    assert m.weights[0] > m.weights[1]


def test_deadline_drops_a_straggler(tmp_path):
    cfg = replace(TINY, method="fedavg", links=[FLAT], slowdowns=[1.0, 1.0, 5.0], deadline_s=3.0)
    run = FederatedRun(cfg, tmp_path)
    m = run.run_round(0)
    assert m.stragglers == ["cloud-2"] and "cloud-2" in m.dropped
    assert m.accepted == 2
    assert 3.0 < m.sim_round_s < 3.2  # the server waited for the deadline, not the 5 s straggler
    assert run.run_round(1).accepted == 2  # dropped again: it is always late


def test_carried_straggler_arrives_next_round_discounted(tmp_path):
    cfg = replace(TINY, method="he", links=[FLAT], slowdowns=[1.0, 1.0, 5.0], deadline_s=3.0, stragglers="carry")
    run = FederatedRun(cfg, tmp_path)
    first = run.run_round(0)
    second = run.run_round(1)
    assert first.stragglers == ["cloud-2"] and first.accepted == 2 and not first.dropped
    # Round 1: the carried update (staleness 1) joins two fresh ones, cloud-2 does not train.
    assert second.accepted == 3 and sorted(second.staleness) == [0, 0, 1]
    w = dict(zip(["cloud-0", "cloud-1", "cloud-2"], second.weights, strict=True))
    assert w["cloud-2"] < min(w["cloud-0"], w["cloud-1"])


def test_deadline_from_the_probed_prediction(tmp_path):
    cfg = replace(TINY, method="fedavg", links=[FLAT], slowdowns=[1.0, 1.0, 5.0], deadline_factor=1.5)
    run = FederatedRun(cfg, tmp_path)
    assert run.run_round(0).stragglers == []  # nothing measured yet: no deadline
    assert run.run_round(1).stragglers == ["cloud-2"]


# -- asynchronous FedBuff -----------------------------------------------------------
ASYNC = replace(TINY, links=[FLAT], slowdowns=[1.0, 1.0, 5.0], sync="async", buffer_size=2)


def test_async_aggregates_without_waiting_for_the_slow_cloud(tmp_path):
    run = FederatedRun(replace(ASYNC, method="fedavg", rounds=6), tmp_path)
    ms = [run.run_round(r) for r in range(6)]
    assert all(m.accepted == 2 for m in ms)
    assert ms[0].sim_time_s < 1.2  # the two fast clouds, not the 5 s one
    # The slow cloud's update (from version 0) lands later, stale and discounted.
    stale = [(m.round, s) for m in ms for s in m.staleness if s > 0]
    assert stale, "the slow cloud's update was never aggregated"
    times = [m.sim_time_s for m in ms]
    assert times == sorted(times)


def test_async_under_encryption_matches_plain_async(tmp_path):
    plain = FederatedRun(replace(ASYNC, method="fedavg"), tmp_path / "a")
    enc = FederatedRun(replace(ASYNC, method="he"), tmp_path / "b")
    for r in range(3):
        mp, me = plain.run_round(r), enc.run_round(r)
        assert mp.staleness == me.staleness
    assert np.abs(_vec(plain) - _vec(enc)).max() < 2**-16


def test_async_resume_continues_the_same_timeline(tmp_path):
    cfg = replace(ASYNC, method="fedavg", rounds=4)
    full = run_training(cfg, tmp_path / "full", quiet=True)
    run_training(replace(cfg, rounds=2), tmp_path / "part", quiet=True)
    resumed = run_training(cfg, tmp_path / "part", resume=True, quiet=True)
    np.testing.assert_array_equal(_vec(full), _vec(resumed))
    assert [m.sim_time_s for m in full.metrics] == pytest.approx([m.sim_time_s for m in resumed.metrics])
    assert [m.staleness for m in full.metrics] == [m.staleness for m in resumed.metrics]


def test_async_replayed_update_is_rejected(tmp_path):
    # A network attacker replays cloud-0's first update into every later version.
    first: dict[str, bytes] = {}

    def replay(r: int, cid: str, msg: bytes) -> bytes:
        if cid == "cloud-0":
            first.setdefault(cid, msg)
            return first[cid]
        return msg

    run = FederatedRun(replace(ASYNC, method="fedavg"), tmp_path, client_hook=replay)
    run.run_round(0)
    second = run.run_round(1)
    assert "cloud-0" in second.dropped
    assert "duplicate" in run.server._summary.rejected["cloud-0"] or "stale" in run.server._summary.rejected["cloud-0"]


def test_async_buffer_is_at_least_min_clients(tmp_path):
    run = FederatedRun(replace(ASYNC, method="fedavg", clouds=2, slowdowns=[1.0, 5.0], buffer_size=0), tmp_path)
    assert run.run_round(0).accepted == 2  # half of two clouds is one, but min_clients is 2


def test_async_cloud_that_fails_once_tries_again(tmp_path):
    def crash_once(r: int, cid: str, msg: bytes) -> bytes:
        if cid == "cloud-0" and r == 0:
            raise ClientFailure("cloud-0: simulated crash")
        return msg

    run = FederatedRun(replace(ASYNC, method="fedavg", rounds=4), tmp_path, client_hook=crash_once)
    first = run.run_round(0)
    assert "cloud-0" in first.dropped and "cloud-0" not in first.clients
    later = [run.run_round(r) for r in range(1, 4)]
    assert any("cloud-0" in m.clients for m in later)
    for m in [first, *later]:
        assert len(m.clients) == len(m.weights) == len(m.staleness) == m.accepted
