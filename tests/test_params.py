"""Tests of CKKS parameter validation, the security table and the fingerprint
(cpp/src/ckks/params.h, python/xcloud/crypto/context.py)."""

from __future__ import annotations

import hashlib
import math
import struct
from typing import Any

import numpy as np
import pytest

import xcloud
from xcloud import _native
from xcloud._native import testing

# Max log2 Q for a uniform ternary secret, N = 1024 .. 32768 (cpp/src/ckks/params.cpp).
# 128-bit: the newer, lower estimates DESIGN.md asks to stay below;
# 192/256-bit: HomomorphicEncryption.org standard (2018), Table 1, ternary column.
SECURITY_TABLE = {
    128: [26, 53, 107, 214, 431, 868],
    192: [19, 37, 75, 152, 305, 611],
    256: [14, 29, 58, 118, 237, 476],
}
TABLE_DEGREES = [1024, 2048, 4096, 8192, 16384, 32768]

# Known answer for the default CkksContext(): its canonical serialisation and
# fingerprint (SHA-256 of it). If this changes, the parameter format or the
# default parameters changed: bump the canonical format version in params.cpp
# (and the wire format's) before updating these literals.
DEFAULT_CANONICAL_HEX = "58434b5001000c0201e0feff0f0000000140fcff0f0000002600000000000000f03f8000010100"
DEFAULT_FINGERPRINT_HEX = "55a5742c8133269efa42079349a52f093dc4c4415641a5882287fda5fe53f9a5"


def is_prime(n: int) -> bool:
    """Deterministic Miller-Rabin for n < 3.3e24 (first 13 primes as bases), independent of the kernel."""
    bases = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41)
    if n < 2:
        return False
    for p in bases:
        if n % p == 0:
            return n == p
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for a in bases:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def split_bits(total: int) -> tuple[int, ...]:
    """`total` bits as the fewest near-equal prime sizes of at most 50 bits each."""
    count = -(-total // 50)
    return tuple(total // count + (i < total % count) for i in range(count))


# -- defaults ---------------------------------------------------------------------------------


def test_default_context_is_n4096_two_36_bit_primes_scale_2_38() -> None:
    # Prepare / Execute
    ctx = xcloud.CkksContext()
    # Assert
    assert ctx.n == ctx.slots == 4096
    assert len(ctx.primes) == 2
    assert all(q.bit_length() == 36 for q in ctx.primes)
    assert ctx.scale == 2.0**38
    assert ctx.max_value == 1.0
    assert 71 < ctx.log2_q <= 72
    assert ctx.literal == xcloud.CkksLiteral(12, (36, 36), 38, 1.0, 128)
    assert ctx.insecure_params is False


def test_default_context_known_answer_canonical_bytes_and_fingerprint() -> None:
    # Prepare
    ctx = xcloud.CkksContext()
    # Execute
    canonical, fingerprint = ctx.canonical_bytes(), ctx.fingerprint
    # Assert
    assert canonical.hex() == DEFAULT_CANONICAL_HEX
    assert hashlib.sha256(canonical).hexdigest() == DEFAULT_FINGERPRINT_HEX
    assert fingerprint.hex() == DEFAULT_FINGERPRINT_HEX


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"log_n": 13, "prime_bits": (50, 20, 50), "scale_bits": 45, "max_value": 8.0, "security_bits": 192}],
    ids=["default", "custom"],
)
def test_canonical_bytes_layout_matches_the_parameters(kwargs: dict[str, Any]) -> None:
    # Prepare
    ctx = xcloud.CkksContext(**kwargs)
    lit = ctx.literal
    # Execute: version 1, little-endian: "XCKP", u16 version, u8 log_n, u8 L, L x u64 primes,
    # u16 scale_bits, f64 max_value, u16 security_bits, u8 secret, u8 error, u8 insecure.
    data = ctx.canonical_bytes()
    magic, version, log_n, count = struct.unpack_from("<4sHBB", data, 0)
    primes = struct.unpack_from(f"<{count}Q", data, 8)
    tail = struct.unpack_from("<HdHBBB", data, 8 + 8 * count)
    # Assert
    assert (magic, version, log_n, count) == (b"XCKP", 1, lit.log_n, len(lit.prime_bits))
    assert list(primes) == ctx.primes
    assert tail == (lit.scale_bits, lit.max_value, lit.security_bits, 1, 1, 0)
    assert len(data) == 8 + 8 * count + struct.calcsize("<HdHBBB")


