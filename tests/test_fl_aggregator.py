"""The aggregation server: verification of every update, weighted aggregate, faults."""

from __future__ import annotations

import hashlib
import hmac
import struct

import numpy as np
import pytest
import torch
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import xcloud
import xcloud.fl.aggregator
from xcloud.fl.client import FederatedClient, flood, open_aggregate
from xcloud.fl.errors import ClientFailure, NotEnoughClients, UpdateRejected
from xcloud.fl.layout import ParameterLayout
from xcloud.fl.strategies import FedAvg, HybridEncryption

SERVER_KEY = Ed25519PrivateKey.generate()
SERVER_PUB = SERVER_KEY.public_key()


class _Stats:
    def __init__(self, loss: float, examples: int) -> None:
        self.mean_loss, self.examples, self.epsilon = loss, examples, None


class _AddModel(torch.nn.Module):
    """A stand-in model whose 'training' adds a fixed delta to its parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.wte = torch.nn.Embedding(20, 4)
        self.mid = torch.nn.Linear(4, 4)
        self.lm_head = torch.nn.Linear(4, 20, bias=False)


def _trainer(delta: float):
    def train(model, dataset, seed, *, round_id):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(delta)
        return _Stats(1.0 + delta, len(dataset))

    return train


@pytest.fixture(scope="module")
def setup():
    ctx = xcloud.CkksContext.insecure(log_n=8)
    keys = ctx.keygen()
    model = _AddModel()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    layout = ParameterLayout.from_state(state)
    strategy = HybridEncryption(FedAvg(), fraction=0.0)
    plan = strategy.plan(layout)
    return ctx, keys, state, layout, plan, strategy


def _client(setup, cid: str, delta: float, n: int = 10):
    ctx, keys, state, layout, plan, _ = setup
    return FederatedClient(cid, _AddModel(), list(range(n)), _trainer(delta), ctx, keys, cid.encode() * 4, layout, plan)


def _aggregator(setup, clients, min_clients=1):
    ctx, keys, state, layout, plan, strategy = setup
    macs = {c.client_id: c.mac_key for c in clients}
    return xcloud.fl.aggregator.Aggregator(ctx, plan, strategy, macs, SERVER_KEY, keys.key_id, min_clients=min_clients)


def test_weighted_round_equals_plaintext_average(setup):
    ctx, keys, state, layout, plan, _ = setup
    clients = [_client(setup, "a", 0.01, n=10), _client(setup, "b", -0.03, n=30)]
    agg = _aggregator(setup, clients)
    agg.start_round(0)
    for c in clients:
        msg, _ = c.fit(state, 0, seed=0)
        agg.receive(c.client_id, msg)
    out, summary = agg.finish_round()
    header, delta, _ = open_aggregate(out, ctx=ctx, keys=keys, plan=plan, server_key=SERVER_PUB, round_id=0)
    assert header.weights == pytest.approx([0.25, 0.75])
    np.testing.assert_allclose(delta, 0.25 * 0.01 + 0.75 * -0.03, atol=2**-20)
    assert summary.accepted == ["a", "b"]


def _fresh_msg(setup, cid="a", round_id=0, delta=0.01):
    ctx, keys, state, *_ = setup
    return _client(setup, cid, delta).fit(state, round_id, seed=0)[0]


def _rejected(agg, cid, msg, reason):
    with pytest.raises(UpdateRejected) as e:
        agg.receive(cid, msg)
    assert e.value.reason == reason


def test_tampered_and_truncated_updates_are_rejected(setup):
    clients = [_client(setup, "a", 0.01)]
    agg = _aggregator(setup, clients)
    agg.start_round(0)
    msg = bytearray(_fresh_msg(setup))
    msg[len(msg) // 2] ^= 1
    _rejected(agg, "a", bytes(msg), "integrity")
    _rejected(agg, "a", bytes(msg[:100]), "integrity")
    _rejected(agg, "a", b"", "integrity")


def test_stale_round_unknown_client_and_duplicate(setup):
    clients = [_client(setup, "a", 0.01)]
    agg = _aggregator(setup, clients)
    agg.start_round(3)
    _rejected(agg, "a", _fresh_msg(setup, round_id=2), "stale-round")
    _rejected(agg, "zz", _fresh_msg(setup), "unknown-client")
    agg.receive("a", _fresh_msg(setup, round_id=3))
    _rejected(agg, "a", _fresh_msg(setup, round_id=3), "duplicate")
    _, summary = agg.finish_round()
    # "a" is in the round: neither its earlier stale message nor its duplicate lists it as left out.
    assert summary.accepted == ["a"] and "a" not in summary.rejected and "zz" in summary.rejected


def test_update_from_another_context_or_key_is_rejected(setup):
    ctx, keys, state, layout, plan, strategy = setup
    other_ctx = xcloud.CkksContext.insecure(log_n=9)
    other = FederatedClient(
        "a", _AddModel(), list(range(10)), _trainer(0.01), other_ctx, other_ctx.keygen(), b"a" * 4, layout, plan
    )
    agg = _aggregator(setup, [other])
    agg.start_round(0)
    with pytest.raises(UpdateRejected) as e:
        agg.receive("a", other.fit(state, 0, seed=0)[0])
    assert e.value.reason in {"integrity", "wrong-context"}
    other_key = FederatedClient(
        "a", _AddModel(), list(range(10)), _trainer(0.01), ctx, ctx.keygen(), b"a" * 4, layout, plan
    )
    _rejected(agg, "a", other_key.fit(state, 0, seed=0)[0], "wrong-key")


def test_nan_plain_part_is_rejected_and_round_goes_on(setup):
    ctx, keys, state, layout, plan, _ = setup
    good = _client(setup, "a", 0.01)
    bad = _client(setup, "b", 0.01)
    agg = _aggregator(setup, [good, bad])
    agg.start_round(0)
    delta = np.full(layout.total, 0.01, dtype=np.float32)
    delta[~plan.mask()] = np.nan  # a client that sends NaN in its plain part
    msg, _ = bad._protect(delta, 0, 1.0, 10, 0.0, None)
    _rejected(agg, "b", msg, "non-finite")
    agg.receive("a", _fresh_msg(setup))
    out, summary = agg.finish_round()
    assert summary.accepted == ["a"]
    assert "b" in summary.rejected


@pytest.mark.parametrize("value", [3e38, -1e7])
def test_an_implausibly_large_plain_part_is_rejected_and_round_goes_on(setup, value):
    """Finite, but two such values overflow the float32 weighted sum to inf."""
    ctx, keys, state, layout, plan, _ = setup
    bad = _client(setup, "b", 0.01)
    agg = _aggregator(setup, [_client(setup, "a", 0.01), bad])
    agg.start_round(0)
    delta = np.full(layout.total, 0.01, dtype=np.float32)
    delta[np.flatnonzero(~plan.mask())[0]] = value
    msg, _ = bad._protect(delta, 0, 1.0, 10, 0.0, None)
    _rejected(agg, "b", msg, "bad-values")
    agg.receive("a", _fresh_msg(setup))
    out, summary = agg.finish_round()
    assert summary.accepted == ["a"]


def test_nan_in_encrypted_part_fails_the_client_not_the_round(setup):
    ctx, keys, state, layout, plan, _ = setup
    client = _client(setup, "a", float("nan"))
    with pytest.raises(ClientFailure):
        client.fit(state, 0, seed=0)


def test_too_few_clients_fails_the_round(setup):
    clients = [_client(setup, "a", 0.01), _client(setup, "b", 0.01)]
    agg = _aggregator(setup, clients, min_clients=2)
    agg.start_round(0)
    agg.receive("a", _fresh_msg(setup))
    with pytest.raises(NotEnoughClients):
        agg.finish_round()


def test_aggregate_is_authenticated_and_bound_to_round(setup):
    ctx, keys, state, layout, plan, _ = setup
    clients = [_client(setup, "a", 0.01)]
    agg = _aggregator(setup, clients)
    agg.start_round(0)
    agg.receive("a", _fresh_msg(setup))
    out, _ = agg.finish_round()
    with pytest.raises(xcloud.IntegrityError):
        open_aggregate(
            out, ctx=ctx, keys=keys, plan=plan, server_key=Ed25519PrivateKey.generate().public_key(), round_id=0
        )
    with pytest.raises(xcloud.IntegrityError):
        open_aggregate(out, ctx=ctx, keys=keys, plan=plan, server_key=SERVER_PUB, round_id=1)
    with pytest.raises(ValueError):
        open_aggregate(out, ctx=ctx, keys=keys.public_only(), plan=plan, server_key=SERVER_PUB, round_id=0)


def test_flood_adds_noise_of_the_requested_size():
    x = np.zeros(200_000, dtype=np.float64)
    y = flood(x, 1e-3)
    assert abs(float(y.std()) - 1e-3) < 2e-5
    assert abs(float(y.mean())) < 2e-5
    assert not np.array_equal(flood(x, 1e-3), y)


def _forge(setup, cid, *, header_changes=None, ct=None, n_enc=None):
    """An update authenticated with the client's own MAC key but with chosen contents."""
    from dataclasses import asdict

    from xcloud.fl.envelope import seal_envelope
    from xcloud.fl.messages import UPDATE_KIND, UpdateHeader

    ctx, keys, state, layout, plan, _ = setup
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
        n_plain=int((~mask).sum()),
        n_encrypted=int(mask.sum()),
    )
    raw = asdict(header)
    raw.update(header_changes or {})
    if ct is None:
        ct = xcloud.encrypt_blocks(keys, np.zeros(int(mask.sum()), np.float32))
    plain = np.zeros(int((~mask).sum()), "<f4").tobytes()
    return seal_envelope(UPDATE_KIND, raw, [plain, ct.to_bytes()], cid.encode() * 4)


