"""Key files: saving, loading, permissions, and rejection of bad key bytes.

Key format, version 1 (cpp/src/ckks/keys.cpp), little-endian:

    0 "XCKY" | 4 u16 version | 6 u8 kind (1 public, 2 secret+public) | 7 u8 0
    8 fingerprint[32] | 40 key id[16] | 56 a seed[32]
    88 b: L polynomials, N residues each packed at bit_length(q_j) bits
    [kind 2: s, 2 bits per coefficient: 0 -> 0, 1 -> 1, 2 -> -1]
    last 32 bytes: SHA-256 of everything before
"""

from __future__ import annotations

import hashlib
import os
import stat

import numpy as np
import pytest

import xcloud

CHECKSUM = 32
OFF_VERSION, OFF_KIND, OFF_RESERVED, OFF_FINGERPRINT, OFF_KEY_ID, OFF_A_SEED, OFF_B = 4, 6, 7, 8, 40, 56, 88


def reseal(data: bytes | bytearray) -> bytes:
    body = bytes(data[:-CHECKSUM])
    return body + hashlib.sha256(body).digest()


def b_bytes(ctx: xcloud.CkksContext) -> int:
    return sum((ctx.n * q.bit_length() + 7) // 8 for q in ctx.primes)


def s_bytes(ctx: xcloud.CkksContext) -> int:
    return (ctx.n * 2 + 7) // 8


def secret_segment(ctx: xcloud.CkksContext, data: bytes) -> slice:
    start = OFF_B + b_bytes(ctx)
    return slice(start, start + s_bytes(ctx))


# -- save, load, permissions -------------------------------------------------


def test_save_and_load_public_and_secret_keys(small_ctx, small_keys, tmp_path):
    # Prepare
    x = np.linspace(-1.0, 1.0, 2500)
    ct = xcloud.encrypt_blocks(small_keys, x)
    # Execute
    small_keys.save_public(tmp_path / "key.pub")
    small_keys.save_secret(tmp_path / "key.sec")
    public = small_ctx.load_keys(tmp_path / "key.pub")
    secret = xcloud.KeySet.load(small_ctx, str(tmp_path / "key.sec"))
    # Assert
    assert public.has_secret is False and secret.has_secret is True
    assert public.key_id == secret.key_id == small_keys.key_id
    assert (tmp_path / "key.pub").read_bytes() == small_keys.public_bytes()
    assert (tmp_path / "key.sec").read_bytes() == small_keys.secret_bytes()
    assert xcloud.decrypt_blocks(secret, ct).tobytes() == xcloud.decrypt_blocks(small_keys, ct).tobytes()
    # a loaded public key encrypts for the original key holder
    y = xcloud.decrypt_blocks(small_keys, xcloud.encrypt_blocks(public, x))
    assert np.max(np.abs(y - x)) <= 2.0**-20


def test_secret_key_file_is_owner_only_and_public_file_is_0644(small_keys, tmp_path):
    # Prepare
    old_umask = os.umask(0)  # the modes must not depend on the caller's umask
    try:
        # Execute
        small_keys.save_secret(tmp_path / "key.sec")
        small_keys.save_public(tmp_path / "key.pub")
    finally:
        os.umask(old_umask)
    # Assert
    assert stat.S_IMODE((tmp_path / "key.sec").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "key.pub").stat().st_mode) == 0o644


def test_save_secret_refuses_to_overwrite(small_ctx, small_keys, tmp_path):
    # Prepare
    path = tmp_path / "key.sec"
    path.write_bytes(b"do not clobber")
    other = small_ctx.keygen()
    # Execute / Assert
    with pytest.raises(FileExistsError):
        other.save_secret(path)
    assert path.read_bytes() == b"do not clobber"
    small_keys.save_secret(tmp_path / "fresh.sec")
    with pytest.raises(FileExistsError):
        small_keys.save_secret(tmp_path / "fresh.sec")
    assert (tmp_path / "fresh.sec").read_bytes() == small_keys.secret_bytes()