@pytest.mark.parametrize(
    "kwargs", [{}, {"log_n": 11, "prime_bits": (27, 26)}, {"log_n": 14, "prime_bits": (40, 40, 40)}]
)
def test_fingerprint_is_sha256_of_canonical_bytes(kwargs: dict[str, Any]) -> None:
    # Prepare
    ctx = xcloud.CkksContext(**kwargs)
    # Execute
    digest = hashlib.sha256(ctx.canonical_bytes()).digest()
    # Assert
    assert ctx.fingerprint == digest


def test_fingerprint_changes_with_every_parameter() -> None:
    # Prepare: the default and one variant per field of the literal, plus the insecure flag.
    variants = [
        xcloud.CkksContext(),
        xcloud.CkksContext.insecure(log_n=12),
        xcloud.CkksContext(log_n=13),
        xcloud.CkksContext(prime_bits=(36, 35)),
        xcloud.CkksContext(prime_bits=(35, 36)),
        xcloud.CkksContext(scale_bits=37),
        xcloud.CkksContext(max_value=2.0),
        xcloud.CkksContext(security_bits=192),
    ]
    # Execute
    fingerprints = [c.fingerprint for c in variants]
    # Assert
    assert len(set(fingerprints)) == len(variants)
    assert xcloud.CkksContext().fingerprint == fingerprints[0]


# -- the security table --------------------------------------------------------------------------


@pytest.mark.parametrize("security_bits", sorted(SECURITY_TABLE))
def test_max_log_q_follows_the_security_table(security_bits: int) -> None:
    # Prepare
    expected = SECURITY_TABLE[security_bits]
    # Execute
    got = [_native.max_log_q(n, security_bits) for n in TABLE_DEGREES]
    # Assert
    assert got == expected


@pytest.mark.parametrize("security_bits", sorted(SECURITY_TABLE))
def test_max_log_q_for_n65536_uses_the_n32768_row(security_bits: int) -> None:
    # Prepare / Execute
    got = _native.max_log_q(65536, security_bits)
    # Assert
    assert got == SECURITY_TABLE[security_bits][-1]


def test_max_log_q_tightens_with_the_security_level() -> None:
    # Prepare / Execute
    rows = {s: [_native.max_log_q(n, s) for n in TABLE_DEGREES] for s in SECURITY_TABLE}
    # Assert: strictly lower bounds at higher security, for every N.
    assert all(a > b > c for a, b, c in zip(rows[128], rows[192], rows[256], strict=True))


@pytest.mark.parametrize(("n", "security_bits"), [(512, 128), (131072, 128), (3000, 128), (0, 128), (4096, 100)])
def test_max_log_q_rejects_unknown_degree_or_level(n: int, security_bits: int) -> None:
    # Prepare (the arguments) / Execute / Assert
    with pytest.raises(xcloud.ParameterError):
        _native.max_log_q(n, security_bits)


# (log_n, security_bits, limit) for every row whose limit + 1 is below the 120-bit cap on
# the total modulus, so that the security check alone decides.
SECURITY_BOUNDARIES = [
    (log_n, s, limit)
    for s, limits in SECURITY_TABLE.items()
    for log_n, limit in zip(range(10, 16), limits, strict=True)
    if log_n >= 11 and limit + 1 <= 120
]


