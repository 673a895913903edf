"""Known answers: committed SHA-256 digests of derandomised keys and ciphertexts
(in the manner of Kyber's SHA256SUMS).

Everything below is deterministic: keys from ``keygen_derand(bytes(range(32)))``,
encryptions from ``encrypt_blocks_derand(..., seed=bytes(32 * [7]))`` of
``np.linspace(-1, 1, 5000)`` (two blocks of the default context, the second
partial), in the default context ``CkksContext()``.

IF ONE OF THESE DIGESTS CHANGES, the serialised format, the parameter
canonicalisation, the prime generation, the encoder or the randomness
derivation (ChaCha20 and AES-256-CTR streams and their nonces, the samplers)
has changed.
That breaks compatibility with stored keys and ciphertexts and must be a
deliberate, documented change (bump the format version), never a side
effect. Regenerate the literals only then, from a build you trust.

History (2026-12-01), two deliberate changes:
- wire version 2 expands the seed of a secret-key ciphertext with AES-256-CTR
  at ceil(bits/8) bytes per try instead of ChaCha20 at 8 bytes. The key
  digests did not change with it (keys keep ChaCha20, key format 1), and the
  public-key ciphertext rewritten as version 1 kept its version-1 digest;
- then the centred-binomial noise takes 6 keystream bytes per sample instead
  of 8 (ring/sampler.h). That changes every derandomised key and ciphertext
  (the noise differs), not any format: stored keys and ciphertexts still
  load and decrypt.

2026-12-02, one more, of the same kind: an encryption's secret randomness
(the noise, and the ephemeral u of a public-key encryption) is drawn from
AES-256-CTR (constant-time on every path) under a per-call key taken from the
master seed's ChaCha20 stream "XCN", instead of from ChaCha20 itself
(ckks/streams.h). Every derandomised ciphertext changed (was: secret-key
cb43d0c1..., public-key 227f7656..., as version 1 9c5df0f3..., aggregate
f32138f7..., compact aggregate 7db2d517..., full aggregate of seeded inputs
8b3fa2f6...); the keys, the formats and what a seed expands to did not, and
nobody regenerates the noise, so stored ciphertexts still read and decrypt.

The digests were computed once from the kernel as built by
``pip install .`` on x86-64 (gcc, -O3, no -march flags).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

import xcloud

KEY_SEED = bytes(range(32))
ENC_SEED = bytes(32 * [7])
ENC_SEED2 = bytes(32 * [8])

# SHA-256 of CkksContext().canonical_bytes(): the parameter fingerprint.
FINGERPRINT = "55a5742c8133269efa42079349a52f093dc4c4415641a5882287fda5fe53f9a5"
KEY_ID = "bc502d79f8ed8322f30f0253f557bb4c"
PUBLIC_KEY_SHA256 = "46c1d7a40e39a3ac6c77314b4b13d86f8e35508af8727cc5ff92ce39eb722628"
SECRET_KEY_SHA256 = "469c4ab21fce7dc592f95b00da53ead04232ff9c94778c579b6d91be80f18223"
SECRET_MODE_CT_SHA256 = "dcafbfdc3f6093039d771f36898f59cb0dfe593724898a1a2473af7acddd9172"
# Public-key mode: since 2026-12-02 the ephemeral ternary u takes one keystream byte per
# coefficient (sample_ternary_packed) instead of 8, which changed u, the noise after it and so
# every derandomised public-key ciphertext (was 953160d5..., v1 249985912..., aggregate
# 18fd1089...); the wire format and the keys are unchanged.
PUBLIC_MODE_CT_SHA256 = "caf1935d6422784dbef12095331575d069bcfb77f5c334926fb105039861ea91"
# The same public-key ciphertext written as wire version 1 (version field 1, checksum redone). With
# the version-2 change alone this was the digest committed for version 1 (bec0bf23...), i.e. no
# full-c1 message changed; the 6-byte noise words changed the noise, hence this value.
PUBLIC_MODE_CT_V1_SHA256 = "afa3e635f345fedf73059859a6f299df98eb5ee2320f8c58e71ce77450bed1d7"
# aggregate([secret-mode ct, public-mode ct], weights=[0.25, 0.75]): full c1 (a public-key input)
AGGREGATE_SHA256 = "e4c5a34e6cdbd9ec04220371aab793100a46216b557bb23e39b9c8ca60081ee0"
# aggregate([secret-mode ct, second secret-mode ct], weights=[0.25, -0.75]), the second
# encrypting x[::-1] ** 3 with seed bytes(32 * [8]): compact (seeded-sum) and full c1
COMPACT_AGGREGATE_SHA256 = "0448c5f4aaecbdcac0a7a7605f74181907322ef663c5e2af387594a7d47a6c66"
SEEDED_FULL_AGGREGATE_SHA256 = "ec38ebc8c07cede10e275861be91eccbbf476707483a6a5262fd1ffe40cdf874"

# Sizes in bytes (header 92 + 8 per dimension, checksum 32; default context:
# one packed polynomial is 2 primes x 4096 x 36 bits = 36,864 bytes).
PUBLIC_KEY_SIZE = 4 + 2 + 1 + 1 + 32 + 16 + 32 + 36_864 + 32  # 36,984
SECRET_KEY_SIZE = PUBLIC_KEY_SIZE + 4096 * 2 // 8  # 38,008
SECRET_MODE_CT_SIZE = 100 + 2 * (36_864 + 32) + 32  # 73,924
PUBLIC_MODE_CT_SIZE = 100 + 2 * (2 * 36_864) + 32  # 147,588
# K = 2 seeds per block: u32 K and 2 x 2 u64 weights after the shape, two seeds per block
COMPACT_AGGREGATE_SIZE = 100 + 4 + 2 * 2 * 8 + 2 * (36_864 + 2 * 32) + 32  # 74,024


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def as_version_1(data: bytes) -> bytes:
    """``data`` with its wire version field set to 1 and the trailing checksum recomputed."""
    body = data[:4] + (1).to_bytes(2, "little") + data[6:-32]
    return body + hashlib.sha256(body).digest()


@pytest.fixture(scope="module")
def kat() -> dict[str, object]:
    ctx = xcloud.CkksContext()
    keys = ctx.keygen_derand(KEY_SEED)
    x = np.linspace(-1.0, 1.0, 5000)
    secret_ct = xcloud.encrypt_blocks_derand(keys, x, seed=ENC_SEED)
    public_ct = xcloud.encrypt_blocks_derand(keys.public_only(), x, seed=ENC_SEED, mode="public")
    x2 = x[::-1] ** 3
    secret_ct2 = xcloud.encrypt_blocks_derand(keys, x2, seed=ENC_SEED2)
    return {
        "ctx": ctx,
        "keys": keys,
        "x": x,
        "secret_ct": secret_ct,
        "public_ct": public_ct,
        "aggregate": xcloud.aggregate([secret_ct, public_ct], [0.25, 0.75]),
        "compact_expected": 0.25 * x - 0.75 * x2,
        "compact": xcloud.aggregate([secret_ct, secret_ct2], [0.25, -0.75]),
        "seeded_full": xcloud.aggregate([secret_ct, secret_ct2], [0.25, -0.75], compact=False),
    }


def test_parameter_fingerprint(kat):
    assert kat["ctx"].fingerprint.hex() == FINGERPRINT
    assert sha256_hex(kat["ctx"].canonical_bytes()) == FINGERPRINT


def test_public_key_bytes(kat):
    data = kat["keys"].public_bytes()
    assert len(data) == PUBLIC_KEY_SIZE
    assert kat["keys"].key_id.hex() == KEY_ID
    assert sha256_hex(data) == PUBLIC_KEY_SHA256


def test_secret_key_bytes(kat):
    data = kat["keys"].secret_bytes()
    assert len(data) == SECRET_KEY_SIZE
    assert sha256_hex(data) == SECRET_KEY_SHA256


def test_secret_key_mode_ciphertext_bytes(kat):
    data = kat["secret_ct"].to_bytes()
    assert len(data) == SECRET_MODE_CT_SIZE
    assert sha256_hex(data) == SECRET_MODE_CT_SHA256


def test_public_key_mode_ciphertext_bytes(kat):
    data = kat["public_ct"].to_bytes()
    assert len(data) == PUBLIC_MODE_CT_SIZE
    assert sha256_hex(data) == PUBLIC_MODE_CT_SHA256


def test_public_key_mode_ciphertext_as_version_1_keeps_its_old_digest(kat):
    old = as_version_1(kat["public_ct"].to_bytes())
    assert sha256_hex(old) == PUBLIC_MODE_CT_V1_SHA256
    back = xcloud.CiphertextBlocks.from_bytes(kat["ctx"], old)
    assert back.to_bytes() == kat["public_ct"].to_bytes()


def test_secret_key_mode_ciphertext_as_version_1_is_refused(kat):
    with pytest.raises(xcloud.crypto.UnsupportedVersionError):
        xcloud.CiphertextBlocks.from_bytes(kat["ctx"], as_version_1(kat["secret_ct"].to_bytes()))


def test_aggregate_ciphertext_bytes(kat):
    data = kat["aggregate"].to_bytes()
    assert len(data) == PUBLIC_MODE_CT_SIZE
    assert sha256_hex(data) == AGGREGATE_SHA256


def test_compact_aggregate_ciphertext_bytes(kat):
    data = kat["compact"].to_bytes()
    assert kat["compact"].c1_form == "seeded-sum"
    assert len(data) == COMPACT_AGGREGATE_SIZE
    assert sha256_hex(data) == COMPACT_AGGREGATE_SHA256


def test_full_aggregate_of_seeded_inputs_bytes(kat):
    data = kat["seeded_full"].to_bytes()
    assert kat["seeded_full"].c1_form == "full"
    assert len(data) == PUBLIC_MODE_CT_SIZE
    assert sha256_hex(data) == SEEDED_FULL_AGGREGATE_SHA256


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_known_answers_do_not_depend_on_threads(kat, threads):
    keys, x = kat["keys"], kat["x"]
    secret = xcloud.encrypt_blocks_derand(keys, x, ENC_SEED, threads=threads)
    assert sha256_hex(secret.to_bytes()) == SECRET_MODE_CT_SHA256
    public = xcloud.encrypt_blocks_derand(keys, x, ENC_SEED, threads=threads, mode="public")
    assert sha256_hex(public.to_bytes()) == PUBLIC_MODE_CT_SHA256
    second = xcloud.encrypt_blocks_derand(keys, x[::-1] ** 3, ENC_SEED2, threads=threads)
    compact = xcloud.aggregate([secret, second], [0.25, -0.75], threads=threads)
    assert sha256_hex(compact.to_bytes()) == COMPACT_AGGREGATE_SHA256


def test_known_answer_objects_survive_a_reload(kat):
    """Keys and ciphertexts re-parsed from their bytes re-serialise to the same digests."""
    ctx = xcloud.CkksContext()
    keys = xcloud.KeySet.from_bytes(ctx, kat["keys"].secret_bytes())
    assert sha256_hex(keys.public_bytes()) == PUBLIC_KEY_SHA256
    assert sha256_hex(keys.secret_bytes()) == SECRET_KEY_SHA256
    for name, digest in [
        ("secret_ct", SECRET_MODE_CT_SHA256),
        ("aggregate", AGGREGATE_SHA256),
        ("compact", COMPACT_AGGREGATE_SHA256),
    ]:
        back = xcloud.CiphertextBlocks.from_bytes(ctx, kat[name].to_bytes())
        assert sha256_hex(back.to_bytes()) == digest


def test_known_answer_ciphertexts_decrypt_to_their_input(kat):
    """A sanity check on the pinned objects: digests of garbage would be worthless."""
    keys, x = kat["keys"], kat["x"]
    for name in ("secret_ct", "public_ct", "aggregate"):
        y = xcloud.decrypt_blocks(keys, kat[name])
        assert np.max(np.abs(y - x)) <= 2.0**-20, name
    y = xcloud.decrypt_blocks(keys, kat["compact"])
    assert y.tobytes() == xcloud.decrypt_blocks(keys, kat["seeded_full"]).tobytes()
    assert np.max(np.abs(y - kat["compact_expected"])) <= 2.0**-19
