"""The constant-time portable AES-256 (cpp/src/ring/aes256_ct.cpp) against the other implementations.

A stream constructed for a secret key (AesKeyUse::kSecret) takes VAES or AES-NI where it can and
the bitsliced constant-time path otherwise (XCLOUD_FORCE_SCALAR=1, set_force_scalar, or
aes256_force_portable); a public one takes the table reference instead. All four kernels must
give the same keystream bytes, and the bitsliced S-box and key schedule the table's bytes. The
published vectors are in test_primitives_kat.py; here: the whole S-box, random keys and counters,
every length from 0 to 5000 bytes somewhere, counters at the 32-bit wrap, and the dispatch.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from xcloud._native import testing as T

IMPLS = T.aes256_ctr_impls()  # "table", "ct", and "aes-ni" / "vaes" where the CPU has them
LAST = 2**32 - 1


@pytest.fixture(autouse=True)
def _restore_dispatch() -> Iterator[None]:
    scalar = T.set_force_scalar(False)
    T.set_force_scalar(scalar)
    portable = T.aes256_force_portable(False)
    T.aes256_force_portable(portable)
    ni = T.aes256_force_ni(False)
    T.aes256_force_ni(ni)
    yield
    T.set_force_scalar(scalar)
    T.aes256_force_portable(portable)
    T.aes256_force_ni(ni)


def python_sbox() -> bytes:
    """The S-box from its definition: the inverse in GF(2^8) mod x^8 + x^4 + x^3 + x + 1, then the affine map."""

    def mul(a: int, b: int) -> int:
        r = 0
        while b:
            if b & 1:
                r ^= a
            a = (a << 1) ^ (0x11B if a & 0x80 else 0)
            b >>= 1
        return r

    out = []
    for x in range(256):
        inv = next((y for y in range(1, 256) if mul(x, y) == 1), 0)
        s = 0x63
        for i in range(8):
            bit = (inv >> i) ^ (inv >> ((i + 4) % 8)) ^ (inv >> ((i + 5) % 8))
            bit ^= (inv >> ((i + 6) % 8)) ^ (inv >> ((i + 7) % 8))
            s ^= (bit & 1) << i
        out.append(s)
    return bytes(out)


def openssl_ctr(key: bytes, counter_block: bytes, n: int) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.CTR(counter_block)).encryptor()
    return enc.update(bytes(n)) + enc.finalize()


# -- S-box and key schedule ----------------------------------------------------------------


def test_ct_sbox_equals_the_table_sbox_on_all_256_inputs() -> None:
    # Prepare / Execute
    ct, table = T.aes256_sbox("ct"), T.aes256_sbox("table")
    # Assert: equal to each other and to the definition (0 -> 0x63, 1 -> 0x7c, 0x53 -> 0xed of FIPS 197).
    assert ct == table == python_sbox()
    assert (ct[0], ct[1], ct[0x53]) == (0x63, 0x7C, 0xED)


@settings(max_examples=60, deadline=None)
@given(key=st.binary(min_size=32, max_size=32))
def test_key_schedules_agree_on_random_keys(key: bytes) -> None:
    # Prepare / Execute
    impls = ["table", "ct"] + (["aes-ni"] if "aes-ni" in IMPLS else [])
    schedules = {impl: T.aes256_expand_key(key, impl) for impl in impls}
    # Assert
    assert len(set(schedules.values())) == 1, {k: v[:16].hex() for k, v in schedules.items()}


@pytest.mark.parametrize("key", [bytes(32), b"\xff" * 32, bytes(range(32))])
def test_ct_block_equals_table_block_on_edge_keys(key: bytes) -> None:
    # Prepare: all-zero and all-one keys and blocks (S-box input 0, whose "inverse" is 0 by definition).
    for block in (bytes(16), b"\xff" * 16, bytes(range(16))):
        # Execute / Assert
        assert T.aes256_encrypt_block(key, block, "ct") == T.aes256_encrypt_block(key, block, "table")


# -- the kernels, block by block -------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    key=st.binary(min_size=32, max_size=32),
    prefix=st.binary(min_size=12, max_size=12),
    ctr=st.one_of(st.integers(0, LAST), st.integers(LAST - 320, LAST)),
    blocks=st.integers(0, 313),
)
def test_ctr_kernels_agree_on_random_keys_and_counters(key: bytes, prefix: bytes, ctr: int, blocks: int) -> None:
    # Prepare: up to 313 blocks (5008 bytes), counters anywhere and near 2^32, where each kernel
    # wraps its 32-bit counter modulo 2^32 (the stream refuses to get there; the kernels must agree).
    # Execute
    out = {impl: T.aes256_ctr_blocks(impl, key, prefix, ctr, blocks) for impl in IMPLS}
    # Assert
    assert len(set(out.values())) == 1, sorted(out)
    assert len(out["ct"]) == 16 * blocks


@pytest.mark.parametrize("blocks", [*range(0, 34), 63, 64, 65, 127, 128, 129])
def test_ctr_kernels_agree_on_every_batch_tail(blocks: int) -> None:
    # Prepare: every remainder modulo the 8-block CT batch and the 16-block VAES one, across the wrap.
    key, prefix = bytes(range(7, 39)), bytes(range(12))
    for ctr in (0, LAST - blocks // 2):
        # Execute
        out = {impl: T.aes256_ctr_blocks(impl, key, prefix, ctr, blocks) for impl in IMPLS}
        # Assert
        assert len(set(out.values())) == 1, (ctr, sorted(out))


# -- the stream: secret vs public, every path -------------------------------------------------


def stream(key: bytes, counter_block: bytes, n: int, use: str, portable: bool, ni: bool = False) -> tuple[str, bytes]:
    """(path taken, keystream) of a stream for `use`, with the AES kernel forced portable or to AES-NI."""
    before_portable, before_ni = T.aes256_force_portable(portable), T.aes256_force_ni(ni)
    try:
        return T.aes256_ctr_path_for(use), T.aes256_ctr_keystream_for(key, counter_block, n, use)
    finally:
        T.aes256_force_ni(before_ni)
        T.aes256_force_portable(before_portable)


@settings(max_examples=40, deadline=None)
@given(
    key=st.binary(min_size=32, max_size=32),
    prefix=st.binary(min_size=12, max_size=12),
    n=st.integers(0, 5000),
    near_wrap=st.booleans(),
    slack=st.integers(0, 3),
    start=st.integers(0, 2**32 - 400),
)
def test_secret_and_public_streams_agree_on_every_path(
    key: bytes, prefix: bytes, n: int, near_wrap: bool, slack: int, start: int
) -> None:
    # Prepare: n bytes from a start counter anywhere, or ending within `slack` blocks of 2^32.
    if near_wrap:
        start = min(2**32 - (n + 15) // 16 - slack, LAST)
    counter_block = prefix + start.to_bytes(4, "big")
    # Execute
    runs = {
        (use, portable, ni): stream(key, counter_block, n, use, portable, ni)
        for use in ("secret", "public")
        for portable in (True, False)
        for ni in (True, False)
    }
    # Assert: the portable fallbacks are the CT path (secret) and the table (public), and the
    # paths taken are the ones this CPU has (VAES, AES-NI where forced or without VAES) unless the
    # scalar path is forced (XCLOUD_FORCE_SCALAR=1), when every run is portable.
    assert runs[("secret", True, False)][0] == "portable-ct" and runs[("public", True, False)][0] == "portable"
    fast = runs[("secret", False, False)][0]
    if fast != "portable-ct":
        assert fast == ("vaes" if "vaes" in IMPLS else "aes-ni")
        assert runs[("secret", False, True)][0] == "aes-ni"
    assert len({ks for _, ks in runs.values()}) == 1
    # The stream never passes counter 2^32 - 1, so OpenSSL's carry into the prefix never matters.
    assert runs[("secret", True, False)][1] == openssl_ctr(key, counter_block, n)


@pytest.mark.parametrize("blocks_left", [1, 2, 7, 8, 9, 17])
def test_secret_stream_reaches_the_last_counter_and_refuses_to_wrap(blocks_left: int) -> None:
    key, counter_block = bytes(range(32)), bytes(12) + (2**32 - blocks_left).to_bytes(4, "big")
    for portable in (True, False):
        ks = stream(key, counter_block, 16 * blocks_left, "secret", portable)[1]
        expected = T.aes256_ctr_blocks("table", key, bytes(12), 2**32 - blocks_left, blocks_left)
        assert ks == expected
        before = T.aes256_force_portable(portable)
        try:
            with pytest.raises((ValueError, OverflowError, RuntimeError)):
                T.aes256_ctr_keystream_for(key, counter_block, 16 * blocks_left + 1, "secret")
        finally:
            T.aes256_force_portable(before)


def test_forcing_the_scalar_path_selects_the_ct_path_for_secret_keys() -> None:
    # Prepare
    key, counter_block = bytes(range(32)), bytes(16)
    before = T.set_force_scalar(True)
    try:
        # Execute
        secret_path, public_path = T.aes256_ctr_path_for("secret"), T.aes256_ctr_path_for("public")
        ks = T.aes256_ctr_keystream_for(key, counter_block, 1000, "secret")
    finally:
        T.set_force_scalar(before)
    # Assert
    assert (secret_path, public_path) == ("portable-ct", "portable")
    assert ks == openssl_ctr(key, counter_block, 1000)


def test_force_scalar_environment_selects_the_ct_path_for_secret_keys() -> None:
    # Prepare: XCLOUD_FORCE_SCALAR is read once per process, so a fresh interpreter.
    code = (
        "from xcloud._native import testing as T; "
        "print(T.aes256_ctr_path_for('secret'), T.aes256_ctr_path_for('public'), "
        "T.aes256_ctr_keystream_for(bytes(range(32)), bytes(16), 64, 'secret').hex())"
    )
    env = dict(os.environ, XCLOUD_FORCE_SCALAR="1")
    # Execute
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    # Assert
    assert out[:2] == ["portable-ct", "portable"]
    assert out[2] == openssl_ctr(bytes(range(32)), bytes(16), 64).hex()


@pytest.mark.parametrize("use", ["publicish", ""])
def test_an_unknown_key_use_is_refused(use: str) -> None:
    with pytest.raises(ValueError, match="key use"):
        T.aes256_ctr_keystream_for(bytes(32), bytes(16), 16, use)
