"""The compact CKKS preset (one 47-bit prime) and exactly-applied (dyadic) aggregation weights."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from tiny_config import TINY as TINY_BASE

import xcloud
from xcloud.fl.simulation import FederatedRun

TINY = replace(TINY_BASE, probe_links=False)


@pytest.fixture(scope="module")
def compact_keys() -> xcloud.KeySet:
    return xcloud.CkksContext.preset("compact").keygen()


def test_presets_are_secure_and_distinct():
    default, compact = xcloud.CkksContext.preset("default"), xcloud.CkksContext.preset("compact")
    assert default.fingerprint == xcloud.CkksContext().fingerprint
    assert compact.fingerprint != default.fingerprint
    assert compact.literal.prime_bits == (47,) and compact.literal.scale_bits == 32
    with pytest.raises(ValueError, match="unknown CKKS preset"):
        xcloud.CkksContext.preset("tiny")


def test_compact_fresh_precision_and_wire_size(compact_keys):
    # Prepare: 200,000 values uniform in [-1, 1], float32 as updates are.
    x = np.random.default_rng(0).uniform(-1, 1, 200_000).astype(np.float32)
    # Execute
    ct = xcloud.encrypt_blocks(compact_keys, x)
    y = xcloud.decrypt_blocks(compact_keys, ct)
    # Assert: the fresh-precision target and 1.5x float32 on the wire.
    assert np.abs(y.astype(np.float64) - x).max() <= 2**-20
    assert ct.nbytes <= 1.5 * x.nbytes
    assert xcloud.CiphertextBlocks.from_bytes(compact_keys.ctx, ct.to_bytes()).nbytes == ct.nbytes


@pytest.mark.parametrize("preset, bits", [("default", 26), ("compact", 20)])
@pytest.mark.parametrize("k", [4, 16])
def test_dyadic_weights_are_applied_exactly(preset, bits, k):
    keys = xcloud.CkksContext.preset(preset).keygen()
    rng = np.random.default_rng(k)
    xs = [rng.uniform(-1, 1, 10_000) for _ in range(k)]
    cts = [xcloud.encrypt_blocks(keys, v) for v in xs]
    w = rng.dirichlet(np.ones(k))
    d = xcloud.dyadic_weights(cts, list(w))
    # A multiple of 2^-k for one k, summing exactly to 1, close to the asked weights.
    units = np.ldexp(np.array(d), 30)
    assert np.array_equal(units, np.rint(units))
    assert sum(d) == 1.0
    assert np.abs(np.array(d) - w).max() <= (2**-30 if preset == "default" else 2**-8) * k
    # The aggregate is the sum with exactly these weights, to the preset's precision.
    y = xcloud.decrypt_blocks(keys, xcloud.aggregate(cts, d))
    want = sum(di * x for di, x in zip(d, xs, strict=True))
    assert np.abs(y - want).max() <= 2.0**-bits


def test_compact_preset_refuses_weights_it_cannot_apply_exactly(compact_keys):
    cts = [xcloud.encrypt_blocks(compact_keys, np.full(100, 0.5)) for _ in range(3)]
    with pytest.raises(ValueError, match="fractional bits"):
        xcloud.aggregate(cts, [0.3, 0.3, 0.4])  # the kernel refuses the silent rounding ...
    d = xcloud.dyadic_weights(cts, [0.3, 0.3, 0.4])  # ... which dyadic_weights makes explicit
    assert np.allclose(xcloud.decrypt_blocks(compact_keys, xcloud.aggregate(cts, d)), 0.5, atol=2**-18)


@pytest.mark.parametrize(
    "weights, match", [([0.5], "one weight per ciphertext"), ([0.5, float("nan")], "finite"), ([1e30, 1.0], "overflow")]
)
def test_dyadic_weights_bad_input(compact_keys, weights, match):
    cts = [xcloud.encrypt_blocks(compact_keys, np.zeros(10)) for _ in range(2)]
    with pytest.raises(ValueError, match=match):
        xcloud.dyadic_weights(cts, weights)


def test_federated_round_with_the_compact_preset(tmp_path):
    plain = FederatedRun(replace(TINY, method="fedavg"), tmp_path / "a")
    enc = FederatedRun(replace(TINY, method="he", ckks="compact"), tmp_path / "b")
    mp, me = plain.run_round(0), enc.run_round(0)
    # One round: the models differ by the encryption noise and the weights' rounding to 2^-k only.
    diff = np.abs(plain.layout.flatten(plain.global_state) - enc.layout.flatten(enc.global_state)).max()
    assert diff < 2**-16
    mp, me = plain.run_round(1), enc.run_round(1)
    # Against the float32 bytes of the blocks (this tiny model fills 4 of its 5 blocks of 4096 values);
    # message headers add well under 1%.
    padded = -(-enc.layout.total // 4096) * 4096
    assert me.bytes_up <= 1.5 * 4 * padded * TINY.clouds * 1.01
    assert me.bytes_down <= 1.7 * 4 * padded * TINY.clouds  # the compact aggregate carries three seeds per block
    # Later rounds amplify such differences where Adam normalises near-zero gradients; learning is unchanged.
    assert me.val_loss == pytest.approx(mp.val_loss, rel=1e-3)
    assert sum(me.weights) == 1.0


def test_compact_preset_in_public_key_mode_matches_within_flooding_noise(tmp_path):
    plain = FederatedRun(replace(TINY, method="fedavg"), tmp_path / "a")
    pk = FederatedRun(replace(TINY, method="he", ckks="compact", key_mode="public"), tmp_path / "b")
    mp, me = plain.run_round(0), pk.run_round(0)
    assert not pk.clients[1].keys.has_secret
    diff = np.abs(plain.layout.flatten(plain.global_state) - pk.layout.flatten(pk.global_state)).max()
    assert diff < 2**-14  # the key holder's flooding noise (sigma 2^-20) and the dyadic weights
    padded = -(-pk.layout.total // 4096) * 4096
    assert me.bytes_up <= 3.0 * 4 * padded * TINY.clouds * 1.01  # two 47-bit polynomials: 2.94x float32
    assert me.val_loss == pytest.approx(mp.val_loss, rel=1e-4)


def test_a_secret_key_update_cannot_join_compact_public_key_ones(tmp_path):
    """The compact preset's public-key encryptions have scale 2^34, its secret-key ones 2^32: never summed."""
    from xcloud.fl.errors import UpdateRejected

    run = FederatedRun(replace(TINY, method="he", ckks="compact", key_mode="public"), tmp_path / "pk")
    full = FederatedRun(replace(TINY, method="he", ckks="compact"), tmp_path / "sk")
    run.server.start_round(0)
    msg0, _ = run.clients[0].fit(run.global_state, 0, seed=1)
    run.server.receive("cloud-0", msg0)
    # cloud-1 encrypts with the secret key (scale 2^32) under the run's key id and MAC key.
    rogue = full.clients[1]
    rogue.keys, rogue.mac_key, rogue.plan = run.keys, run.clients[1].mac_key, run.plan
    msg1, _ = rogue.fit(run.global_state, 0, seed=2)
    with pytest.raises(UpdateRejected, match="cannot join"):
        run.server.receive("cloud-1", msg1)