def test_save_secret_does_not_follow_an_existing_symlink(small_keys, tmp_path):
    # Prepare: a link to a file the attacker wants overwritten
    target = tmp_path / "victim"
    target.write_bytes(b"original")
    link = tmp_path / "key.sec"
    link.symlink_to(target)
    # Execute / Assert
    with pytest.raises(FileExistsError):
        small_keys.save_secret(link)
    assert target.read_bytes() == b"original"


# -- the secret stays out of public bytes ------------------------------------


def test_public_bytes_never_contain_the_secret(small_ctx, small_keys):
    # Prepare
    secret_bytes = small_keys.secret_bytes()
    packed_secret = secret_bytes[secret_segment(small_ctx, secret_bytes)]
    # Execute
    public_bytes = small_keys.public_bytes()
    public_only = small_keys.public_only()
    # Assert
    assert len(public_bytes) == len(secret_bytes) - s_bytes(small_ctx)
    assert public_bytes[OFF_KIND] == 1 and secret_bytes[OFF_KIND] == 2
    assert packed_secret not in public_bytes
    assert packed_secret[:64] not in public_bytes
    assert public_only.has_secret is False
    assert public_only.public_bytes() == public_bytes
    assert xcloud.KeySet.from_bytes(small_ctx, public_bytes).has_secret is False
    assert small_keys.has_secret is True  # public_only() leaves the original intact


def test_public_only_keys_cannot_decrypt_or_export_a_secret(small_keys):
    # Prepare
    public = small_keys.public_only()
    ct = xcloud.encrypt_blocks(public, np.zeros(10))
    # Execute / Assert
    with pytest.raises(ValueError, match="no secret key"):
        xcloud.decrypt_blocks(public, ct)
    with pytest.raises(ValueError):
        public.secret_bytes()


def test_keys_loaded_from_public_bytes_cannot_decrypt(small_ctx, small_keys):
    loaded = xcloud.KeySet.from_bytes(small_ctx, small_keys.public_bytes())
    with pytest.raises(ValueError):
        xcloud.decrypt_blocks(loaded, xcloud.encrypt_blocks(small_keys, np.zeros(10)))


# -- tampered, truncated and foreign key bytes -------------------------------


@pytest.mark.parametrize("kind", ["public", "secret"])
def test_tampered_key_bytes_are_rejected(small_ctx, small_keys, kind):
    # Prepare
    data = small_keys.public_bytes() if kind == "public" else small_keys.secret_bytes()
    rng = np.random.default_rng(21)
    positions = list(range(OFF_B + 8)) + list(rng.integers(OFF_B, len(data), size=200)) + [len(data) - 1]
    # Execute / Assert
    for pos in positions:
        buf = bytearray(data)
        buf[pos] ^= 1 << int(rng.integers(8))
        with pytest.raises(xcloud.IntegrityError):
            xcloud.KeySet.from_bytes(small_ctx, bytes(buf))
            pytest.fail(f"accepted a flip at byte {pos}")


@pytest.mark.parametrize("kind", ["public", "secret"])
def test_truncated_or_extended_key_bytes_are_rejected(small_ctx, small_keys, kind):
    # Prepare
    data = small_keys.public_bytes() if kind == "public" else small_keys.secret_bytes()
    lengths = [0, 1, 4, 6, 8, 40, 56, 88, 149, 150, 151, OFF_B + b_bytes(small_ctx), len(data) - 33, len(data) - 1]
    # Execute / Assert
    for n in lengths:
        for variant in (data[:n], reseal(data[:n]) if n >= CHECKSUM else data[:n]):
            with pytest.raises(xcloud.IntegrityError):
                xcloud.KeySet.from_bytes(small_ctx, variant)
                pytest.fail(f"accepted {n} bytes")
    for extra in (b"\0", b"x" * 100):
        with pytest.raises(xcloud.IntegrityError):
            xcloud.KeySet.from_bytes(small_ctx, data + extra)
        with pytest.raises(xcloud.IntegrityError):
            xcloud.KeySet.from_bytes(small_ctx, reseal(data[:-CHECKSUM] + extra + bytes(CHECKSUM)))


