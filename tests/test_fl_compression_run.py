"""Compression in the federated core: update and aggregate messages, the aggregator's checks,
and short end-to-end runs (accuracy and bytes against uncompressed training)."""

from __future__ import annotations

import logging
import struct
from dataclasses import asdict, replace

import numpy as np
import pytest
import torch
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tiny_config import TINY as TINY_BASE

import xcloud
from xcloud.cli.run import run_training
from xcloud.fl.aggregator import Aggregator
from xcloud.fl.client import FederatedClient, open_aggregate
from xcloud.fl.compression import Codec
from xcloud.fl.config import RunConfig, load_config
from xcloud.fl.envelope import open_envelope, seal_envelope
from xcloud.fl.errors import UpdateRejected
from xcloud.fl.layout import ParameterLayout
from xcloud.fl.messages import UPDATE_KIND, UpdateHeader, unpack_update
from xcloud.fl.simulation import FederatedRun
from xcloud.fl.strategies import FedAvg, HybridEncryption

SERVER_KEY = Ed25519PrivateKey.generate()
SERVER_PUB = SERVER_KEY.public_key()
LEGACY_FIELDS = {
    "client_id",
    "round_id",
    "fingerprint",
    "key_id",
    "plan",
    "num_samples",
    "loss",
    "bandwidth_mbps",
    "n_plain",
    "n_encrypted",
}


class _Stats:
    def __init__(self, loss: float, examples: int) -> None:
        self.mean_loss, self.examples, self.epsilon = loss, examples, None


class _Model(torch.nn.Module):
    """Embedding and head (encrypted by the plan) around a plain 64 x 64 layer (4160 plain values)."""

    def __init__(self) -> None:
        super().__init__()
        self.wte = torch.nn.Embedding(20, 4)
        self.mid = torch.nn.Linear(64, 64)
        self.lm_head = torch.nn.Linear(4, 20, bias=False)


def _trainer(seed: int):
    """'Training' adds a fixed pseudo-random delta (different per client, the same every round)."""
    g = torch.Generator().manual_seed(seed)
    deltas = [torch.randn(p.shape, generator=g) * 1e-2 for p in _Model().parameters()]

    def train(model, dataset, _seed, *, round_id):
        with torch.no_grad():
            for p, d in zip(model.parameters(), deltas, strict=True):
                p.add_(d)
        return _Stats(1.0, len(dataset))

    return train


@pytest.fixture(scope="module")
def setup():
    ctx = xcloud.CkksContext.insecure(log_n=8)
    keys = ctx.keygen()
    state = {k: v.clone() for k, v in _Model().state_dict().items()}
    layout = ParameterLayout.from_state(state)
    strategy = HybridEncryption(FedAvg(), fraction=0.0)
    return ctx, keys, state, layout, strategy.plan(layout), strategy


def _client(setup, cid: str, compression=None, seed: int = 0, n: int = 10) -> FederatedClient:
    ctx, keys, _, layout, plan, _ = setup
    return FederatedClient(
        cid,
        _Model(),
        list(range(n)),
        _trainer(seed),
        ctx,
        keys,
        cid.encode() * 4,
        layout,
        plan,
        compression=compression,
    )


def _aggregator(setup, clients, downlink=None) -> Aggregator:
    ctx, keys, _, _, plan, strategy = setup
    macs = {c.client_id: c.mac_key for c in clients}
    return Aggregator(ctx, plan, strategy, macs, SERVER_KEY, keys.key_id, downlink=downlink)


def _rejected(agg: Aggregator, cid: str, msg: bytes, reason: str) -> None:
    with pytest.raises(UpdateRejected) as e:
        agg.receive(cid, msg)
    assert e.value.reason == reason, str(e.value)


def _plain_blob_offset(msg: bytes) -> int:
    """Offset of the first byte of an envelope's first blob (the plain part)."""
    (head_len,) = struct.unpack_from("<I", msg, 6)
    return 4 + 6 + head_len + 4 + 8


# -- messages -------------------------------------------------------------------------


