"""The ciphertext wire format (cpp/src/ckks/wire.h): round trips, known sizes,
and rejection of every malformed, truncated, extended or tampered input.

Layout, version 2 (little-endian; version 1 differs only in how seeds expand,
and is read for full-c1 messages only); offsets used below:

    0 magic "XCCT" | 4 u16 version | 6 u8 origin | 7 u8 c1 form | 8 u8 dtype
    9 u8 ndim | 10 u16 reserved | 12 fingerprint[32] | 44 key id[16]
    60 u64 n_values | 68 u32 n_blocks | 72 u8 L | 73 u8 log2 N | 74 u16 reserved
    76 f64 scale | 84 f64 bound | 92 i64 shape[ndim]
    c1 form 2 (seeded sum) only: u32 K | u64 weights[L][K]
    body: per block, c0 as L packed polynomials, then a 32-byte seed, L packed
    polynomials or (form 2) K 32-byte seeds
    last 32 bytes: SHA-256 of everything before

Every bad input must raise ``xcloud.IntegrityError``: never another exception
type, never a crash. "Resealed" variants recompute the checksum after the
edit, so the parser's field checks are exercised, not only the checksum.
"""

from __future__ import annotations

import hashlib
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xcloud

FIXED_HEADER = 92
CHECKSUM = 32
OFF_VERSION, OFF_ORIGIN, OFF_FORM, OFF_DTYPE, OFF_NDIM, OFF_RESERVED1 = 4, 6, 7, 8, 9, 10
OFF_FINGERPRINT, OFF_KEY_ID, OFF_N_VALUES, OFF_N_BLOCKS = 12, 44, 60, 68
OFF_L, OFF_LOG_N, OFF_RESERVED2, OFF_SCALE, OFF_BOUND, OFF_SHAPE = 72, 73, 74, 76, 84, 92


def reseal(data: bytes | bytearray) -> bytes:
    """Replaces the trailing checksum with the SHA-256 of all preceding bytes."""
    body = bytes(data[:-CHECKSUM])
    return body + hashlib.sha256(body).digest()


def edited(data: bytes, offset: int, fmt: str, value: object) -> bytes:
    """A resealed copy of ``data`` with ``struct.pack('<' + fmt, value)`` written at ``offset``."""
    buf = bytearray(data)
    struct.pack_into("<" + fmt, buf, offset, value)
    return reseal(buf)


def header_size(ct: xcloud.CiphertextBlocks) -> int:
    """Bytes before the body: the fixed header, the shape and, for a seeded sum, K and the weights."""
    form = 4 + 8 * len(ct.ctx.primes) * ct.seeds_per_block if ct.c1_form == "seeded-sum" else 0
    return FIXED_HEADER + 8 * len(ct.shape) + form


