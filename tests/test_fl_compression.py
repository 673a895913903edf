"""Codecs of the plain part (xcloud.fl.compression): round trips, error bounds,
error feedback, sizes, the auto policy, and rejection of every malformed encoding.

Layout of q8/topk encodings (little-endian); offsets used below:

    0 u8 version | 1 u8 codec id | 2 u8 index form | 3 u8 value form | 4 u32 chunk
    8 u64 n | 16 u64 k | 24 u64 index bytes | 32 f32 scales | i8 values | index
"""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import xcloud
from xcloud.fl.compression import (
    AutoPolicy,
    Codec,
    CodecError,
    ErrorFeedback,
    _varint_decode,
    _varint_encode,
    compress,
    decode,
    make_compression,
    resolve,
)

HEADER = 32
OFF_VERSION, OFF_CODEC, OFF_FORM, OFF_VFORM, OFF_CHUNK, OFF_N, OFF_K, OFF_INDEX = 0, 1, 2, 3, 4, 8, 16, 24
FLOAT32_EPS = 2.0**-23


def _vec(rng: np.random.Generator, n: int) -> np.ndarray:
    """Update-like values: mostly small, a few large (heavy tails)."""
    return (rng.standard_normal(n) * 1e-3 * rng.lognormal(0.0, 1.0, n)).astype(np.float32)