@pytest.mark.parametrize(
    "changes",
    [{"num_samples": "5"}, {"loss": "1"}, {"num_samples": 10**400}, {"round_id": True}, {"loss": None}],
)
def test_mistyped_header_fields_are_rejected_not_crashing(setup, changes):
    agg = _aggregator(setup, [_client(setup, "a", 0.01)])
    agg.start_round(0)
    _rejected(agg, "a", _forge(setup, "a", header_changes=changes), "integrity")


@pytest.mark.parametrize(
    "head",
    [
        b'{"num_samples":' + b"9" * 5000 + b"}",  # beyond Python's int digit limit: ValueError, not JSONDecodeError
        b"[" * 200_000,  # nested too deeply for the parser: RecursionError
    ],
    ids=["huge-int", "deep-nesting"],
)
def test_headers_the_json_parser_chokes_on_are_rejected_not_crashing(setup, head):
    """An authenticated client can still send a header that breaks json.loads in other ways than a syntax error."""
    body = b"XCUP" + struct.pack("<HI", 1, len(head)) + head + struct.pack("<I", 0)
    msg = body + hmac.new(b"a" * 4, body, hashlib.sha256).digest()  # the MAC key _forge uses for client "a"
    agg = _aggregator(setup, [_client(setup, "a", 0.01), _client(setup, "b", 0.01)])
    agg.start_round(0)
    _rejected(agg, "a", msg, "integrity")
    agg.receive("b", _fresh_msg(setup, "b"))
    _, summary = agg.finish_round()  # the round goes on without the client
    assert summary.accepted == ["b"]