@pytest.mark.parametrize(
    ("what", "offset", "value"),
    [
        ("magic", 0, ord("Y")),
        ("version", OFF_VERSION, 2),
        ("kind 0", OFF_KIND, 0),
        ("kind 3", OFF_KIND, 3),
        ("reserved byte", OFF_RESERVED, 1),
        ("fingerprint", OFF_FINGERPRINT + 5, 0xAA),
        ("key id", OFF_KEY_ID, 0x5A),
        ("a seed", OFF_A_SEED + 3, 0x33),
        ("b", OFF_B + 100, 0x01),
    ],
)
@pytest.mark.parametrize("kind", ["public", "secret"])
def test_inconsistent_key_bytes_with_valid_checksum_are_rejected(small_ctx, small_keys, kind, what, offset, value):
    # Prepare
    data = small_keys.public_bytes() if kind == "public" else small_keys.secret_bytes()
    buf = bytearray(data)
    buf[offset] = value if buf[offset] != value else value ^ 0xFF
    # Execute / Assert
    with pytest.raises(xcloud.IntegrityError):
        xcloud.KeySet.from_bytes(small_ctx, reseal(buf))


def test_kind_switched_between_public_and_secret_is_rejected(small_ctx, small_keys):
    # Prepare
    public, secret = bytearray(small_keys.public_bytes()), bytearray(small_keys.secret_bytes())
    public[OFF_KIND], secret[OFF_KIND] = 2, 1
    # Execute / Assert: a "secret" file without a secret, a "public" file with trailing secret bytes
    with pytest.raises(xcloud.IntegrityError):
        xcloud.KeySet.from_bytes(small_ctx, reseal(public))
    with pytest.raises(xcloud.IntegrityError):
        xcloud.KeySet.from_bytes(small_ctx, reseal(secret))


def test_secret_key_swapped_for_another_keys_secret_is_rejected(small_ctx, small_keys):
    # Prepare: same context, another key pair; move its secret into our key file
    mine = bytearray(small_keys.secret_bytes())
    theirs = small_ctx.keygen().secret_bytes()
    seg = secret_segment(small_ctx, theirs)
    mine[seg] = theirs[seg]
    # Execute / Assert
    with pytest.raises(xcloud.IntegrityError, match="does not match"):
        xcloud.KeySet.from_bytes(small_ctx, reseal(mine))


@pytest.mark.parametrize("fill", ["zero secret", "negated secret", "one coefficient changed", "code 3"])
def test_altered_secret_part_is_rejected(small_ctx, small_keys, fill):
    # Prepare
    data = bytearray(small_keys.secret_bytes())
    seg = secret_segment(small_ctx, data)
    packed = bytearray(data[seg])
    if fill == "zero secret":
        packed = bytearray(len(packed))
    elif fill == "negated secret":  # codes 1 <-> 2, i.e. s -> -s
        codes = np.unpackbits(np.frombuffer(bytes(packed), dtype=np.uint8), bitorder="little").reshape(-1, 2)
        codes = codes[:, ::-1].copy()
        packed = bytearray(np.packbits(codes.reshape(-1), bitorder="little").tobytes())
    elif fill == "one coefficient changed":
        packed[0] = (packed[0] & ~0x03) | ((packed[0] & 0x03) + 1) % 3
    else:
        packed[0] |= 0x03
    assert bytes(packed) != bytes(data[seg])
    data[seg] = packed
    # Execute / Assert
    with pytest.raises(xcloud.IntegrityError):
        xcloud.KeySet.from_bytes(small_ctx, reseal(data))


def test_public_part_swapped_under_our_secret_is_rejected(small_ctx, small_keys):
    # Prepare: their key id, a seed and b with our secret
    mine = bytearray(small_keys.secret_bytes())
    theirs = small_ctx.keygen().secret_bytes()
    pub = slice(OFF_KEY_ID, OFF_B + b_bytes(small_ctx))
    mine[pub] = theirs[pub]
    # Execute / Assert
    with pytest.raises(xcloud.IntegrityError):
        xcloud.KeySet.from_bytes(small_ctx, reseal(mine))


