"""Uniformity meter: ciphertext coefficients and bytes pass a chi-square test, plain float32 updates fail it."""

from __future__ import annotations

import numpy as np
import pytest

import xcloud
from xcloud.privacy.leakage import bytes_uniformity, chi_square_uniform, pseudo_values, residue_uniformity


@pytest.fixture(scope="module")
def update() -> np.ndarray:
    # A plain model update: small float32 values, as the clients send them.
    return np.random.default_rng(7).normal(0, 1e-3, 200_000).astype(np.float32)


def test_ciphertext_residues_are_uniform(default_ctx, update):
    keys = default_ctx.keygen_derand(bytes(range(32)))
    ct = xcloud.encrypt_blocks_derand(keys, update, bytes(range(32, 64)))
    test = residue_uniformity(ct.c0_view(), default_ctx.primes)
    assert test.uniform and test.p_value > 0.001
    assert test.samples == ct.c0_view().size


def test_ciphertext_bytes_are_uniform_and_float32_bytes_are_not(default_ctx, update):
    keys = default_ctx.keygen_derand(bytes(range(32)))
    ct = xcloud.encrypt_blocks_derand(keys, update, bytes(range(32, 64)))
    assert bytes_uniformity(ct.to_bytes()).uniform
    plain = bytes_uniformity(update.tobytes())
    assert not plain.uniform and plain.p_value < 1e-12


def test_residue_test_rejects_structured_residues(default_ctx):
    q = default_ctx.primes
    skewed = np.zeros((2, len(q), default_ctx.n), dtype=np.uint64)
    skewed[:, :, ::2] = 5  # half the coefficients at one value
    assert not residue_uniformity(skewed, q).uniform


def test_pseudo_values_are_centred_and_bounded(default_ctx, update):
    keys = default_ctx.keygen_derand(bytes(range(32)))
    ct = xcloud.encrypt_blocks_derand(keys, update[:5000], bytes(range(32, 64)))
    v = pseudo_values(ct.c0_view(), default_ctx.primes[0], ct.size)
    assert v.shape == (5000,) and v.min() >= -0.5 and v.max() < 0.5
    assert abs(float(v.mean())) < 0.02


def test_bad_input_raises_value_error(default_ctx):
    with pytest.raises(ValueError, match="non-empty"):
        residue_uniformity(np.zeros((0, 2, 4), np.uint64), default_ctx.primes)
    with pytest.raises(ValueError, match="prime rows"):
        residue_uniformity(np.zeros((1, 3, 4096), np.uint64), default_ctx.primes)
    with pytest.raises(ValueError, match="not below"):
        residue_uniformity(np.full((1, 2, 4096), 2**40, np.uint64), default_ctx.primes)
    with pytest.raises(ValueError, match="too few"):
        bytes_uniformity(b"abc")
    with pytest.raises(ValueError, match="no bytes"):
        bytes_uniformity(b"")
    with pytest.raises(ValueError, match="two bins"):
        chi_square_uniform(np.array([3]))
    with pytest.raises(ValueError, match="fewer than"):
        pseudo_values(np.zeros((1, 2, 8), np.uint64), 17, 9)
