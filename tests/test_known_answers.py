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

History: wire version 2 (2026-12-01) expands the seed of a secret-key
ciphertext with AES-256-CTR at ceil(bits/8) bytes per try instead of ChaCha20
at 8; the ciphertext digests below changed with it, deliberately. The key
digests did not (keys keep ChaCha20, key format 1), and the public-key
ciphertext, rewritten as version 1, still has its version-1 digest.

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
KEY_ID = "b3a60cf9bbbe9d9c0db097b0db58b408"
PUBLIC_KEY_SHA256 = "caea150ee9b283ef12b4dfb5e214d62fbac309b975521c80d1ee952772421333"
SECRET_KEY_SHA256 = "da37c8acf56210887b8c30e76446aae31f7bfcb8eed3c9f3ff7c75ea6003f52f"
SECRET_MODE_CT_SHA256 = "ded8af81578a1eeac9ef1681e60a19a4e9c20e3b7b744a8315872b1bcdb93d6b"
PUBLIC_MODE_CT_SHA256 = "7199f8163fa9e48bec2546e385c70253a284e36757023aa0e9c02daafc793566"
# The same public-key ciphertext written as wire version 1 (version field 1, checksum redone): the
# digest committed before version 2, so a full-c1 message did not change with the version.
PUBLIC_MODE_CT_V1_SHA256 = "bec0bf23fa25b6f59b8313ab900aa7b89aad02c65f763c85a20a93d7bf102986"
# aggregate([secret-mode ct, public-mode ct], weights=[0.25, 0.75]): full c1 (a public-key input)
AGGREGATE_SHA256 = "9cd3bb5b401bd03b314d30a07851d056281661d5791b020659077d32df9c6a48"
# aggregate([secret-mode ct, second secret-mode ct], weights=[0.25, -0.75]), the second
# encrypting x[::-1] ** 3 with seed bytes(32 * [8]): compact (seeded-sum) and full c1
COMPACT_AGGREGATE_SHA256 = "ab246897c29a17a3a2fec47441c35acce727827e101cc0614eb35d114283dfee"
SEEDED_FULL_AGGREGATE_SHA256 = "4421e67f1c2d23d33ee08553473d9f7ec57926c2ffc9da138a97cccca21ab2ea"

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