@pytest.mark.parametrize(("log_n", "security_bits", "limit"), SECURITY_BOUNDARIES)
def test_security_limit_is_enforced_exactly(log_n: int, security_bits: int, limit: int) -> None:
    # Prepare: primes whose log2 Q rounds up to exactly the limit, and to one bit more.
    at_limit, over_limit = split_bits(limit), split_bits(limit + 1)
    # Execute
    ok = xcloud.CkksContext(log_n=log_n, prime_bits=at_limit, scale_bits=20, security_bits=security_bits)
    # Assert
    assert math.ceil(ok.log2_q) == limit
    with pytest.raises(xcloud.ParameterError, match=f"exceeds {limit} bits"):
        xcloud.CkksContext(log_n=log_n, prime_bits=over_limit, scale_bits=20, security_bits=security_bits)


def test_n2048_with_two_36_bit_primes_is_refused_as_insecure() -> None:
    # Prepare: log2 Q = 72 > 53, the 128-bit limit for N = 2048.
    kwargs: dict[str, Any] = {"log_n": 11, "prime_bits": (36, 36)}
    # Execute / Assert
    with pytest.raises(xcloud.ParameterError, match="72 exceeds 53"):
        xcloud.CkksContext(**kwargs)


def test_insecure_context_skips_the_security_check_and_says_so() -> None:
    # Prepare
    kwargs: dict[str, Any] = {"log_n": 11, "prime_bits": (36, 36)}
    # Execute
    ctx = xcloud.CkksContext.insecure(**kwargs)
    same_literal_secure = xcloud.CkksContext()
    same_literal_insecure = xcloud.CkksContext.insecure(log_n=12)
    # Assert
    assert ctx.n == 2048 and ctx.insecure_params is True
    assert ctx.fingerprint != same_literal_secure.fingerprint
    assert same_literal_insecure.insecure_params is True
    assert same_literal_insecure.primes == same_literal_secure.primes
    assert same_literal_insecure.fingerprint != same_literal_secure.fingerprint
    assert same_literal_insecure != same_literal_secure
    assert "INSECURE" in repr(ctx)


def test_higher_security_levels_refuse_what_128_bit_allows() -> None:
    # Prepare: N = 4096 with log2 Q = 100: fine at 128 (107), too much at 192 (75) and 256 (58).
    kwargs: dict[str, Any] = {"log_n": 12, "prime_bits": (50, 50)}
    # Execute
    ctx = xcloud.CkksContext(**kwargs)
    # Assert
    assert ctx.literal.security_bits == 128
    for security_bits, limit in [(192, 75), (256, 58)]:
        with pytest.raises(xcloud.ParameterError, match=f"exceeds {limit} bits"):
            xcloud.CkksContext(**kwargs, security_bits=security_bits)


def test_n65536_is_accepted_under_the_n32768_bound() -> None:
    # Prepare / Execute
    ctx = xcloud.CkksContext(log_n=16, prime_bits=(40, 40, 40), security_bits=256)
    # Assert
    assert ctx.n == 65536 and not ctx.insecure_params


# -- malformed literals: one test per documented failure ---------------------------------------------

INVALID_LITERALS: list[tuple[str, dict[str, Any], str]] = [
    ("log_n_below_secure_minimum", {"log_n": 10}, "log_n"),
    ("log_n_above_16", {"log_n": 17}, "log_n"),
    ("log_n_negative", {"log_n": -1}, "log_n"),
    ("no_primes", {"prime_bits": ()}, "1 to 4"),
    ("five_primes", {"log_n": 15, "prime_bits": (24, 24, 24, 24, 24)}, "1 to 4"),
    ("prime_of_19_bits", {"prime_bits": (19, 36)}, "20 to 50"),
    ("prime_of_51_bits", {"prime_bits": (36, 51)}, "20 to 50"),
    ("primes_total_above_120_bits", {"log_n": 14, "prime_bits": (50, 50, 50)}, "at most 120"),
    ("scale_bits_9", {"scale_bits": 9}, "scale_bits"),
    ("scale_bits_81", {"scale_bits": 81}, "scale_bits"),
    ("scale_too_large_for_modulus", {"scale_bits": 70}, "needs log2 Q"),
    ("scale_and_max_value_too_large", {"prime_bits": (30, 30), "max_value": 2.0**20}, "needs log2 Q"),
    ("max_value_zero", {"max_value": 0.0}, "max_value"),
    ("max_value_negative", {"max_value": -1.0}, "max_value"),
    ("max_value_nan", {"max_value": math.nan}, "max_value"),
    ("max_value_inf", {"max_value": math.inf}, "max_value"),
    ("max_value_above_2_20", {"max_value": 2.0**20 * 1.5}, "max_value"),
    ("security_bits_100", {"security_bits": 100}, "security_bits"),
    ("security_bits_129", {"security_bits": 129}, "security_bits"),
]