def _scales(data: bytes) -> np.ndarray:
    k, chunk = struct.unpack_from("<Q", data, OFF_K)[0], struct.unpack_from("<I", data, OFF_CHUNK)[0]
    return np.frombuffer(data, "<f4", count=-(-k // chunk), offset=HEADER)


def edited(data: bytes, offset: int, fmt: str, value: object) -> bytes:
    buf = bytearray(data)
    struct.pack_into("<" + fmt, buf, offset, value)
    return bytes(buf)


def assert_rejected(data: bytes, n: int, codec: str, what: str) -> None:
    with pytest.raises(CodecError):
        decode(data, n, codec)
        pytest.fail(f"accepted: {what}")


# -- round trips and error bounds ------------------------------------------------------


def test_none_is_exact_float32(rng):
    x = _vec(rng, 10_001)
    data, sent = Codec("none").encode(x)
    assert data == x.astype("<f4").tobytes()  # the pre-compression wire bytes
    np.testing.assert_array_equal(decode(data, x.size, "none"), x)
    np.testing.assert_array_equal(sent, x)


@pytest.mark.parametrize("n", [0, 1, 4095, 4096, 4097, 100_000])
def test_q8_error_is_at_most_half_a_scale_per_chunk(rng, n):
    # Prepare
    x = _vec(rng, n)
    codec = Codec("q8", chunk=4096)
    # Execute
    data, sent = codec.encode(x)
    y = decode(data, n, "q8")
    # Assert: the decoder sees exactly what the sender booked, within scale/2 per chunk
    np.testing.assert_array_equal(y, sent)
    scales = _scales(data)
    assert scales.size == math.ceil(n / 4096)
    per_value_scale = np.repeat(scales, 4096)[:n]
    assert np.all(np.abs(x - y) <= per_value_scale * (0.5 + 256 * FLOAT32_EPS))
    if n:
        np.testing.assert_allclose(scales, [np.abs(c).max() / 127 for c in np.array_split(x, range(4096, n, 4096))])


def test_q8_one_large_value_only_coarsens_its_own_chunk(rng):
    codec = Codec("q8", chunk=1024)
    x = _vec(rng, 3 * 1024)
    before = decode(codec.encode(x)[0], x.size, "q8")
    x[100] = 1e3  # in chunk 0
    y = decode(codec.encode(x)[0], x.size, "q8")
    np.testing.assert_array_equal(y[1024:], before[1024:])  # chunks 1 and 2 keep their own scales
    assert np.abs(x[:1024] - y[:1024]).max() > 10 * np.abs(x[1024:] - y[1024:]).max()  # chunk 0 is coarse


def test_q8_is_a_quarter_of_float32_plus_headers():
    n = 190_976
    data, _ = Codec("q8", chunk=4096).encode(np.ones(n, np.float32))
    assert len(data) == HEADER + 4 * math.ceil(n / 4096) + n
    assert 0.25 < len(data) / (4 * n) < 0.2503


def test_topk_keeps_exactly_the_k_largest(rng):
    # Prepare: distinct magnitudes, so the top k is unique
    n = 50_000
    x = (rng.permutation(n).astype(np.float32) + 1.0) * rng.choice([-1.0, 1.0], n).astype(np.float32) * 1e-4
    codec = Codec("topk", fraction=0.1)
    k = codec.kept(n)
    # Execute
    data, sent = codec.encode(x)
    y = decode(data, n, "topk")
    # Assert
    assert k == 5000
    np.testing.assert_array_equal(y, sent)
    expected = np.sort(np.argsort(-np.abs(x))[:k])
    np.testing.assert_array_equal(np.flatnonzero(y), expected)
    kept_scales = np.repeat(_scales(data), 4096)[:k]
    assert np.all(np.abs(x[expected] - y[expected]) <= kept_scales * (0.5 + 256 * FLOAT32_EPS))


@pytest.mark.parametrize(("fraction", "form"), [(0.01, 2), (0.1, 2), (0.3, 1), (1.0, 1)])
def test_topk_index_is_the_smaller_of_bitmap_and_varint_deltas(rng, fraction, form):
    n = 20_000
    x = _vec(rng, n)
    codec = Codec("topk", fraction=fraction)
    data, _ = codec.encode(x)
    k = codec.kept(n)
    index_len = struct.unpack_from("<Q", data, OFF_INDEX)[0]
    assert data[OFF_FORM] == form
    assert len(data) == HEADER + 4 * math.ceil(k / 4096) + k + index_len
    if form == 1:
        assert index_len == math.ceil(n / 8)
    else:
        assert k <= index_len < math.ceil(n / 8)


def test_topk_at_a_tenth_is_about_a_twentieth_of_float32(rng):
    n = 190_976
    data, _ = Codec("topk", fraction=0.1).encode(_vec(rng, n))
    assert len(data) / (4 * n) < 0.06


def test_varints_of_every_length_round_trip():
    # Gaps that need 1..5 LEB128 bytes (a vector long enough for 5-byte gaps would take gigabytes)
    gaps = np.array([0, 1, 127, 128, (1 << 14) - 1, 1 << 14, (1 << 21) + 5, (1 << 28) - 1, 1 << 28, (1 << 31) - 1])
    data = _varint_encode(gaps)
    assert len(data) == 1 + 1 + 1 + 2 + 2 + 3 + 4 + 4 + 5 + 5
    np.testing.assert_array_equal(_varint_decode(np.frombuffer(data, np.uint8), gaps.size), gaps)


def test_topk_positions_decode_from_varint_deltas():
    n = 100_000
    idx = np.array([0, 1, 129, 130 + (1 << 14), 99_999])
    x = np.zeros(n, np.float32)
    x[idx] = np.arange(1, idx.size + 1, dtype=np.float32)
    data, _ = Codec("topk", fraction=idx.size / n).encode(x)
    assert data[OFF_FORM] == 2
    np.testing.assert_array_equal(np.flatnonzero(decode(data, n, "topk")), idx)


@pytest.mark.parametrize("name", ["none", "q8", "topk"])
def test_non_finite_values_are_refused_by_the_encoder(name):
    for bad in (np.nan, np.inf):
        x = np.zeros(100, np.float32)
        x[7] = bad
        with pytest.raises(ValueError):
            Codec(name).encode(x)


def test_codec_parameters_are_validated():
    for kwargs in ({"name": "zip"}, {"name": "q8", "chunk": 0}, {"name": "topk", "fraction": 0.0}):
        with pytest.raises(ValueError):
            Codec(**kwargs)
    with pytest.raises(ValueError):
        Codec("topk", fraction=1.5)


# -- error feedback ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["q8", "topk"])
def test_error_feedback_makes_the_sent_sum_track_the_true_sum(rng, name):
    # Prepare
    n, rounds = 20_000, 200
    codec = Codec(name, chunk=1024, fraction=0.1)
    fb = ErrorFeedback()
    true_sum = np.zeros(n, np.float64)
    sent_sum = np.zeros(n, np.float64)
    plain_sum = np.zeros(n, np.float64)  # the same codec without error feedback
    gap = []
    # Execute
    for _ in range(rounds):
        x = _vec(rng, n)
        true_sum += x
        sent_sum += decode(compress(x, codec, fb), n, name)
        plain_sum += decode(compress(x, codec), n, name)
        gap.append(float(np.linalg.norm(true_sum - sent_sum)))
    # Assert: what is missing is exactly the residual, and it stays bounded
    np.testing.assert_allclose(true_sum - sent_sum, fb.residual, atol=1e-5)
    assert max(gap[150:]) < 1.5 * max(gap[50:100]) + 1e-6  # no drift
    assert gap[-1] < 0.5 * float(np.linalg.norm(true_sum - plain_sum))  # without feedback the error accumulates
    if name == "q8":
        assert np.abs(fb.residual).max() < 0.05 * np.abs(true_sum).max()


def test_switching_to_none_delivers_the_residual(rng):
    fb = ErrorFeedback()
    x, y = _vec(rng, 100), _vec(rng, 100)
    sent = decode(compress(x, Codec("topk"), fb), 100, "topk")
    owed = fb.residual.copy()
    sent += decode(compress(y, Codec("none"), fb), 100, "none")
    np.testing.assert_allclose(sent, x + y, atol=1e-7)  # nothing is lost when the policy moves to none
    assert np.abs(owed).max() > 0 and fb.residual is None


def test_error_feedback_state_round_trips_and_is_validated(rng):
    fb = ErrorFeedback()
    assert fb.state_dict() == {"residual": None}
    compress(_vec(rng, 1000), Codec("topk", fraction=0.1), fb)
    other = ErrorFeedback()
    other.load_state_dict({"residual": torch.from_numpy(fb.state_dict()["residual"])})  # as read from a checkpoint
    np.testing.assert_array_equal(other.residual, fb.residual)
    x = _vec(rng, 1000)
    assert compress(x, Codec("q8"), fb) == compress(x, Codec("q8"), other)
    with pytest.raises(ValueError):
        other.load_state_dict({"residual": np.full(3, np.nan)})
    with pytest.raises(ValueError):
        fb.compensate(np.zeros(999, np.float32))  # another size


# -- the auto policy ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mbps", "name"), [(10_000, "none"), (500, "none"), (499.9, "q8"), (50, "q8"), (49.9, "topk"), (0.1, "topk")]
)
def test_auto_policy_thresholds(mbps, name):
    policy = AutoPolicy(none_mbps=500, q8_mbps=50, topk_fraction=0.2)
    codec = policy.select(mbps)
    assert codec.name == name and codec.fraction == 0.2
    assert resolve(policy, mbps) == codec


def test_policy_construction_and_resolution():
    assert resolve(None, 1.0) == Codec("none")
    assert resolve(Codec("q8"), 1.0).name == "q8"
    assert isinstance(make_compression("auto", none_mbps=100, q8_mbps=10), AutoPolicy)
    assert make_compression("topk", topk_fraction=0.05) == Codec("topk", fraction=0.05)
    for bad in ({"none_mbps": 10, "q8_mbps": 20}, {"q8_mbps": 0.0}):
        with pytest.raises(ValueError):
            AutoPolicy(**bad)
    with pytest.raises(ValueError):
        make_compression("gzip")


# -- bad input: every malformed encoding raises CodecError --------------------------------


@pytest.fixture(scope="module")
def encodings() -> dict[str, tuple[bytes, int, str]]:
    """One encoding of each kind, of 5000 values: q8, topk with varint deltas, topk with a bitmap."""
    x = _vec(np.random.default_rng(5), 5000)
    q8 = Codec("q8", chunk=1024).encode(x)[0]
    sparse = Codec("topk", chunk=256, fraction=0.02).encode(x)[0]
    dense = Codec("topk", chunk=256, fraction=0.4).encode(x)[0]
    assert sparse[OFF_FORM] == 2 and dense[OFF_FORM] == 1
    return {"q8": (q8, 5000, "q8"), "varint": (sparse, 5000, "topk"), "bitmap": (dense, 5000, "topk")}


KINDS = ["q8", "varint", "bitmap"]


def test_codec_error_is_an_integrity_error():
    assert issubclass(CodecError, xcloud.IntegrityError)


@pytest.mark.parametrize("kind", KINDS)
def test_another_codec_or_count_is_rejected(encodings, kind):
    data, n, codec = encodings[kind]
    other = "topk" if codec == "q8" else "q8"
    assert_rejected(data, n, other, "decoded as another codec")
    assert_rejected(data, n, "none", "decoded as float32")
    assert_rejected(data, n, "zip", "unknown codec")
    assert_rejected(data, n - 1, codec, "one value fewer expected")
    assert_rejected(data, n + 1, codec, "one value more expected")
    assert_rejected(data, -1, codec, "negative count")
    assert_rejected(data, 1 << 40, codec, "absurd count")


def test_float32_of_the_wrong_length_is_rejected():
    data = np.zeros(10, "<f4").tobytes()
    for cut in (data[:-1], data[:-4], data + b"\0", b""):
        assert_rejected(cut, 10, "none", f"{len(cut)} bytes")


@pytest.mark.parametrize("kind", KINDS)
def test_truncations_and_extensions_are_rejected(encodings, kind):
    data, n, codec = encodings[kind]
    for length in sorted({*range(0, HEADER + 8), *range(len(data) - 40, len(data)), len(data) // 2}):
        assert_rejected(data[:length], n, codec, f"truncated to {length}")
    for extra in (1, 4, 33, 4096):
        assert_rejected(data + bytes(extra), n, codec, f"{extra} bytes appended")
    assert_rejected(data + data, n, codec, "twice")


@pytest.mark.parametrize("kind", KINDS)
def test_bad_header_fields_are_rejected(encodings, kind):
    data, n, codec = encodings[kind]
    k, index_len = struct.unpack_from("<QQ", data, OFF_K)
    cases = [
        (OFF_VERSION, "B", 0),
        (OFF_VERSION, "B", 2),
        (OFF_CODEC, "B", 0),
        (OFF_CODEC, "B", 3),
        (OFF_CODEC, "B", 255),
        (OFF_FORM, "B", 3),
        (OFF_VFORM, "B", 0),
        (OFF_VFORM, "B", 2),
        (OFF_CHUNK, "I", 0),
        (OFF_CHUNK, "I", (1 << 24) + 1),
        (OFF_CHUNK, "I", 0xFFFFFFFF),
        (OFF_N, "Q", n + 1),
        (OFF_N, "Q", 2**64 - 1),
        (OFF_K, "Q", k + 1),
        (OFF_K, "Q", 2**64 - 1),
        (OFF_INDEX, "Q", index_len + 1),
        (OFF_INDEX, "Q", 2**64 - 1),
    ]
    if codec == "q8":
        cases += [(OFF_FORM, "B", 1), (OFF_FORM, "B", 2), (OFF_K, "Q", n - 1), (OFF_INDEX, "Q", 1)]
    else:
        cases += [(OFF_K, "Q", 0), (OFF_K, "Q", n + 1), (OFF_FORM, "B", 0), (OFF_FORM, "B", 3 - data[OFF_FORM])]
    for off, fmt, value in cases:
        assert_rejected(edited(data, off, fmt, value), n, codec, f"field at {off} set to {value}")


@pytest.mark.parametrize("kind", KINDS)
def test_bad_scales_and_values_are_rejected(encodings, kind):
    data, n, codec = encodings[kind]
    # ... and finite scales so large that 127 of them overflow float32 to inf (2.7e36 and up)
    for bad in (np.nan, np.inf, -np.inf, -1.0, -1e-30, 2.7e36, 3e38):
        assert_rejected(edited(data, HEADER, "f", bad), n, codec, f"scale {bad}")
    m = _scales(data).size
    assert_rejected(edited(data, HEADER + 4 * m + 3, "b", -128), n, codec, "int8 value -128")


def test_bad_bitmaps_are_rejected(encodings):
    data, n, codec = encodings["bitmap"]
    k, index_len = struct.unpack_from("<QQ", data, OFF_K)
    start = len(data) - index_len
    bitmap = np.frombuffer(data, np.uint8, offset=start)
    # a bit past the last value (5000 values: the last byte uses all 8 bits, so use a wider one)
    x = _vec(np.random.default_rng(6), 5003)
    wide = Codec("topk", chunk=256, fraction=0.4).encode(x)[0]
    assert_rejected(edited(wide, len(wide) - 1, "B", wide[-1] | 0x80), 5003, "topk", "bit past the end")
    # one position more or fewer than announced
    zero = int(np.flatnonzero(bitmap != 0xFF)[0])
    free_bit = next(b for b in range(8) if not (bitmap[zero] >> b) & 1)
    assert_rejected(edited(data, start + zero, "B", int(bitmap[zero]) | (1 << free_bit)), n, codec, "extra position")
    set_byte = int(np.flatnonzero(bitmap)[0])
    low = int(bitmap[set_byte]) & -int(bitmap[set_byte])
    assert_rejected(edited(data, start + set_byte, "B", int(bitmap[set_byte]) ^ low), n, codec, "missing position")


def _with_index(template: bytes, index: bytes, k: int) -> bytes:
    """A topk varint encoding of ``k`` values whose index bytes are replaced (scales/values kept from template)."""
    chunk = struct.unpack_from("<I", template, OFF_CHUNK)[0]
    m = -(-k // chunk)
    head = bytearray(template[:HEADER])
    struct.pack_into("<QQ", head, OFF_K, k, len(index))
    return bytes(head) + template[HEADER : HEADER + 4 * m] + bytes([1] * k) + index


def test_bad_varint_indices_are_rejected(encodings):
    template, n, _ = encodings["varint"]  # n = 5000
    good = _with_index(template, bytes([5, 0, 7]), 3)
    np.testing.assert_array_equal(np.flatnonzero(decode(good, n, "topk")), [5, 6, 14])
    cases = {
        "non-minimal (0x85 0x00)": (bytes([0x85, 0x00, 0, 7]), 3),
        "ends mid-varint": (bytes([5, 0, 0x87]), 3),
        "one terminator fewer than k": (bytes([5, 0x80, 7]), 3),
        "position past the end": (bytes([0x88, 0x27, 0]), 2),  # 0x88 0x27 = 5000
        "sum past the end": (bytes([0xE7, 0x26, 0x7F]), 2),  # 4967 then +128
        "overlong (6 bytes)": (bytes([0x81, 0x80, 0x80, 0x80, 0x80, 0x00]), 1),
        "no positions but bytes": (bytes([5]), 0),
    }
    for what, (index, k) in cases.items():
        assert_rejected(_with_index(template, index, k), n, "topk", what)


@pytest.mark.parametrize("kind", KINDS)
def test_every_header_bit_flip_is_rejected_or_decodes_safely(encodings, kind):
    """Without the envelope's MAC, some flips (of the chunk size, say) still describe a valid encoding;
    none may escape as another exception or produce a wrong-sized or non-finite vector."""
    data, n, codec = encodings[kind]
    for pos in range(HEADER):
        for bit in range(8):
            buf = bytearray(data)
            buf[pos] ^= 1 << bit
            try:
                y = decode(bytes(buf), n, codec)
            except CodecError:
                continue
            assert pos in range(OFF_CHUNK, OFF_CHUNK + 4), f"bit {bit} of byte {pos} flipped and accepted"
            assert y.shape == (n,) and y.dtype == np.float32 and np.all(np.isfinite(y))


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_random_mutations_never_escape_as_another_error(encodings, data):
    # Prepare: arbitrary edits (flip, set, delete, insert) of one of the encodings
    kind = data.draw(st.sampled_from(KINDS))
    original, n, codec = encodings[kind]
    buf = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "set", "delete", "insert"]))
        pos = data.draw(st.integers(0, len(buf) - 1))
        if op == "flip":
            buf[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "set":
            buf[pos] = data.draw(st.integers(0, 255))
        elif op == "delete":
            del buf[pos : pos + data.draw(st.integers(1, 64))]
        else:
            buf[pos:pos] = data.draw(st.binary(min_size=1, max_size=64))
    # Execute / Assert: CodecError, or a well-formed vector of the expected size
    try:
        y = decode(bytes(buf), n, codec)
    except CodecError:
        return
    assert y.shape == (n,) and y.dtype == np.float32 and np.all(np.isfinite(y))