def test_uncompressed_updates_keep_the_pre_compression_format(setup):
    # Prepare
    _, keys, state, _, plan, _ = setup
    client = _client(setup, "a")
    explicit = _client(setup, "a", compression=Codec("none"))
    # Execute
    msg, _ = client.fit(state, 0, seed=0)
    raw, blobs = open_envelope(UPDATE_KIND, msg, client.mac_key)
    # Assert: the same header fields as before compression existed, and raw float32
    assert set(raw) == LEGACY_FIELDS
    assert len(blobs[0]) == 4 * int((~plan.mask()).sum())
    header, plain, _ = unpack_update(msg, client.mac_key, setup[0])
    assert header.codec == "none"
    np.testing.assert_array_equal(np.frombuffer(blobs[0], "<f4"), plain)
    assert set(open_envelope(UPDATE_KIND, explicit.fit(state, 0, seed=0)[0], b"a" * 4)[0]) == LEGACY_FIELDS


def test_compressed_updates_name_their_codec_and_aggregate_as_decoded(setup):
    # Prepare: three clients on three codecs
    ctx, keys, state, layout, plan, _ = setup
    clients = [
        _client(setup, "a", None, seed=1, n=10),
        _client(setup, "b", Codec("q8", chunk=512), seed=2, n=10),
        _client(setup, "c", Codec("topk", fraction=0.1), seed=3, n=20),
    ]
    agg = _aggregator(setup, clients)
    agg.start_round(0)
    decoded, sizes = [], []
    # Execute
    for c in clients:
        msg, stats = c.fit(state, 0, seed=0)
        header, plain, _ = unpack_update(msg, c.mac_key, ctx)
        decoded.append(plain)
        sizes.append(stats.bytes_up)
        assert header.codec == (c.compression.name if c.compression else "none")
        agg.receive(c.client_id, msg)
    out, summary = agg.finish_round()
    _, delta, _ = open_aggregate(out, ctx=ctx, keys=keys, plan=plan, server_key=SERVER_PUB, round_id=0)
    # Assert
    mask = plan.mask()
    expected = 0.25 * decoded[0] + 0.25 * decoded[1] + 0.5 * decoded[2]
    np.testing.assert_allclose(delta[~mask], expected, atol=1e-7)
    plain_bytes = 4 * int((~mask).sum())
    assert sizes[1] < sizes[0] - 0.7 * plain_bytes  # q8: a quarter of the float32 bytes
    assert sizes[2] < sizes[0] - 0.9 * plain_bytes  # topk at a tenth: about a twentieth
    assert summary.bytes_in == sum(sizes)
    assert np.count_nonzero(decoded[2]) == Codec("topk", fraction=0.1).kept(decoded[2].size)


def _forge(setup, cid: str, codec: str, blob: bytes, n_plain: int | None = None) -> bytes:
    """An update authenticated with the client's own key, with a chosen codec name and plain part."""
    ctx, keys, _, _, plan, _ = setup
    mask = plan.mask()
    header = UpdateHeader(
        client_id=cid,
        round_id=0,
        fingerprint=ctx.fingerprint.hex(),
        key_id=keys.key_id.hex(),
        plan=plan.digest().hex(),
        num_samples=10,
        loss=1.0,
        bandwidth_mbps=100.0,
        n_plain=int((~mask).sum()) if n_plain is None else n_plain,
        n_encrypted=int(mask.sum()),
        codec=codec,
    )
    ct = xcloud.encrypt_blocks(keys, np.zeros(int(mask.sum()), np.float32))
    return seal_envelope(UPDATE_KIND, asdict(header), [blob, ct.to_bytes()], cid.encode() * 4)