@pytest.mark.parametrize(("kwargs", "message"), [c[1:] for c in INVALID_LITERALS], ids=[c[0] for c in INVALID_LITERALS])
def test_invalid_literal_raises_parameter_error(kwargs: dict[str, Any], message: str) -> None:
    # Prepare (the literal) / Execute / Assert
    with pytest.raises(xcloud.ParameterError, match=message) as info:
        xcloud.CkksContext(**kwargs)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(("log_n", "message"), [(3, r"\[4, 16\]"), (17, r"\[4, 16\]")])
def test_insecure_context_still_validates_its_structure(log_n: int, message: str) -> None:
    # Prepare / Execute / Assert
    with pytest.raises(xcloud.ParameterError, match=message):
        xcloud.CkksContext.insecure(log_n=log_n)
    with pytest.raises(xcloud.ParameterError, match="20 to 50"):
        xcloud.CkksContext.insecure(prime_bits=(36, 60))


def test_parameter_error_is_a_value_error() -> None:
    # Prepare / Execute / Assert
    assert issubclass(xcloud.ParameterError, ValueError)
    assert xcloud.ParameterError is _native.ParameterError


def test_largest_scale_that_fits_the_modulus_is_accepted() -> None:
    # Prepare: one 40-bit prime (log2 Q just under 40) needs scale_bits + 0.5 + log2(max_value) + 2 < log2 Q.
    # Execute
    ctx = xcloud.CkksContext(prime_bits=(40,), scale_bits=37)
    # Assert: 37 fits, 38 does not. (With the default 72-bit Q the modulus would allow 2^69, but plaintext
    # coefficients must also fit the int64 rounding: scale_bits 61 at most, see the test below; until
    # 2026-12-02 this test accepted 2^69 with the default primes, whose encryptions wrapped silently.)
    assert ctx.scale == 2.0**37
    with pytest.raises(xcloud.ParameterError, match="needs log2 Q >"):
        xcloud.CkksContext(prime_bits=(40,), scale_bits=38)
    assert xcloud.CkksContext(scale_bits=61).scale == 2.0**61


# -- primes ------------------------------------------------------------------------------------------

PRIME_CONFIGS = [
    (12, (36, 36)),
    (13, (50, 20, 50)),
    (13, (30, 30, 30, 30)),
    (15, (20, 36)),
    (16, (40, 40, 40)),
]


@pytest.mark.parametrize(("log_n", "prime_bits"), PRIME_CONFIGS)
def test_primes_are_distinct_ntt_friendly_primes_of_the_requested_size(log_n: int, prime_bits: tuple[int, ...]) -> None:
    # Prepare
    two_n = 2 << log_n
    # Execute
    primes = xcloud.CkksContext(log_n=log_n, prime_bits=prime_bits, scale_bits=20).primes
    # Assert
    assert len(primes) == len(prime_bits)
    assert len(set(primes)) == len(primes)
    for q, bits in zip(primes, prime_bits, strict=True):
        assert q.bit_length() == bits
        assert q % two_n == 1
        assert is_prime(q)