@pytest.mark.parametrize("bandwidth", [0.0, 5e-324, 1e-4, 1e8])
def test_implausible_bandwidth_is_rejected(setup, bandwidth):
    """5e-324 Mbit/s from two clients made the median bandwidth denormal and every dynamic weight NaN."""
    agg = _aggregator(setup, [_client(setup, "a", 0.01)])
    agg.start_round(0)
    _rejected(agg, "a", _forge(setup, "a", header_changes={"bandwidth_mbps": bandwidth}), "bad-metadata")


@pytest.mark.parametrize("loss", [0.0, 1e-320, 1e9])
def test_implausible_loss_is_rejected(setup, loss):
    agg = _aggregator(setup, [_client(setup, "a", 0.01)])
    agg.start_round(0)
    _rejected(agg, "a", _forge(setup, "a", header_changes={"loss": loss}), "bad-metadata")


def test_ciphertext_of_another_shape_or_an_aggregate_is_rejected(setup):
    ctx, keys, state, layout, plan, _ = setup
    n = int(plan.mask().sum())
    agg = _aggregator(setup, [_client(setup, "a", 0.01), _client(setup, "b", 0.01)])
    agg.start_round(0)
    reshaped = xcloud.encrypt_blocks(keys, np.zeros((2, n // 2), np.float32))
    _rejected(agg, "a", _forge(setup, "a", ct=reshaped), "bad-ciphertext")
    fresh = xcloud.encrypt_blocks(keys, np.zeros(n, np.float32))
    _rejected(agg, "b", _forge(setup, "b", ct=xcloud.aggregate([fresh], [0.5])), "bad-ciphertext")
    agg.receive("a", _fresh_msg(setup))
    out, summary = agg.finish_round()  # the round still completes
    assert summary.accepted == ["a"]


def test_a_client_cannot_forge_the_aggregate(setup):
    """Clients hold only the server's public key, so no client can sign an aggregate."""
    ctx, keys, state, layout, plan, _ = setup
    agg = _aggregator(setup, [_client(setup, "a", 0.01)])
    agg.start_round(0)
    agg.receive("a", _fresh_msg(setup))
    out, _ = agg.finish_round()
    forged = bytearray(out)
    forged[-70] ^= 1
    with pytest.raises(xcloud.IntegrityError, match="signature"):
        open_aggregate(bytes(forged), ctx=ctx, keys=keys, plan=plan, server_key=SERVER_PUB, round_id=0)


def test_a_signed_aggregate_with_nan_is_refused_by_the_clients(setup):
    """A faulty server's aggregate (NaN in the plain part) must not poison every cloud's model."""
    ctx, keys, state, layout, plan, _ = setup
    agg = _aggregator(setup, [_client(setup, "a", 0.01)])
    agg.start_round(0)
    agg.receive("a", _fresh_msg(setup))
    agg._plain[0] = np.full_like(agg._plain[0], np.nan)  # a bug on the server's side, after verification
    out, _ = agg.finish_round()
    with pytest.raises(xcloud.IntegrityError, match="NaN or Inf"):
        open_aggregate(out, ctx=ctx, keys=keys, plan=plan, server_key=SERVER_PUB, round_id=0)


def test_staleness_window_accepts_late_updates_once_per_client(setup):
    clients = [_client(setup, "a", 0.01), _client(setup, "b", 0.02)]
    agg = _aggregator(setup, clients)
    agg.start_round(3, max_staleness=1)
    _rejected(agg, "a", _fresh_msg(setup, round_id=1), "stale-round")  # two versions late
    report = agg.receive("a", _fresh_msg(setup, round_id=2))
    assert report.staleness == 1
    # A second update of the same client in the same aggregation would double its weight.
    _rejected(agg, "a", _fresh_msg(setup, round_id=3), "duplicate")
    agg.receive("b", _fresh_msg(setup, "b", round_id=3))
    _, summary = agg.finish_round()
    assert summary.accepted == ["a", "b"] and summary.weights[0] < summary.weights[1]
    # The aggregated (client, base round) pair can never come back, even inside the window.
    agg.start_round(3, max_staleness=1)
    _rejected(agg, "a", _fresh_msg(setup, round_id=2), "duplicate")