def poly_bytes(ctx: xcloud.CkksContext) -> int:
    """Packed bytes of one ciphertext polynomial: N residues at bit_length(q_j) bits, per prime."""
    return sum((ctx.n * q.bit_length() + 7) // 8 for q in ctx.primes)


def expected_size(ctx: xcloud.CkksContext, ct: xcloud.CiphertextBlocks) -> int:
    c1 = poly_bytes(ctx) if ct.c1_form == "full" else 32 * ct.seeds_per_block
    return header_size(ct) + len(ct) * (poly_bytes(ctx) + c1) + CHECKSUM


def assert_rejected(ctx: xcloud.CkksContext, data: bytes, what: str) -> None:
    with pytest.raises(xcloud.IntegrityError):
        xcloud.CiphertextBlocks.from_bytes(ctx, data)
        pytest.fail(f"accepted: {what}")


@pytest.fixture(scope="module")
def cts(small_keys) -> dict[str, xcloud.CiphertextBlocks]:
    """One ciphertext of each origin: 2-D (2 x 700 = 1400 values: one full block and a partial one),
    and a compact (seeded-sum) aggregate of three secret-key ones."""
    x = np.linspace(-1.0, 1.0, 1400).reshape(2, 700)
    secret = xcloud.encrypt_blocks_derand(small_keys, x, bytes(32), mode="secret")
    public = xcloud.encrypt_blocks_derand(small_keys, x, bytes(32), mode="public")
    others = [xcloud.encrypt_blocks_derand(small_keys, -x, bytes([i]) * 32, mode="secret") for i in (1, 2)]
    compact = xcloud.aggregate([secret, *others], [0.5, -0.25, 0.375])
    assert compact.c1_form == "seeded-sum"
    return {
        "secret": secret,
        "public": public,
        "aggregate": xcloud.aggregate([secret, public], [0.5, 0.5]),
        "compact": compact,
    }


ORIGINS = ["secret", "public", "aggregate", "compact"]


# -- round trips and sizes ---------------------------------------------------


@pytest.mark.parametrize("origin", ORIGINS)
@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_round_trip(small_ctx, small_keys, cts, origin, wrap):
    # Prepare
    ct = cts[origin]
    data = ct.to_bytes()
    # Execute
    back = xcloud.CiphertextBlocks.from_bytes(small_ctx, wrap(data))
    # Assert
    assert back.to_bytes() == data
    assert (back.shape, back.size, len(back)) == (ct.shape, ct.size, len(ct))
    assert (back.dtype, back.origin) == (ct.dtype, ct.origin)
    assert (back.scale, back.bound, back.key_id) == (ct.scale, ct.bound, ct.key_id)
    assert np.array_equal(back.c0_view(), ct.c0_view())
    assert xcloud.decrypt_blocks(small_keys, back).tobytes() == xcloud.decrypt_blocks(small_keys, ct).tobytes()


def test_header_fields_are_where_wire_h_says(small_ctx, cts):
    # Prepare
    ct = cts["secret"]
    # Execute
    data = ct.to_bytes()
    # Assert
    assert data[:4] == b"XCCT"
    assert struct.unpack_from("<HBBBBH", data, OFF_VERSION) == (2, 1, 0, 2, 2, 0)
    assert data[OFF_FINGERPRINT : OFF_FINGERPRINT + 32] == small_ctx.fingerprint
    assert data[OFF_KEY_ID : OFF_KEY_ID + 16] == ct.key_id
    assert struct.unpack_from("<QIBBHdd", data, OFF_N_VALUES) == (1400, 2, 2, 10, 0, ct.scale, ct.bound)
    assert struct.unpack_from("<qq", data, OFF_SHAPE) == (2, 700)
    assert data[-CHECKSUM:] == hashlib.sha256(data[:-CHECKSUM]).digest()
    assert data[OFF_FORM] == 0 and cts["public"].to_bytes()[OFF_FORM] == 1
    compact = cts["compact"].to_bytes()
    assert struct.unpack_from("<HBB", compact, OFF_VERSION) == (2, 3, 2)
    assert struct.unpack_from("<I", compact, OFF_SHAPE + 16) == (3,)
    weights = struct.unpack_from("<6Q", compact, OFF_SHAPE + 20)
    assert all(w < q for w, q in zip(weights, np.repeat(small_ctx.primes, 3), strict=True))


@pytest.mark.parametrize("mode", ["secret", "public"])
@pytest.mark.parametrize("shape", [(1,), (1023,), (1024,), (1025,), (3, 4, 5), (), (2, 1, 1024)])
def test_serialized_size_equals_nbytes(small_ctx, small_keys, mode, shape):
    # Prepare
    x = np.full(shape, 0.5, dtype=np.float32)
    ct = xcloud.encrypt_blocks(small_keys, x, mode=mode)
    # Execute
    data = ct.to_bytes()
    # Assert
    assert len(data) == ct.nbytes == expected_size(small_ctx, ct)


@pytest.mark.parametrize("origin", ["aggregate", "compact"])
def test_aggregate_size_equals_nbytes(small_ctx, cts, origin):
    assert len(cts[origin].to_bytes()) == cts[origin].nbytes == expected_size(small_ctx, cts[origin])


def test_known_size_of_default_context_secret_key_ciphertext(default_ctx, default_keys):
    """Default context: N = 4096, two 36-bit primes. One block of c0 packs 2 * 4096 * 36 bits =
    36,864 bytes and c1 travels as a 32-byte seed: 36,896 bytes per 4,096 values, 9.0078125
    bytes per value (2.25x float32) plus a 132-byte header and checksum for a 1-D array."""
    # Prepare
    n_values = 100 * 4096
    x = np.zeros(n_values, dtype=np.float32)
    # Execute
    ct = xcloud.encrypt_blocks(default_keys, x)
    public = xcloud.encrypt_blocks(default_keys.public_only(), x)
    # Assert
    assert [q.bit_length() for q in default_ctx.primes] == [36, 36]
    assert ct.nbytes == len(ct.to_bytes()) == 92 + 8 + 100 * 36_896 + 32
    assert (ct.nbytes - 132) / n_values == 9.0078125
    assert public.nbytes == 92 + 8 + 100 * 2 * 36_864 + 32


# -- fuzzing: flips, truncations, extensions ---------------------------------


@pytest.mark.parametrize("origin", ORIGINS)
def test_every_header_bit_flip_is_rejected(small_ctx, cts, origin):
    # Prepare
    data = cts[origin].to_bytes()
    # Execute / Assert
    for pos in range(header_size(cts[origin])):
        for bit in range(8):
            buf = bytearray(data)
            buf[pos] ^= 1 << bit
            assert_rejected(small_ctx, bytes(buf), f"bit {bit} of header byte {pos} flipped")


@pytest.mark.parametrize("origin", ORIGINS)
def test_body_and_checksum_corruption_is_rejected(small_ctx, cts, origin):
    # Prepare
    data = cts[origin].to_bytes()
    rng = np.random.default_rng(11)
    h = header_size(cts[origin])
    positions = list(rng.integers(h, len(data) - CHECKSUM, size=300)) + list(range(len(data) - CHECKSUM, len(data)))
    positions += [h, len(data) - CHECKSUM - 1]
    # Execute / Assert
    for pos in positions:
        buf = bytearray(data)
        buf[pos] ^= 1 << int(rng.integers(8))
        assert_rejected(small_ctx, bytes(buf), f"bit flip at byte {pos}")
        buf = bytearray(data)
        buf[pos] = (buf[pos] + int(rng.integers(1, 256))) % 256
        assert_rejected(small_ctx, bytes(buf), f"byte {pos} replaced")


def test_multi_byte_corruption_is_rejected(small_ctx, cts):
    # Prepare
    data = cts["public"].to_bytes()
    rng = np.random.default_rng(12)
    # Execute / Assert
    for _ in range(100):
        buf = bytearray(data)
        start = int(rng.integers(0, len(data) - 64))
        buf[start : start + 64] = rng.integers(0, 256, size=64, dtype=np.uint8).tobytes()
        assert_rejected(small_ctx, bytes(buf), f"64 random bytes at {start}")
    assert_rejected(small_ctx, bytes(len(data)), "all zeros")
    assert_rejected(small_ctx, b"\xff" * len(data), "all ones")


@pytest.mark.parametrize("origin", ORIGINS)
def test_truncations_are_rejected(small_ctx, cts, origin):
    # Prepare
    data = cts[origin].to_bytes()
    h = header_size(cts[origin])
    rng = np.random.default_rng(13)
    lengths = {0, 1, 3, 4, 5, 6, 12, 44, 60, 91, 92, 92 + 8, h - 1, h, h + 1, h + CHECKSUM}
    lengths |= {FIXED_HEADER + CHECKSUM - 1, FIXED_HEADER + CHECKSUM, len(data) - CHECKSUM, len(data) - 1}
    lengths |= {int(v) for v in rng.integers(0, len(data), size=100)}
    # Execute / Assert
    for n in sorted(lengths):
        assert_rejected(small_ctx, data[:n], f"truncated to {n} bytes")
        assert_rejected(small_ctx, reseal(data[:n]) if n >= CHECKSUM else data[:n], f"truncated to {n}, resealed")


@pytest.mark.parametrize("origin", ORIGINS)
@pytest.mark.parametrize("extra", [1, 7, 32, 33, 1000, 40_000])
def test_extensions_are_rejected(small_ctx, cts, origin, extra):
    # Prepare
    data = cts[origin].to_bytes()
    tail = bytes(range(256)) * (extra // 256 + 1)
    # Execute / Assert
    assert_rejected(small_ctx, data + tail[:extra], f"{extra} bytes appended")
    assert_rejected(small_ctx, tail[:extra] + data, f"{extra} bytes prepended")
    # appended before the checksum, checksum recomputed: the header's length must not match
    body = data[:-CHECKSUM] + tail[:extra]
    assert_rejected(small_ctx, body + hashlib.sha256(body).digest(), f"{extra} bytes inserted, resealed")


def test_ciphertext_concatenated_with_itself_is_rejected(small_ctx, cts):
    data = cts["secret"].to_bytes()
    assert_rejected(small_ctx, data + data, "two ciphertexts back to back")


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_random_mutations_never_escape_as_another_error(small_ctx, cts, data):
    """Hypothesis drives arbitrary edits (flip, set, delete, insert), optionally resealed."""
    # Prepare
    origin = data.draw(st.sampled_from(ORIGINS))
    buf = bytearray(cts[origin].to_bytes())
    n_edits = data.draw(st.integers(1, 4))
    for _ in range(n_edits):
        op = data.draw(st.sampled_from(["flip", "set", "delete", "insert"]))
        pos = data.draw(st.integers(0, len(buf) - 1))
        if op == "flip":
            buf[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "set":
            buf[pos] = data.draw(st.integers(0, 255).filter(lambda v, old=buf[pos]: v != old))
        elif op == "delete":
            del buf[pos : pos + data.draw(st.integers(1, 64))]
        else:
            buf[pos:pos] = data.draw(st.binary(min_size=1, max_size=64))
    resealed = data.draw(st.booleans()) and len(buf) >= CHECKSUM
    mutated = reseal(buf) if resealed else bytes(buf)
    if mutated == cts[origin].to_bytes():
        return  # the edits cancelled out
    # Execute / Assert: only IntegrityError, or (rarely, resealed body-only edits) a valid parse
    try:
        back = xcloud.CiphertextBlocks.from_bytes(small_ctx, mutated)
    except xcloud.IntegrityError:
        return
    assert resealed, "a mutated ciphertext with a stale checksum was accepted"
    if struct.unpack_from("<H", mutated, 4)[0] == 1:
        # Version 1 with a full c1 still reads (the layout is that of version 2) and is written back
        # as version 2: the same bytes but for the version field and the checksum.
        assert back.to_bytes()[:-CHECKSUM] == mutated[:4] + struct.pack("<H", 2) + mutated[6:-CHECKSUM]
    else:
        assert back.to_bytes() == mutated


# -- consistent checksum, inconsistent header --------------------------------

_U64_MAX = 2**64 - 1


@pytest.mark.parametrize(
    ("what", "offset", "fmt", "value"),
    [
        ("magic", 0, "4s", b"XCKY"),
        ("version 0", OFF_VERSION, "H", 0),
        ("version 1 with a seeded c1", OFF_VERSION, "H", 1),
        ("version 3", OFF_VERSION, "H", 3),
        ("version 0xffff", OFF_VERSION, "H", 0xFFFF),
        ("origin 0", OFF_ORIGIN, "B", 0),
        ("origin 4", OFF_ORIGIN, "B", 4),
        ("public-key origin with a seeded c1", OFF_ORIGIN, "B", 2),
        ("aggregate origin with a seeded c1", OFF_ORIGIN, "B", 3),
        ("c1 form 2", OFF_FORM, "B", 2),
        ("full c1 form with a seeded body", OFF_FORM, "B", 1),
        ("dtype 0", OFF_DTYPE, "B", 0),
        ("dtype 3", OFF_DTYPE, "B", 3),
        ("dtype 255", OFF_DTYPE, "B", 255),
        ("ndim 0", OFF_NDIM, "B", 0),
        ("ndim 1", OFF_NDIM, "B", 1),
        ("ndim 3", OFF_NDIM, "B", 3),
        ("ndim 33", OFF_NDIM, "B", 33),
        ("ndim 255", OFF_NDIM, "B", 255),
        ("reserved field at 10", OFF_RESERVED1, "H", 1),
        ("fingerprint", OFF_FINGERPRINT, "B", 0),
        ("n_values 0", OFF_N_VALUES, "Q", 0),
        ("n_values - 1", OFF_N_VALUES, "Q", 1399),
        ("n_values + 1", OFF_N_VALUES, "Q", 1401),
        ("n_values of another block count", OFF_N_VALUES, "Q", 5000),
        ("n_values 2^40 + 1", OFF_N_VALUES, "Q", 2**40 + 1),
        ("n_values 2^63", OFF_N_VALUES, "Q", 2**63),
        ("n_values 2^64 - 1", OFF_N_VALUES, "Q", _U64_MAX),
        ("n_blocks 0", OFF_N_BLOCKS, "I", 0),
        ("n_blocks 1", OFF_N_BLOCKS, "I", 1),
        ("n_blocks 3", OFF_N_BLOCKS, "I", 3),
        ("n_blocks 2^32 - 1", OFF_N_BLOCKS, "I", 2**32 - 1),
        ("L 1", OFF_L, "B", 1),
        ("L 3", OFF_L, "B", 3),
        ("log2 N 11", OFF_LOG_N, "B", 11),
        ("log2 N 0", OFF_LOG_N, "B", 0),
        ("reserved field at 74", OFF_RESERVED2, "H", 0x8000),
        ("scale NaN", OFF_SCALE, "d", float("nan")),
        ("scale +Inf", OFF_SCALE, "d", float("inf")),
        ("scale 0", OFF_SCALE, "d", 0.0),
        ("scale 0.5", OFF_SCALE, "d", 0.5),
        ("scale -2^38", OFF_SCALE, "d", -(2.0**38)),
        ("scale 2^80 (beyond the modulus)", OFF_SCALE, "d", 2.0**80),
        ("bound NaN", OFF_BOUND, "d", float("nan")),
        ("bound -1", OFF_BOUND, "d", -1.0),
        ("bound +Inf", OFF_BOUND, "d", float("inf")),
        ("bound 2^40 (beyond the modulus)", OFF_BOUND, "d", 2.0**40),
        ("shape[0] 0", OFF_SHAPE, "q", 0),
        ("shape[0] -2", OFF_SHAPE, "q", -2),
        ("shape[0] 3 (product mismatch)", OFF_SHAPE, "q", 3),
        ("shape[0] 2^62", OFF_SHAPE, "q", 2**62),
        ("shape[1] 701", OFF_SHAPE + 8, "q", 701),
        ("shape[1] -700", OFF_SHAPE + 8, "q", -700),
        ("shape (1, 700) with 1400 values", OFF_SHAPE, "q", 1),
    ],
)
def test_inconsistent_header_with_valid_checksum_is_rejected(small_ctx, cts, what, offset, fmt, value):
    # Prepare
    data = cts["secret"].to_bytes()
    # Execute
    tampered = edited(data, offset, fmt, value)
    # Assert
    assert tampered != data
    assert_rejected(small_ctx, tampered, what)


def test_a_huge_scale_offset_by_a_tiny_bound_is_rejected(small_ctx, cts):
    """Scale 1e308 with bound 1e-300 passed the headroom rule; aggregating it gave scale inf and zeros."""
    data = edited(edited(cts["secret"].to_bytes(), OFF_SCALE, "d", 1e308), OFF_BOUND, "d", 1e-300)
    assert_rejected(small_ctx, data, "scale 1e308, bound 1e-300")


def test_every_aggregate_can_be_written_and_read_back(small_ctx, cts):
    """aggregate() and deserialize() apply the same headroom rule (a bound of 0 used to skip it in aggregate)."""
    zero = xcloud.aggregate([cts["secret"]], [0.0])  # bound 0
    chain = [zero]
    for _ in range(4):  # each step asks for 30 more fractional weight bits than the last
        try:
            chain.append(xcloud.aggregate([chain[-1]], [2.0**-30]))
        except ValueError:
            break
    chain.append(xcloud.aggregate([cts["secret"]], [2.0**-30]))  # bound below 1
    for ct in chain:
        back = xcloud.CiphertextBlocks.from_bytes(small_ctx, ct.to_bytes())
        assert (back.scale, back.bound) == (ct.scale, ct.bound)
        assert np.isfinite(back.scale)


@pytest.mark.parametrize("origin", ["public", "aggregate"])
def test_seeded_form_on_unseeded_ciphertext_is_rejected(small_ctx, cts, origin):
    assert_rejected(small_ctx, edited(cts[origin].to_bytes(), OFF_FORM, "B", 0), "seeded form on full c1")


OFF_SEEDS = OFF_SHAPE + 16  # the compact fixture is 2-D: K follows the two shape entries
OFF_WEIGHTS = OFF_SEEDS + 4


@pytest.mark.parametrize(
    ("what", "offset", "fmt", "value"),
    [
        ("secret-key origin with a seeded-sum c1", OFF_ORIGIN, "B", 1),
        ("public-key origin with a seeded-sum c1", OFF_ORIGIN, "B", 2),
        ("seeded form with a seeded-sum body", OFF_FORM, "B", 0),
        ("full form with a seeded-sum body", OFF_FORM, "B", 1),
        ("c1 form 3", OFF_FORM, "B", 3),
        ("seed count 0", OFF_SEEDS, "I", 0),
        ("seed count 2", OFF_SEEDS, "I", 2),
        ("seed count 4", OFF_SEEDS, "I", 4),
        ("seed count 257", OFF_SEEDS, "I", 257),
        ("seed count 2^32 - 1", OFF_SEEDS, "I", 2**32 - 1),
        ("first weight 2^64 - 1", OFF_WEIGHTS, "Q", _U64_MAX),
        ("last weight 2^63", OFF_WEIGHTS + 5 * 8, "Q", 2**63),
        ("n_blocks 1", OFF_N_BLOCKS, "I", 1),
        ("n_values of three blocks", OFF_N_VALUES, "Q", 2100),
    ],
)
def test_inconsistent_compact_header_with_valid_checksum_is_rejected(small_ctx, cts, what, offset, fmt, value):
    # Prepare
    data = cts["compact"].to_bytes()
    # Execute
    tampered = edited(data, offset, fmt, value)
    # Assert
    assert tampered != data
    assert_rejected(small_ctx, tampered, what)


@pytest.mark.parametrize("index", range(6))
def test_compact_weight_at_or_above_its_prime_is_rejected(small_ctx, cts, index):
    q = small_ctx.primes[index // 3]
    data = cts["compact"].to_bytes()
    assert_rejected(small_ctx, edited(data, OFF_WEIGHTS + 8 * index, "Q", q), f"weight {index} = q")
    back = xcloud.CiphertextBlocks.from_bytes(small_ctx, edited(data, OFF_WEIGHTS + 8 * index, "Q", q - 1))
    assert back.c1_form == "seeded-sum"


def test_compact_seed_list_shortened_or_lengthened_is_rejected(small_ctx, cts):
    """K claims one seed fewer (more) than each block carries, with the body cut (padded) to match K only in part."""
    data = cts["compact"].to_bytes()
    body_at = header_size(cts["compact"])
    for k in (2, 4):
        buf = bytearray(data)
        struct.pack_into("<I", buf, OFF_SEEDS, k)
        assert_rejected(small_ctx, reseal(buf), f"K = {k}")
        # also drop / add one weight per prime so the weights table alone is consistent
        head = bytes(buf[:OFF_WEIGHTS])
        w = struct.unpack_from("<6Q", data, OFF_WEIGHTS)
        table = w[:2] + w[3:5] if k == 2 else w[:3] + (0,) + w[3:] + (0,)
        rest = head + struct.pack(f"<{len(table)}Q", *table) + data[body_at:-CHECKSUM]
        assert_rejected(small_ctx, reseal(rest + bytes(CHECKSUM)), f"K = {k} with a matching weights table")


def test_shape_swapped_for_same_product_is_accepted_but_other_products_are_not(small_ctx, cts):
    """(2, 700) -> (700, 2) keeps the product: a valid ciphertext of another shape, not an error."""
    # Prepare
    data = cts["secret"].to_bytes()
    buf = bytearray(data)
    struct.pack_into("<qq", buf, OFF_SHAPE, 700, 2)
    # Execute
    back = xcloud.CiphertextBlocks.from_bytes(small_ctx, reseal(buf))
    # Assert
    assert back.shape == (700, 2)
    struct.pack_into("<qq", buf, OFF_SHAPE, 700, 3)
    assert_rejected(small_ctx, reseal(buf), "shape (700, 3) for 1400 values")


@pytest.mark.parametrize(
    "n_values",
    [2**30, 2**40],  # 2^20 and 2^30 blocks of N = 1024: terabytes, if the length were trusted
)
def test_oversized_claims_are_rejected_before_allocation(small_ctx, cts, n_values):
    # Prepare: a self-consistent header (value count, block count, shape) claiming a huge body
    buf = bytearray(cts["secret"].to_bytes())
    struct.pack_into("<QI", buf, OFF_N_VALUES, n_values, n_values // small_ctx.n)
    struct.pack_into("<qq", buf, OFF_SHAPE, 1, n_values)
    # Execute / Assert (an allocation of the claimed size would fail with MemoryError or crash)
    assert_rejected(small_ctx, reseal(buf), f"{n_values} values claimed")


def test_block_count_that_wraps_32_bits_is_rejected():
    """n_blocks is a u32 on the wire; ceil(n_values / N) must be compared without truncation.

    With N = 128 (an insecure test size), 2^39 + 128 values need 2^32 + 1 blocks, which
    truncates to 1: a header claiming those values over a one-block body must not parse
    (decrypting it would try to allocate 4 TiB).
    """
    # Prepare
    ctx = xcloud.CkksContext.insecure(log_n=7)
    keys = ctx.keygen()
    buf = bytearray(xcloud.encrypt_blocks(keys, np.zeros(1)).to_bytes())
    n_values = (2**32 + 1) * ctx.n
    struct.pack_into("<QI", buf, OFF_N_VALUES, n_values, 1)
    struct.pack_into("<q", buf, OFF_SHAPE, n_values)
    # Execute / Assert
    assert_rejected(ctx, reseal(buf), f"{n_values} values in 1 block")


def _set_packed(data: bytes, bit_offset: int, bits: int, value: int) -> bytes:
    """Writes `value` into the `bits`-wide little-endian bit field starting `bit_offset` bits into data."""
    buf = bytearray(data)
    first, last = bit_offset // 8, (bit_offset + bits + 7) // 8
    word = int.from_bytes(buf[first:last], "little")
    shift = bit_offset - 8 * first
    mask = ((1 << bits) - 1) << shift
    word = (word & ~mask) | (value << shift)
    buf[first:last] = word.to_bytes(last - first, "little")
    return reseal(buf)


RESIDUE_SITES = [
    (origin, where)
    for origin in ORIGINS
    for where in ["first c0 residue", "last residue of prime 0", "first residue of prime 1", "first c1 residue"]
    if not (origin in ("secret", "compact") and where == "first c1 residue")  # a seeded c1 has no residues
]


@pytest.mark.parametrize(("origin", "where"), RESIDUE_SITES)
@pytest.mark.parametrize("excess", [0, 1, "all ones"])
def test_residue_not_below_its_modulus_is_rejected(small_ctx, cts, origin, where, excess):
    # Prepare
    ct = cts[origin]
    data = ct.to_bytes()
    n, (q0, q1) = small_ctx.n, small_ctx.primes
    b0, b1 = q0.bit_length(), q1.bit_length()
    body = 8 * header_size(ct)
    if where == "first c1 residue":
        index_bits, q, bits = body + n * (b0 + b1), q0, b0
    elif where == "last residue of prime 0":
        index_bits, q, bits = body + (n - 1) * b0, q0, b0
    elif where == "first residue of prime 1":
        index_bits, q, bits = body + n * b0, q1, b1
    else:
        index_bits, q, bits = body, q0, b0
    value = (1 << bits) - 1 if excess == "all ones" else q + excess
    # Execute
    tampered = _set_packed(data, index_bits, bits, value)
    # Assert
    assert tampered != data
    assert_rejected(small_ctx, tampered, f"{where} = {value} >= q = {q}")


def test_residue_just_below_its_modulus_is_accepted(small_ctx, cts):
    """Control for the test above: q - 1 is a valid residue, so the parser must not reject it."""
    # Prepare
    data = cts["public"].to_bytes()
    q0 = small_ctx.primes[0]
    # Execute
    tampered = _set_packed(data, 8 * header_size(cts["public"]), q0.bit_length(), q0 - 1)
    back = xcloud.CiphertextBlocks.from_bytes(small_ctx, tampered)
    # Assert
    assert int(back.c0_view()[0, 0, 0]) == q0 - 1


def test_tampered_key_id_parses_but_does_not_decrypt(small_ctx, small_keys, cts):
    """The key id is not verifiable from the ciphertext alone; decryption must still refuse it."""
    # Prepare
    tampered = edited(cts["secret"].to_bytes(), OFF_KEY_ID, "B", cts["secret"].key_id[0] ^ 1)
    # Execute
    back = xcloud.CiphertextBlocks.from_bytes(small_ctx, tampered)
    # Assert
    with pytest.raises(ValueError, match="another key"):
        xcloud.decrypt_blocks(small_keys, back)


def test_c0_view_is_read_only_and_outlives_its_ciphertext(small_keys):
    # Prepare
    ct = xcloud.encrypt_blocks(small_keys, np.linspace(-1.0, 1.0, 3000))
    view = ct.c0_view()
    copy = view.copy()
    # Execute
    del ct
    others = [xcloud.encrypt_blocks(small_keys, np.ones(3000)) for _ in range(8)]  # reuse freed memory, if any
    # Assert
    assert view.shape == (3, 2, 1024) and view.dtype == np.uint64
    assert not view.flags.writeable
    with pytest.raises(ValueError):
        view[0, 0, 0] = 1
    assert np.array_equal(view, copy)
    assert len(others) == 8


# -- other contexts, other types --------------------------------------------


@pytest.mark.parametrize(
    "other",
    [
        lambda: xcloud.CkksContext.insecure(log_n=11),
        lambda: xcloud.CkksContext.insecure(log_n=10, max_value=2.0),
        lambda: xcloud.CkksContext.insecure(log_n=10, scale_bits=37),
        lambda: xcloud.CkksContext.insecure(log_n=10, prime_bits=(36, 35)),
        lambda: xcloud.CkksContext(),
    ],
    ids=["log_n_11", "max_value_2", "scale_bits_37", "other_primes", "default"],
)
def test_bytes_from_another_context_are_rejected(cts, other):
    # Prepare
    ctx = other()
    data = cts["secret"].to_bytes()
    # Execute / Assert
    with pytest.raises(xcloud.IntegrityError, match="fingerprint"):
        xcloud.CiphertextBlocks.from_bytes(ctx, data)


def test_default_context_bytes_are_rejected_by_an_insecure_context(small_ctx, default_keys):
    data = xcloud.encrypt_blocks(default_keys, np.zeros(10)).to_bytes()
    with pytest.raises(xcloud.IntegrityError, match="fingerprint"):
        xcloud.CiphertextBlocks.from_bytes(small_ctx, data)


def test_key_bytes_are_not_a_ciphertext(small_ctx, small_keys):
    assert_rejected(small_ctx, small_keys.public_bytes(), "public key bytes")
    assert_rejected(small_ctx, small_keys.secret_bytes(), "secret key bytes")


@pytest.mark.parametrize(
    "obj",
    ["XCCT", None, 12345, 1.5, [88, 67, 67, 84], (1, 2), np.zeros(200, dtype=np.uint8), object()],
    ids=["str", "None", "int", "float", "list", "tuple", "ndarray", "object"],
)
def test_from_bytes_needs_a_bytes_like_object(small_ctx, obj):
    with pytest.raises(TypeError):
        xcloud.CiphertextBlocks.from_bytes(small_ctx, obj)


def test_from_bytes_rejects_a_non_contiguous_or_multidimensional_buffer(small_ctx, cts):
    # Prepare
    data = np.frombuffer(cts["secret"].to_bytes(), dtype=np.uint8)
    wide = np.repeat(data, 2)  # every byte twice
    # Execute / Assert
    with pytest.raises(TypeError):
        xcloud.CiphertextBlocks.from_bytes(small_ctx, memoryview(wide[::2]))
    with pytest.raises(TypeError):
        xcloud.CiphertextBlocks.from_bytes(small_ctx, memoryview(data[: len(data) // 4 * 4].reshape(-1, 4)))


# -- versions: 2 expands seeds with AES-256-CTR; 1 (ChaCha20 seeds) is read for full c1 only ---------------


@pytest.mark.parametrize("version", [0, 3, 0xFFFF])
def test_unknown_version_raises_the_typed_error(small_ctx, cts, version):
    with pytest.raises(xcloud.crypto.UnsupportedVersionError, match="unsupported version"):
        xcloud.CiphertextBlocks.from_bytes(small_ctx, edited(cts["public"].to_bytes(), OFF_VERSION, "H", version))


@pytest.mark.parametrize("origin", ["secret", "compact"])
def test_version_1_with_seeds_raises_the_typed_error(small_ctx, cts, origin):
    data = cts[origin].to_bytes()
    with pytest.raises(xcloud.crypto.UnsupportedVersionError, match="version 1 with a seeded c1"):
        xcloud.CiphertextBlocks.from_bytes(small_ctx, edited(data, OFF_VERSION, "H", 1))


def test_unsupported_version_error_is_an_integrity_error():
    assert issubclass(xcloud.crypto.UnsupportedVersionError, xcloud.IntegrityError)


@pytest.mark.parametrize("origin", ["public", "aggregate"])
def test_version_1_with_full_c1_still_reads_the_same(small_ctx, small_keys, cts, origin):
    """A full-c1 message carries no seed, so version 1 and 2 mean the same polynomials."""
    data = cts[origin].to_bytes()
    old = xcloud.CiphertextBlocks.from_bytes(small_ctx, edited(data, OFF_VERSION, "H", 1))
    assert old.to_bytes() == data  # written back as version 2, otherwise identical
    np.testing.assert_array_equal(
        xcloud.decrypt_blocks(small_keys, old), xcloud.decrypt_blocks(small_keys, cts[origin])
    )