@pytest.mark.parametrize(("log_n", "prime_bits"), PRIME_CONFIGS)
def test_primes_are_deterministic_and_the_largest_available(log_n: int, prime_bits: tuple[int, ...]) -> None:
    # Prepare: each prime is the largest prime = 1 mod 2N below 2^bits not already taken.
    two_n = 2 << log_n
    expected: list[int] = []
    for bits in prime_bits:
        expected.append(int(testing.generate_ntt_primes(bits, two_n, 1, expected)[0]))
    # Execute
    first = xcloud.CkksContext(log_n=log_n, prime_bits=prime_bits, scale_bits=20).primes
    second = xcloud.CkksContext(log_n=log_n, prime_bits=prime_bits, scale_bits=20).primes
    # Assert
    assert first == second == expected
    for q, bits in zip(first, prime_bits, strict=True):
        skipped = [c for c in range(q + two_n, 1 << bits, two_n) if c not in first]
        assert not any(is_prime(c) for c in skipped)


def test_generate_ntt_primes_returns_decreasing_primes_and_honours_exclusions() -> None:
    # Prepare
    two_n = 2 * 4096
    # Execute
    primes = [int(q) for q in testing.generate_ntt_primes(36, two_n, 5)]
    rest = [int(q) for q in testing.generate_ntt_primes(36, two_n, 3, primes[:2])]
    # Assert
    assert primes == sorted(primes, reverse=True) and len(set(primes)) == 5
    assert all(is_prime(q) and q % two_n == 1 and q.bit_length() == 36 for q in primes)
    assert rest == primes[2:]


@pytest.mark.parametrize(("bits", "two_n", "count"), [(19, 2048, 1), (51, 2048, 1), (20, 2**17, 2)])
def test_generate_ntt_primes_rejects_impossible_requests(bits: int, two_n: int, count: int) -> None:
    # Prepare: bit sizes outside [20, 50]; and only four 20-bit candidates are 1 mod 2^17.
    # Execute / Assert
    with pytest.raises(ValueError):
        testing.generate_ntt_primes(bits, two_n, count)


def test_unsatisfiable_prime_request_raises_parameter_error() -> None:
    with pytest.raises(xcloud.ParameterError, match="not enough"):
        xcloud.CkksContext(log_n=16, prime_bits=(20, 20))


def test_max_log_q_rejects_absurd_degrees() -> None:
    from xcloud import _native

    with pytest.raises(ValueError):
        _native.max_log_q(2**63 + 1, 128)


def test_uniform_sampler_rejects_zero_modulus() -> None:
    from xcloud import _native

    with pytest.raises(ValueError):
        _native.testing.sample_uniform_mod(bytes(32), 0, 5)


@pytest.mark.parametrize("encoding", ["slots", "coefficients"])
@pytest.mark.parametrize(
    ("kwargs", "ok"),
    [
        ({"prime_bits": (50, 50), "scale_bits": 61}, True),  # coefficients up to 2^61.5: fit in int64
        ({"prime_bits": (50, 50), "scale_bits": 62}, False),
        ({"prime_bits": (50, 50), "scale_bits": 64}, False),  # once decrypted [0.5, -0.25, 1] as [-0.5, -0.25, 0.5]
        ({"prime_bits": (50, 50), "scale_bits": 58, "max_value": 16.0}, False),
    ],
)
def test_a_scale_whose_coefficients_overflow_int64_is_refused(kwargs, ok, encoding) -> None:
    if ok:
        ctx = xcloud.CkksContext(**kwargs, encoding=encoding)
        keys = ctx.keygen()
        x = np.array([0.5, -0.25, 1.0, -1.0])
        assert np.abs(xcloud.decrypt_blocks(keys, xcloud.encrypt_blocks(keys, x)) - x).max() <= 2.0**-40
    else:
        with pytest.raises(xcloud.ParameterError, match="must stay below 2\\^62"):
            xcloud.CkksContext(**kwargs, encoding=encoding)
