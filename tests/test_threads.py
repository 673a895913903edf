"""Differential tests: 1 thread vs many, bit-identical under a fixed seed.

The kernel derives block b's randomness from the master seed and b alone
(encryptor.h), so a derandomised encryption must not depend on the number
of worker threads; nor may aggregation or decryption.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import xcloud

THREADS = [1, 2, 3, 4]
SEED = bytes(range(100, 132))


@pytest.fixture(scope="module")
def values() -> np.ndarray:
    # 7 blocks of the small context (N = 1024) and a partial eighth: more blocks than threads.
    return np.random.default_rng(3).uniform(-1.0, 1.0, size=7 * 1024 + 100)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["secret", "public"])
def test_derand_encryption_is_byte_identical_across_thread_counts(small_keys, values, mode, dtype):
    # Prepare
    x = values.astype(dtype)
    # Execute
    encodings = {t: xcloud.encrypt_blocks_derand(small_keys, x, SEED, threads=t, mode=mode).to_bytes() for t in THREADS}
    default_threads = xcloud.encrypt_blocks_derand(small_keys, x, SEED, mode=mode).to_bytes()
    # Assert
    assert all(e == encodings[1] for e in encodings.values()), {t: len(e) for t, e in encodings.items()}
    assert default_threads == encodings[1]


def test_derand_public_mode_needs_only_the_public_key(small_keys, values):
    # Prepare
    public = small_keys.public_only()
    # Execute
    with_public = xcloud.encrypt_blocks_derand(public, values, SEED, mode="public", threads=3).to_bytes()
    with_full = xcloud.encrypt_blocks_derand(small_keys, values, SEED, mode="public", threads=1).to_bytes()
    # Assert
    assert with_public == with_full


@pytest.mark.parametrize("mode", ["secret", "public"])
def test_decryption_is_bit_identical_across_thread_counts(small_keys, values, mode):
    # Prepare
    ct = xcloud.encrypt_blocks_derand(small_keys, values, SEED, mode=mode)
    # Execute
    outputs = {t: xcloud.decrypt_blocks(small_keys, ct, threads=t) for t in THREADS}
    # Assert
    for t in THREADS:
        assert outputs[t].tobytes() == outputs[1].tobytes(), f"threads={t} differs from threads=1"


def test_aggregation_is_bit_identical_across_thread_counts(small_keys, values):
    # Prepare: a mix of seeded (secret-key) and full (public-key) ciphertexts
    rng = np.random.default_rng(5)
    xs = [rng.uniform(-1.0, 1.0, size=values.shape) for _ in range(6)]
    cts = [
        xcloud.encrypt_blocks_derand(small_keys, x, bytes([i]) * 32, mode="secret" if i % 2 else "public")
        for i, x in enumerate(xs)
    ]
    weights = rng.dirichlet(np.ones(len(cts)))
    # Execute
    aggregates = {t: xcloud.aggregate(cts, weights, threads=t) for t in THREADS}
    decrypted = {t: xcloud.decrypt_blocks(small_keys, a, threads=t) for t, a in aggregates.items()}
    # Assert
    reference = aggregates[1].to_bytes()
    for t in THREADS:
        assert aggregates[t].to_bytes() == reference, f"aggregate with threads={t} differs"
        assert decrypted[t].tobytes() == decrypted[1].tobytes(), f"decryption with threads={t} differs"
    assert np.max(np.abs(decrypted[1] - np.tensordot(weights, np.array(xs), axes=1))) <= 2.0**-16


@pytest.mark.parametrize("mode", ["secret", "public"])
def test_different_seeds_give_different_ciphertexts(small_keys, values, mode):
    # Prepare
    seed_b = bytes(31) + b"\x01"  # differs from seed_a in one bit
    # Execute
    a = xcloud.encrypt_blocks_derand(small_keys, values, bytes(32), mode=mode)
    b = xcloud.encrypt_blocks_derand(small_keys, values, seed_b, mode=mode)
    # Assert: every block's c0 differs, and both still decrypt
    c0a, c0b = a.c0_view(), b.c0_view()
    assert a.to_bytes() != b.to_bytes()
    for blk in range(len(a)):
        assert not np.array_equal(c0a[blk], c0b[blk]), f"block {blk} is identical under different seeds"
    ya, yb = xcloud.decrypt_blocks(small_keys, a), xcloud.decrypt_blocks(small_keys, b)
    assert np.max(np.abs(ya - values)) <= 2.0**-20
    assert np.max(np.abs(yb - values)) <= 2.0**-20


def test_blocks_of_one_encryption_use_distinct_randomness(small_ctx, small_keys):
    """Equal blocks in one call must not encrypt to equal ciphertext blocks (per-block nonces)."""
    # Prepare
    x = np.tile(np.linspace(-1.0, 1.0, small_ctx.n), 4)
    # Execute
    ct = xcloud.encrypt_blocks_derand(small_keys, x, SEED)
    # Assert
    c0 = ct.c0_view()
    for i in range(len(ct)):
        for j in range(i):
            assert not np.array_equal(c0[i], c0[j]), f"blocks {j} and {i} share their randomness"


@pytest.mark.parametrize("keys_kind", ["full", "public_only"])
def test_randomised_encryptions_of_the_same_input_differ(small_keys, values, keys_kind):
    # Prepare
    keys = small_keys if keys_kind == "full" else small_keys.public_only()
    # Execute
    a = xcloud.encrypt_blocks(keys, values)
    b = xcloud.encrypt_blocks(keys, values)
    # Assert
    assert a.to_bytes() != b.to_bytes()
    c0a, c0b = a.c0_view(), b.c0_view()
    for blk in range(len(a)):
        assert not np.array_equal(c0a[blk], c0b[blk])
    y1, y4 = xcloud.decrypt_blocks(small_keys, a, threads=1), xcloud.decrypt_blocks(small_keys, a, threads=4)
    assert y1.tobytes() == y4.tobytes()


def test_concurrent_calls_from_python_threads_match_sequential_calls(small_keys, values):
    """The kernel releases the GIL; concurrent calls on shared keys must not interfere."""
    # Prepare
    seeds = [bytes([i]) * 32 for i in range(12)]
    modes = ["secret" if i % 3 else "public" for i in range(12)]

    def run(i: int) -> tuple[bytes, bytes]:
        ct = xcloud.encrypt_blocks_derand(small_keys, values, seeds[i], threads=2, mode=modes[i])
        return ct.to_bytes(), xcloud.decrypt_blocks(small_keys, ct, threads=2).tobytes()

    sequential = [run(i) for i in range(12)]
    # Execute
    with ThreadPoolExecutor(max_workers=6) as pool:
        concurrent = list(pool.map(run, range(12)))
    # Assert
    assert concurrent == sequential


# -- the cache of large ciphertext buffers (parallel/memory.h) -----------------------


def test_a_freed_ciphertext_buffer_is_reused_for_the_next_update_of_its_size():
    T = xcloud._native.testing
    keys = xcloud.CkksContext.preset("compact").keygen()
    x = np.random.default_rng(0).uniform(-1, 1, 300 * 4096).astype(np.float32)  # c0: 300 x 4096 words, 9.4 MiB
    T.release_buffer_pool()
    assert T.buffer_pool_stats() == (0, 0)
    first = xcloud.encrypt_blocks(keys, x)
    want = xcloud.decrypt_blocks(keys, first)
    del first
    assert T.buffer_pool_stats() == (1, 300 * 4096 * 8)
    # The next encryption of that size takes the cached buffer, and its old words do not leak into the result.
    second = xcloud.encrypt_blocks(keys, x)
    assert T.buffer_pool_stats() == (0, 0)
    assert np.abs(xcloud.decrypt_blocks(keys, second) - want).max() <= 2.0**-26
    # Small ciphertexts never enter the cache; release empties it.
    del second
    small = xcloud.encrypt_blocks(keys, x[:4096])
    del small
    assert T.buffer_pool_stats() == (1, 300 * 4096 * 8)
    # A 1 M-value update (245 blocks, 7.7 MiB) is above the 4 MiB threshold.
    one_m = xcloud.encrypt_blocks(keys, x[:1_000_000])
    del one_m
    assert T.buffer_pool_stats() == (2, (300 + 245) * 4096 * 8)
    T.release_buffer_pool()
    assert T.buffer_pool_stats() == (0, 0)


@pytest.mark.skipif(os.environ.get("XCLOUD_BUFFER_POOL") == "0", reason="the buffer cache is turned off")
@pytest.mark.parametrize(
    ("mode", "compact", "k", "form"),
    [
        ("secret", True, 3, "seeded-sum"),
        ("secret", True, 17, "seeded-sum"),  # more inputs than one pass takes
        ("secret", False, 3, "full"),  # the inputs' c1 expanded into scratch
        ("public", True, 3, "full"),
    ],
)
def test_an_aggregate_written_into_a_reused_buffer_does_not_depend_on_its_old_words(mode, compact, k, form):
    """aggregate() sizes its outputs without zeroing them: every word must be written.

    The output's c0 (and, in the full form, c1) is 300 x 4096 words, the size of each
    input's, so it comes from the buffer cache, here holding the words of a public-key
    ciphertext (encryption writes every word of its c0 and c1).
    """
    # Prepare
    T = xcloud._native.testing
    size = 300 * 4096 * 8
    keys = xcloud.CkksContext.preset("compact").keygen_derand(bytes(32 * [9]))
    rng = np.random.default_rng(9)
    xs = rng.uniform(-1, 1, size=(k, 300 * 4096)).astype(np.float32)
    inputs = [xcloud.encrypt_blocks_derand(keys, x, bytes([i]) * 32, mode=mode) for i, x in enumerate(xs)]
    weights = xcloud.dyadic_weights(inputs, [1.0 / k] * k)
    T.release_buffer_pool()
    fresh = xcloud.aggregate(inputs, weights, threads=2, compact=compact)
    assert fresh.c1_form == form
    fresh_bytes = fresh.to_bytes()
    del fresh
    T.release_buffer_pool()
    other = xcloud.encrypt_blocks(keys, rng.uniform(-1, 1, 300 * 4096).astype(np.float32), mode="public")
    del other
    assert T.buffer_pool_stats() == (2, 2 * size)
    # Execute
    again = xcloud.aggregate(inputs, weights, threads=2, compact=compact)
    # Assert: it took the cached buffers (one for c0, one more for a full c1), and wrote over every old word
    assert T.buffer_pool_stats() == ((1, size) if form == "seeded-sum" else (0, 0))
    assert again.to_bytes() == fresh_bytes
    T.release_buffer_pool()


def test_the_cache_holds_at_most_four_buffers():
    T = xcloud._native.testing
    keys = xcloud.CkksContext.preset("compact").keygen()
    T.release_buffer_pool()
    cts = [xcloud.encrypt_blocks(keys, np.zeros((260 + i) * 4096, dtype=np.float32)) for i in range(6)]
    while cts:  # freed oldest first, so the newest four stay
        cts.pop(0)
    buffers, nbytes = T.buffer_pool_stats()
    assert buffers == 4 and nbytes == sum((260 + i) * 4096 * 8 for i in range(2, 6))
    T.release_buffer_pool()


def test_the_cache_can_be_turned_off():
    code = (
        "import numpy as np, xcloud; T = xcloud._native.testing; "
        "k = xcloud.CkksContext.preset('compact').keygen(); "
        "c = xcloud.encrypt_blocks(k, np.zeros(300 * 4096, dtype=np.float32)); del c; "
        "print(T.buffer_pool_stats())"
    )
    env = {**os.environ, "XCLOUD_BUFFER_POOL": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(0, 0)"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_fork_child_starts_with_an_empty_cache():
    T = xcloud._native.testing
    keys = xcloud.CkksContext.preset("compact").keygen()
    x = np.zeros(300 * 4096, dtype=np.float32)
    T.release_buffer_pool()
    ct = xcloud.encrypt_blocks(keys, x)
    del ct
    assert T.buffer_pool_stats()[0] == 1
    pid = os.fork()
    if pid == 0:  # the child: its cache is empty, and works
        ok = False
        try:
            ok = T.buffer_pool_stats() == (0, 0)
            c = xcloud.encrypt_blocks(keys, x)
            ok = ok and float(np.abs(xcloud.decrypt_blocks(keys, c)).max()) <= 2.0**-26
            del c
            ok = ok and T.buffer_pool_stats()[0] == 1
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert T.buffer_pool_stats()[0] == 1  # the parent's cache is untouched
    T.release_buffer_pool()
