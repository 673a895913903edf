"""Known-answer tests for the ChaCha20, AES-256-CTR and SHA-256 primitives of the kernel.

AES-256-CTR expands the public seed of a secret-key ciphertext (wire version
2); it is checked against NIST SP 800-38A F.5.5 and OpenSSL on each of its
implementations (portable, AES-NI, VAES where the CPU has them). A stream for
a secret key (noise) takes the constant-time portable path instead of the
table one; it, its key schedule and its block function are checked the same
way (and against FIPS 197 C.3 and A.3).

ChaCha20 expands every seed into key material and encryption noise, and
SHA-256 makes the parameter fingerprints and wire checksums, so both are
checked against their published vectors (RFC 8439, FIPS 180-4) and, byte for
byte, against independent implementations (OpenSSL through ``cryptography``,
and :mod:`hashlib`).
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st
from vectors_primitives import (
    AES256_BLOCK_VECTOR,
    AES256_CTR_VECTOR,
    AES256_KEY_EXPANSION_VECTOR,
    CHACHA20_BLOCK_VECTORS,
    CHACHA20_ENCRYPT_VECTORS,
    SHA256_VECTORS,
)

from xcloud._native import testing

LAST_COUNTER = 2**32 - 1


def openssl_chacha20_keystream(key: bytes, nonce: bytes, counter: int, n: int) -> bytes:
    """ChaCha20 keystream from OpenSSL; its 16-byte nonce is LE32 counter || 12-byte nonce."""
    full_nonce = counter.to_bytes(4, "little") + nonce
    encryptor = Cipher(algorithms.ChaCha20(key, full_nonce), mode=None).encryptor()
    return encryptor.update(bytes(n)) + encryptor.finalize()


# -- ChaCha20 block function ----------------------------------------------------


@pytest.mark.parametrize("vec", CHACHA20_BLOCK_VECTORS, ids=lambda v: f"counter{v['counter']}-{v['key'][:8]}")
def test_chacha20_block_matches_rfc8439_vectors(vec: dict[str, Any]) -> None:
    # Prepare
    key, nonce = bytes.fromhex(vec["key"]), bytes.fromhex(vec["nonce"])
    # Execute
    block = testing.chacha20_block(key, vec["counter"], nonce)
    # Assert
    assert block.hex() == vec["block"]


def test_chacha20_block_at_last_counter_matches_openssl() -> None:
    # Prepare: the largest 32-bit counter, where an off-by-one in the state layout would show.
    key, nonce = bytes(range(32)), bytes(range(100, 112))
    # Execute
    block = testing.chacha20_block(key, LAST_COUNTER, nonce)
    # Assert
    assert block == openssl_chacha20_keystream(key, nonce, LAST_COUNTER, 64)


@pytest.mark.parametrize(("key_len", "nonce_len"), [(31, 12), (33, 12), (32, 11), (32, 16)])
def test_chacha20_block_rejects_wrong_key_or_nonce_length(key_len: int, nonce_len: int) -> None:
    # Prepare
    key, nonce = bytes(key_len), bytes(nonce_len)
    # Execute / Assert
    with pytest.raises(ValueError, match="32 bytes"):
        testing.chacha20_block(key, 0, nonce)


# -- ChaCha20 keystream reader ------------------------------------------------------


@pytest.mark.parametrize("vec", CHACHA20_ENCRYPT_VECTORS, ids=["rfc8439-2.4.2"])
def test_chacha20_stream_encrypts_rfc8439_vector(vec: dict[str, Any]) -> None:
    # Prepare
    key, nonce = bytes.fromhex(vec["key"]), bytes.fromhex(vec["nonce"])
    plaintext = bytes.fromhex(vec["plaintext"])
    # Execute
    keystream = testing.chacha20_stream(key, nonce, vec["counter"], len(plaintext))
    ciphertext = bytes(p ^ k for p, k in zip(plaintext, keystream, strict=True))
    # Assert
    assert ciphertext.hex() == vec["ciphertext"]


@pytest.mark.parametrize("n", [0, 1, 7, 8, 63, 64, 65, 255, 256, 257, 1000])
def test_chacha20_stream_is_concatenated_blocks(n: int) -> None:
    # Prepare: lengths around the block (64) and buffer (4 blocks = 256) sizes.
    key, nonce, counter = bytes(range(1, 33)), bytes(range(12)), 7
    blocks = b"".join(testing.chacha20_block(key, counter + b, nonce) for b in range(n // 64 + 1))
    # Execute
    stream = testing.chacha20_stream(key, nonce, counter, n)
    # Assert
    assert stream == blocks[:n]


@settings(deadline=None, max_examples=40)
@given(
    key=st.binary(min_size=32, max_size=32),
    nonce=st.binary(min_size=12, max_size=12),
    counter=st.integers(min_value=0, max_value=2**32 - 64),
    n=st.integers(min_value=0, max_value=3000),
)
def test_chacha20_stream_matches_openssl(key: bytes, nonce: bytes, counter: int, n: int) -> None:
    # Prepare: counters stay at least 63 blocks below the wrap (n <= 3000 bytes < 47 blocks),
    # so OpenSSL's carry behaviour at 2^32 never matters.
    expected = openssl_chacha20_keystream(key, nonce, counter, n)
    # Execute
    stream = testing.chacha20_stream(key, nonce, counter, n)
    # Assert
    assert stream == expected


@pytest.mark.parametrize("blocks_left", [1, 2, 3, 4, 5])
def test_chacha20_stream_reaches_the_last_block_without_wrapping(blocks_left: int) -> None:
    # Prepare: a start counter with fewer than a full 4-block buffer left before 2^32.
    key, nonce = bytes(range(32)), bytes(12)
    counter = 2**32 - blocks_left
    expected = b"".join(testing.chacha20_block(key, counter + b, nonce) for b in range(blocks_left))
    # Execute
    stream = testing.chacha20_stream(key, nonce, counter, 64 * blocks_left)
    # Assert
    assert stream == expected


@pytest.mark.parametrize("blocks_left", [1, 3, 5])
def test_chacha20_stream_refuses_to_wrap_the_block_counter(blocks_left: int) -> None:
    # Prepare: one byte more than the blocks left before the 32-bit counter wraps.
    key, nonce = bytes(range(32)), bytes(12)
    counter = 2**32 - blocks_left
    # Execute / Assert (std::length_error becomes ValueError)
    with pytest.raises(ValueError, match="wrap"):
        testing.chacha20_stream(key, nonce, counter, 64 * blocks_left + 1)


@pytest.mark.parametrize(("key_len", "nonce_len"), [(16, 12), (32, 8)])
def test_chacha20_stream_rejects_wrong_key_or_nonce_length(key_len: int, nonce_len: int) -> None:
    # Prepare
    key, nonce = bytes(key_len), bytes(nonce_len)
    # Execute / Assert
    with pytest.raises(ValueError, match="32 bytes"):
        testing.chacha20_stream(key, nonce, 0, 64)


# -- SHA-256 ----------------------------------------------------------------------


@pytest.mark.parametrize(("message", "digest"), SHA256_VECTORS, ids=["abc", "empty", "448-bit", "million-a"])
def test_sha256_matches_fips180_vectors(message: bytes, digest: str) -> None:
    # Prepare (the vectors)
    # Execute
    out = testing.sha256(message)
    # Assert
    assert out.hex() == digest


def test_sha256_matches_hashlib_across_padding_boundaries() -> None:
    # Prepare: every length from 0 to 200 bytes covers the 55/56/64-byte padding
    # cases of one, two and three blocks.
    messages = [bytes((7 * i + length) % 256 for i in range(length)) for length in range(201)]
    # Execute
    digests = [testing.sha256(m) for m in messages]
    # Assert
    assert digests == [hashlib.sha256(m).digest() for m in messages]


# -- AES-256-CTR (public seed expansion) --------------------------------------------------

# NIST SP 800-38A, F.5.5 CTR-AES256.Encrypt.
SP800_38A_KEY = bytes.fromhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
SP800_38A_COUNTER = bytes.fromhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
SP800_38A_PLAIN = bytes.fromhex(
    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
)
SP800_38A_CIPHER = bytes.fromhex(
    "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5"
    "2b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6"
)


def aes_paths() -> list[str]:
    """The AES implementations this machine can run: always the portable one, plus the active fast one."""
    before = testing.aes256_force_portable(False)
    fast = testing.aes256_ctr_path()
    testing.aes256_force_portable(before)
    return ["portable"] + ([fast] if fast != "portable" else [])


def keystream_on(path: str, key: bytes, counter_block: bytes, n: int) -> bytes:
    before = testing.aes256_force_portable(path == "portable")
    try:
        assert testing.aes256_ctr_path() == path
        return testing.aes256_ctr_keystream(key, counter_block, n)
    finally:
        testing.aes256_force_portable(before)


@pytest.mark.parametrize("path", aes_paths())
def test_aes256_ctr_matches_sp800_38a(path: str) -> None:
    ks = keystream_on(path, SP800_38A_KEY, SP800_38A_COUNTER, 64)
    assert bytes(a ^ b for a, b in zip(ks, SP800_38A_PLAIN, strict=True)) == SP800_38A_CIPHER


def test_aes256_ctr_refuses_to_wrap_its_32_bit_counter() -> None:
    last = bytes(12) + (2**32 - 1).to_bytes(4, "big")
    assert len(testing.aes256_ctr_keystream(SP800_38A_KEY, last, 16)) == 16
    with pytest.raises((ValueError, OverflowError, RuntimeError)):
        testing.aes256_ctr_keystream(SP800_38A_KEY, last, 17)


# -- AES-256 for secret keys (the constant-time portable path) ----------------------------


def secret_aes_paths() -> list[str]:
    """The paths a secret-key stream can take here: the constant-time portable one, the active fast one,
    and AES-NI as well where VAES is the fast one."""
    before = testing.aes256_force_portable(False)
    fast = testing.aes256_ctr_path_for("secret")
    testing.aes256_force_portable(before)
    return ["portable-ct"] + ([fast] if fast != "portable-ct" else []) + (["aes-ni"] if fast == "vaes" else [])


def secret_keystream_on(path: str, key: bytes, counter_block: bytes, n: int) -> bytes:
    portable = testing.aes256_force_portable(path == "portable-ct")
    ni = testing.aes256_force_ni(path == "aes-ni")
    try:
        assert testing.aes256_ctr_path_for("secret") == path
        return testing.aes256_ctr_keystream_for(key, counter_block, n, "secret")
    finally:
        testing.aes256_force_ni(ni)
        testing.aes256_force_portable(portable)


@pytest.mark.parametrize(
    ("use", "path"),
    [pytest.param("public", p, id=f"public-{p}") for p in aes_paths()]
    + [pytest.param("secret", p, id=f"secret-{p}") for p in secret_aes_paths()],
)
@settings(max_examples=25, deadline=None)
@given(
    key=st.binary(min_size=32, max_size=32),
    prefix=st.binary(min_size=12, max_size=12),
    start=st.integers(0, 2**32 - 4096),
    n=st.integers(0, 5000),
)
def test_aes256_ctr_matches_openssl(use: str, path: str, key: bytes, prefix: bytes, start: int, n: int) -> None:
    """Every AES-256-CTR path of either key use against OpenSSL, on random keys, counters and lengths."""
    counter_block = prefix + start.to_bytes(4, "big")
    enc = Cipher(algorithms.AES(key), modes.CTR(counter_block)).encryptor()
    stream = keystream_on if use == "public" else secret_keystream_on
    assert stream(path, key, counter_block, n) == enc.update(bytes(n)) + enc.finalize()


@pytest.mark.parametrize("impl", ["table", "ct"])
def test_aes256_block_matches_fips197_c3(impl: str) -> None:
    # Prepare
    vec = AES256_BLOCK_VECTOR
    # Execute
    out = testing.aes256_encrypt_block(bytes.fromhex(vec["key"]), bytes.fromhex(vec["plaintext"]), impl)
    # Assert
    assert out.hex() == vec["ciphertext"]


@pytest.mark.parametrize("impl", ["table", "ct"] + (["aes-ni"] if "aes-ni" in testing.aes256_ctr_impls() else []))
def test_aes256_key_expansion_matches_fips197_a3(impl: str) -> None:
    # Prepare
    key = bytes.fromhex(AES256_KEY_EXPANSION_VECTOR["key"])
    # Execute
    rk = testing.aes256_expand_key(key, impl)
    # Assert: the key itself, then the last four words of the schedule.
    assert len(rk) == 240 and rk[:32] == key
    assert rk[-16:].hex() == AES256_KEY_EXPANSION_VECTOR["last_words"]


@pytest.mark.parametrize("path", secret_aes_paths())
def test_aes256_ctr_secret_matches_sp800_38a(path: str) -> None:
    # Prepare
    vec = AES256_CTR_VECTOR
    key, counter_block = bytes.fromhex(vec["key"]), bytes.fromhex(vec["counter_block"])
    plain = bytes.fromhex(vec["plaintext"])
    # Execute
    ks = secret_keystream_on(path, key, counter_block, len(plain))
    # Assert
    assert bytes(a ^ b for a, b in zip(ks, plain, strict=True)).hex() == vec["ciphertext"]


@pytest.mark.parametrize("path", secret_aes_paths())
def test_aes256_ctr_secret_refuses_to_wrap_its_32_bit_counter(path: str) -> None:
    last = bytes(12) + (2**32 - 1).to_bytes(4, "big")
    assert len(secret_keystream_on(path, SP800_38A_KEY, last, 16)) == 16
    with pytest.raises((ValueError, OverflowError, RuntimeError)):
        secret_keystream_on(path, SP800_38A_KEY, last, 17)