@pytest.mark.parametrize("kind", ["public", "secret"])
def test_keys_from_another_context_are_rejected(small_ctx, kind):
    # Prepare: same ring layout (N = 1024, primes 36/36), different max_value
    other_ctx = xcloud.CkksContext.insecure(log_n=10, max_value=2.0)
    other = other_ctx.keygen()
    data = other.public_bytes() if kind == "public" else other.secret_bytes()
    # Execute / Assert
    with pytest.raises(xcloud.IntegrityError, match="fingerprint"):
        xcloud.KeySet.from_bytes(small_ctx, data)
    with pytest.raises(xcloud.IntegrityError):
        xcloud.KeySet.from_bytes(xcloud.CkksContext(), data)


@pytest.mark.parametrize("bad", [5, 10**12, None, "key", [1, 2]], ids=["int", "huge-int", "None", "str", "list"])
def test_key_bytes_of_a_wrong_type_are_a_type_error(small_ctx, bad):
    """bytes(10**12) would try to allocate a terabyte of zeros before any check."""
    with pytest.raises(TypeError, match="key bytes must be"):
        xcloud.KeySet.from_bytes(small_ctx, bad)


def test_key_bytes_survive_a_fresh_context_object(small_ctx, small_keys):
    """Equal parameters give an equal fingerprint: keys load into a newly built context."""
    # Prepare
    ctx2 = xcloud.CkksContext.insecure(log_n=10)
    # Execute
    keys2 = xcloud.KeySet.from_bytes(ctx2, small_keys.secret_bytes())
    # Assert
    assert ctx2 == small_ctx and keys2.key_id == small_keys.key_id
    ct = xcloud.encrypt_blocks(keys2, np.full(5, 0.25))
    assert np.max(np.abs(xcloud.decrypt_blocks(small_keys, ct) - 0.25)) <= 2.0**-20


# -- keys and ciphertexts that do not belong together -------------------------


@pytest.mark.parametrize("mode", ["secret", "public"])
def test_decrypting_with_another_key_pair_is_refused(small_ctx, small_keys, mode):
    # Prepare
    ct = xcloud.encrypt_blocks(small_keys, np.zeros(100), mode=mode)
    other = small_ctx.keygen()
    # Execute / Assert
    with pytest.raises(ValueError, match="another key"):
        xcloud.decrypt_blocks(other, ct)


def test_decrypting_with_keys_of_another_context_is_refused(small_keys):
    ct = xcloud.encrypt_blocks(small_keys, np.zeros(100))
    other = xcloud.CkksContext.insecure(log_n=10, max_value=2.0).keygen()
    with pytest.raises(ValueError, match="parameter set"):
        xcloud.decrypt_blocks(other, ct)


def test_aggregating_ciphertexts_of_different_keys_is_refused(small_ctx, small_keys):
    # Prepare
    a = xcloud.encrypt_blocks(small_keys, np.zeros(100))
    b = xcloud.encrypt_blocks(small_ctx.keygen(), np.zeros(100))
    # Execute / Assert
    with pytest.raises(ValueError, match="different keys"):
        xcloud.aggregate([a, b])
    with pytest.raises(ValueError, match="different keys"):
        xcloud.add(a, b)


def test_aggregating_ciphertexts_of_different_contexts_is_refused(small_keys):
    # Prepare
    a = xcloud.encrypt_blocks(small_keys, np.zeros(100))
    b = xcloud.encrypt_blocks(xcloud.CkksContext.insecure(log_n=10, max_value=2.0).keygen(), np.zeros(100))
    c = xcloud.encrypt_blocks(xcloud.CkksContext().keygen(), np.zeros(100))
    # Execute / Assert
    for other in (b, c):
        with pytest.raises(ValueError, match="parameter sets"):
            xcloud.aggregate([a, other], [0.5, 0.5])


def test_derandomised_keys_are_reproducible_and_distinct(small_ctx):
    # Execute
    k1 = small_ctx.keygen_derand(bytes(32))
    k2 = small_ctx.keygen_derand(bytes(32))
    k3 = small_ctx.keygen_derand(bytes(31) + b"\1")
    # Assert
    assert k1.secret_bytes() == k2.secret_bytes()
    assert k1.key_id != k3.key_id and k1.public_bytes() != k3.public_bytes()
    assert small_ctx.keygen().key_id != small_ctx.keygen().key_id
    with pytest.raises(ValueError):
        small_ctx.keygen_derand(bytes(31))