def test_bad_encodings_are_rejected_with_a_logged_reason_and_the_round_goes_on(setup, caplog):
    # Prepare
    _, _, state, _, plan, _ = setup
    n = int((~plan.mask()).sum())
    x = np.linspace(-1, 1, n, dtype=np.float32)
    q8 = Codec("q8").encode(x)[0]
    topk = Codec("topk").encode(x)[0]
    names = [f"c{i}" for i in range(8)]
    clients = [_client(setup, cid) for cid in names]
    agg = _aggregator(setup, clients + [_client(setup, "good", Codec("q8"))])
    agg.start_round(0)
    # Execute / Assert
    on_wire = bytearray(_client(setup, "c0", Codec("q8")).fit(state, 0, seed=0)[0])
    on_wire[_plain_blob_offset(bytes(on_wire)) + 1] ^= 3  # the codec byte, changed in transit
    _rejected(agg, "c0", bytes(on_wire), "integrity")
    with caplog.at_level(logging.WARNING, logger="xcloud.aggregator"):
        _rejected(agg, "c1", _forge(setup, "c1", "q8", topk), "bad-encoding")  # header and blob disagree
        _rejected(agg, "c2", _forge(setup, "c2", "zip", q8), "bad-encoding")  # unknown codec
        _rejected(agg, "c3", _forge(setup, "c3", "q8", q8[:-1]), "bad-encoding")  # truncated
        _rejected(agg, "c4", _forge(setup, "c4", "none", q8), "bad-encoding")  # not n float32
        bad_scale = bytearray(q8)
        struct.pack_into("<f", bad_scale, 32, float("nan"))
        _rejected(agg, "c5", _forge(setup, "c5", "q8", bytes(bad_scale)), "bad-encoding")
    assert "bad-encoding" in caplog.text and "c1" in caplog.text
    # An announced count far above the plan is refused before anything is decoded.
    huge = Codec("topk", fraction=1e-6).encode(np.zeros(10, np.float32))[0]
    _rejected(agg, "c6", _forge(setup, "c6", "topk", huge, n_plain=1 << 31), "bad-shape")
    agg.receive("good", _client(setup, "good", Codec("q8")).fit(state, 0, seed=0)[0])
    _, summary = agg.finish_round()
    assert summary.accepted == ["good"]
    assert {"c0", "c1", "c2", "c3", "c4", "c5", "c6"} <= set(summary.rejected)


def test_downlink_q8_with_server_side_error_feedback(setup):
    # Prepare
    ctx, keys, state, layout, plan, _ = setup
    mask = plan.mask()
    clients = [_client(setup, "a", seed=1), _client(setup, "b", seed=2)]
    agg = _aggregator(setup, clients, downlink=Codec("q8", chunk=256))
    exact_sum = np.zeros(int((~mask).sum()), np.float64)
    sent_sum = np.zeros_like(exact_sum)
    sizes = []
    # Execute: two rounds of the same updates
    for r in range(2):
        agg.start_round(r)
        exact = np.zeros_like(exact_sum)
        for c in clients:
            msg, _ = c.fit(state, r, seed=0)
            exact += 0.5 * unpack_update(msg, c.mac_key, ctx)[1]
            agg.receive(c.client_id, msg)
        out, summary = agg.finish_round()
        header, delta, _ = open_aggregate(out, ctx=ctx, keys=keys, plan=plan, server_key=SERVER_PUB, round_id=r)
        exact_sum += exact
        sent_sum += delta[~mask]
        sizes.append(summary.bytes_out)
        # Assert: q8 on the wire, within half a scale of the exact aggregate plus the carried residual
        assert header.codec == "q8"
        assert np.abs(delta[~mask] - exact).max() < 2 * np.abs(exact).max() / 127
    np.testing.assert_allclose(exact_sum - sent_sum, agg.downlink_feedback.residual, atol=1e-6)
    uncompressed = _aggregator(setup, clients)
    uncompressed.start_round(0)
    for c in clients:
        uncompressed.receive(c.client_id, c.fit(state, 0, seed=0)[0])
    assert sizes[0] < uncompressed.finish_round()[1].bytes_out - 0.7 * 4 * exact.size


# -- configuration --------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"compression": "gzip"},
        {"downlink_compression": "auto"},
        {"topk_fraction": 0.0},
        {"topk_fraction": 1.5},
        {"compression_chunk": 0},
        {"auto_q8_mbps": 600.0},
        {"auto_q8_mbps": 0.0},
    ],
)
def test_bad_compression_options_are_refused(bad):
    with pytest.raises(ValueError):
        load_config(None, bad)


# -- end to end ------------------------------------------------------------------------

TINY = replace(TINY_BASE, method="fedavg", rounds=4)
# Largest validation-loss increase (nats) after 4 rounds against uncompressed fedavg (5.614).
# Measured on the 2-core dev machine, CPU: q8 +0.0000, topk (fraction 0.1) +0.20, auto (here the
# three clouds pick none, q8 and topk) +0.047. topk's gap is the delay error feedback imposes on the
# 90% of values it holds back in so short a run.
TOLERANCE = {"q8": 0.01, "topk": 0.3, "auto": 0.15}


def _train(cfg: RunConfig, path) -> FederatedRun:
    run = FederatedRun(cfg, path)
    for r in range(cfg.rounds):
        run.run_round(r)
    return run


@pytest.fixture(scope="module")
def uncompressed(tmp_path_factory, one_torch_thread) -> FederatedRun:
    return _train(TINY, tmp_path_factory.mktemp("none"))


@pytest.mark.parametrize("codec", ["q8", "topk", "auto"])
def test_each_codec_trains_within_its_tolerance_and_shrinks_the_uplink(uncompressed, codec, tmp_path):
    # Execute
    run = _train(replace(TINY, compression=codec), tmp_path)
    # Assert
    base, last = uncompressed.metrics[-1], run.metrics[-1]
    assert np.isfinite(last.val_loss) and last.val_loss < run.metrics[0].val_loss  # still learning
    assert last.val_loss - base.val_loss < TOLERANCE[codec]
    ratio = last.bytes_up / base.bytes_up
    assert ratio < {"q8": 0.28, "topk": 0.07, "auto": 0.6}[codec], ratio
    assert last.bytes_down == base.bytes_down  # the downlink is not compressed unless asked
    if codec == "auto":
        names = [c.compression.select(c.bandwidth_mbps).name for c in run.clients]
        assert len(set(names)) > 1  # the default links span the policy's thresholds


def test_hybrid_encryption_with_both_directions_compressed(tmp_path, one_torch_thread):
    cfg = replace(TINY, method="xcloud", rounds=2)
    plain = _train(cfg, tmp_path / "a")
    both = _train(replace(cfg, compression="q8", downlink_compression="q8"), tmp_path / "b")
    m0, m1 = plain.metrics[-1], both.metrics[-1]
    assert abs(m1.val_loss - m0.val_loss) < 0.05
    n_plain = int((~both.plan.mask()).sum())
    assert m1.bytes_up < m0.bytes_up - 0.7 * 4 * n_plain * cfg.clouds
    assert m1.bytes_down < m0.bytes_down - 0.7 * 4 * n_plain * cfg.clouds
    assert both.server.downlink_feedback.residual is not None


def test_resume_restores_the_error_feedback_state(tmp_path, one_torch_thread):
    cfg = replace(TINY, rounds=2, compression="topk", downlink_compression="q8")
    full = run_training(cfg, tmp_path / "full", quiet=True)
    run_training(replace(cfg, rounds=1), tmp_path / "part", quiet=True)
    resumed = run_training(cfg, tmp_path / "part", resume=True, quiet=True)
    np.testing.assert_array_equal(full.layout.flatten(full.global_state), resumed.layout.flatten(resumed.global_state))
    for a, b in zip(full.clients, resumed.clients, strict=True):
        np.testing.assert_array_equal(a.feedback.residual, b.feedback.residual)


def test_a_tampered_codec_byte_is_rejected_and_the_round_goes_on(tmp_path, one_torch_thread, caplog):
    def hook(r: int, cid: str, msg: bytes) -> bytes:
        if cid != "cloud-1":
            return msg
        b = bytearray(msg)
        b[_plain_blob_offset(msg) + 1] ^= 3  # q8 (1) -> topk (2)
        return bytes(b)

    run = FederatedRun(replace(TINY, compression="q8"), tmp_path, client_hook=hook)
    with caplog.at_level(logging.WARNING, logger="xcloud.aggregator"):
        m = run.run_round(0)
    assert m.dropped == ["cloud-1"] and m.accepted == 2
    assert np.isfinite(m.val_loss)
    assert "cloud-1 left out: integrity" in caplog.text
