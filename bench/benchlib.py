"""Shared pieces of xcloud's end-to-end benchmarks: payload, implementations, metrics.

``bench/test_bench_kernel.py`` (pytest-benchmark) and ``bench/compare.py``
(plain ``time.perf_counter``) both build on this module, so they time the same
calls on the same data.

The payload is float32, uniform in [-1, 1], from ``numpy.random.default_rng``
with a fixed seed: every implementation and every run sees the same values.

Adding a peer (TenSEAL, OpenFHE, ...)
-------------------------------------
Subclass :class:`Implementation`, set ``name``, list its :class:`Case` objects
in ``cases()`` (each names a ``prepare_*`` method of the class), write those
methods (``prepare_x(n, threads) -> Prepared``), and decorate the class with
:func:`register`. If the peer cannot be imported, raise :class:`Unavailable`
from ``__init__``: pytest skips its cases and ``compare.py`` reports it as
unavailable. A peer that must run out of process (the OpenFHE wheel needs
CPython 3.10) can do so inside its ``run`` callable, or time itself and be
added to compare.py's results directly.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from xcloud.experiments.report import CpuShare  # shared with `xcloud experiment`; re-exported here

__all__ = [
    "AGG_INPUTS",
    "BASELINE",
    "LARGE_SIZE",
    "PAYLOAD_SEED",
    "SIZES",
    "Case",
    "Implementation",
    "Prepared",
    "Unavailable",
    "all_cases",
    "all_threads",
    "CpuShare",
    "instance",
    "memcopy_bandwidth",
    "metrics",
    "payload",
    "register",
    "release_all",
    "size_label",
]

PAYLOAD_SEED = 20_240_917
"""Seed of the payload generator: fixed, so every run encrypts the same values."""
SIZES = (1_000_000, 10_000_000)
"""Payload sizes (values) benchmarked by default."""
LARGE_SIZE = 10_000_000
"""Sizes at or above this are 'large' (pytest marker ``bench_large``)."""
AGG_INPUTS = 10
"""Ciphertexts summed by the aggregation benchmarks (each of the payload size)."""
BASELINE = "AES-256-GCM"
"""Implementation that ratios are taken against (same operation, same size)."""


# -- payload -------------------------------------------------------------------

_payloads: dict[int, np.ndarray] = {}


def payload(n: int) -> np.ndarray:
    """The benchmark payload: ``n`` float32 values uniform in [-1, 1], read-only, cached."""
    x = _payloads.get(n)
    if x is None:
        x = np.random.default_rng(PAYLOAD_SEED).uniform(-1.0, 1.0, n).astype(np.float32)
        x.flags.writeable = False
        _payloads[n] = x
    return x


def size_label(n: int) -> str:
    """1000000 -> '1M', 10000000 -> '10M', 4096 -> '4096'."""
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def all_threads() -> int:
    """Hardware threads, as the kernel counts them for ``threads=None``."""
    return os.cpu_count() or 1


# -- cases and implementations -------------------------------------------------


class Unavailable(RuntimeError):
    """An implementation cannot run here (package missing, wrong interpreter...)."""


@dataclass
class Prepared:
    """One benchmark, ready to time.

    Attributes
    ----------
    run : callable
        The timed call, no arguments; returns the operation's output.
    values : int
        Values processed per call (aggregation: values of all inputs).
    output_bytes : callable
        Size in bytes of ``run()``'s result as it would be sent or stored.
    max_abs_error : callable or None
        Max absolute error of ``run()``'s result once decrypted (float64),
        against the exact answer; None for exact (authenticated) encryption.
    consumed_bytes : int or None
        Ciphertext bytes read per call (aggregation), for GB/s.
    extra : dict
        Anything else worth recording (JSON-serialisable).
    """

    run: Callable[[], Any]
    values: int
    output_bytes: Callable[[Any], int]
    max_abs_error: Callable[[Any], float] | None = None
    consumed_bytes: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None
    """Self-reported time of one call (out-of-process peers that time themselves, or a
    time measured on a smaller size and scaled): used instead of the harness's timing."""
    times_s: list[float] | None = None
    """The self-reported individual timings, when ``seconds`` is set."""


@dataclass(frozen=True)
class Case:
    """One (implementation, operation, variant, threads) combination, for any size.

    ``threads=None`` means all hardware threads (the kernel's default).
    """

    impl: type[Implementation]
    op: str  # "encrypt" | "decrypt" | "aggregate"
    method: str  # name of the implementation's prepare_* method
    variant: str = ""  # e.g. "secret-key", "public-key"
    threads: int | None = 1
    inputs: int = 1  # ciphertexts consumed per call (aggregation)

    @property
    def label(self) -> str:
        return f"{self.impl.name} {self.variant}".strip()

    @property
    def is_baseline(self) -> bool:
        """The reference row for ratios: the baseline implementation's plain variant."""
        return self.impl.name == BASELINE and not self.variant

    @property
    def threads_used(self) -> int:
        return all_threads() if self.threads is None else self.threads

    def group(self, n: int) -> str:
        """pytest-benchmark group: 'encrypt-1M', 'aggregate-10x1M', ..."""
        if self.inputs > 1:
            return f"{self.op}-{self.inputs}x{size_label(n)}"
        return f"{self.op}-{size_label(n)}"

    def ident(self, n: int) -> str:
        slug = "".join(c if c.isalnum() else "_" for c in self.label.lower()).strip("_")
        t = "tall" if self.threads is None else f"t{self.threads}"
        return f"{self.group(n)}-{slug}-{t}"

    def prepare(self, n: int) -> Prepared:
        """Instantiates the implementation (once) and prepares this case at size ``n``.

        Raises
        ------
        Unavailable
            If the implementation cannot run here.
        """
        return getattr(instance(self.impl), self.method)(n, self.threads)


class Implementation:
    """Base class of a benchmarked implementation; see the module docstring."""

    name: ClassVar[str] = "?"

    def __init__(self) -> None:
        self._cache: dict[tuple[Any, ...], Any] = {}
        self._cache_n: int | None = None

    @classmethod
    def cases(cls) -> list[Case]:
        raise NotImplementedError

    @classmethod
    def versions(cls) -> dict[str, str]:
        """Package versions worth recording next to the results."""
        return {}

    @classmethod
    def param_set(cls) -> str:
        """The parameter set, in one line, for the table's list of parameter sets."""
        return (cls.__doc__ or "").strip().splitlines()[0]

    def cached(self, n: int, key: str, make: Callable[[], Any]) -> Any:
        """Per-size cache of expensive inputs; switching to another size drops it."""
        if self._cache_n != n:
            self._cache.clear()
            self._cache_n = n
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def release(self) -> None:
        self._cache.clear()
        self._cache_n = None


REGISTRY: list[type[Implementation]] = []
_instances: dict[type[Implementation], Implementation | Unavailable] = {}


def register(cls: type[Implementation]) -> type[Implementation]:
    """Class decorator: adds an implementation to every benchmark."""
    REGISTRY.append(cls)
    return cls


def instance(cls: type[Implementation]) -> Implementation:
    """The session's single instance of ``cls`` (keys made once).

    Raises
    ------
    Unavailable
        If ``cls`` cannot run here (remembered: not retried).
    """
    got = _instances.get(cls)
    if got is None:
        try:
            got = cls()
        except Unavailable as e:
            got = e
        _instances[cls] = got
    if isinstance(got, Unavailable):
        raise got
    return got


def release_all() -> None:
    """Drops every implementation's cached inputs (between sizes)."""
    for got in _instances.values():
        if isinstance(got, Implementation):
            got.release()


def all_cases() -> list[Case]:
    """Every registered case, baseline first, in a stable order."""
    impls = sorted(REGISTRY, key=lambda c: c.name != BASELINE)
    return [case for cls in impls for case in cls.cases()]


def thread_counts() -> list[int | None]:
    """1 and 'all', or just 1 on a single-thread machine."""
    return [1] if all_threads() == 1 else [1, None]


# -- AES-256-GCM (the `cryptography` package, OpenSSL) -------------------------


@register
class AesGcm(Implementation):
    """AES-256-GCM over the payload's bytes in one call, 12-byte nonce, no associated data."""

    name = BASELINE

    def __init__(self) -> None:
        super().__init__()
        try:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise Unavailable(f"cryptography is not installed: {e}") from e
        self._aead = AESGCM(AESGCM.generate_key(bit_length=256))

    @classmethod
    def cases(cls) -> list[Case]:
        cases = [
            Case(cls, "encrypt", "prepare_encrypt", threads=1),
            Case(cls, "decrypt", "prepare_decrypt", threads=1),
        ]
        if cls._has_into():
            # Informative only (the baseline stays the plain call): encrypt() returns a fresh
            # bytes object, and above glibc's mmap threshold (32 MiB at most) every call maps
            # and faults in a new buffer, which dominates at 10M values.
            cases += [
                Case(cls, "encrypt", "prepare_encrypt_into", "into preallocated buffer", threads=1),
                Case(cls, "decrypt", "prepare_decrypt_into", "into preallocated buffer", threads=1),
            ]
        return cases

    @staticmethod
    def _has_into() -> bool:
        try:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError:
            return False
        return hasattr(AESGCM, "encrypt_into") and hasattr(AESGCM, "decrypt_into")

    @classmethod
    def versions(cls) -> dict[str, str]:
        try:
            import cryptography
            from cryptography.hazmat.backends.openssl.backend import backend

            return {"cryptography": cryptography.__version__, "openssl": backend.openssl_version_text()}
        except Exception:  # pragma: no cover
            return {}

    def _check(self, n: int, plain: bytes) -> float:
        if plain != payload(n).tobytes():
            raise AssertionError("AES-GCM round trip changed the payload")
        return 0.0

    def prepare_encrypt(self, n: int, threads: int | None) -> Prepared:
        data = self.cached(n, "bytes", lambda: payload(n).tobytes())
        aead = self._aead
        last_nonce = [b""]

        def run() -> bytes:
            nonce = os.urandom(12)  # fresh per message, as a sender would (about a microsecond)
            last_nonce[0] = nonce
            return aead.encrypt(nonce, data, None)

        return Prepared(
            run=run,
            values=n,
            output_bytes=len,  # ciphertext + 16-byte tag; the 12-byte nonce is not counted
            max_abs_error=lambda ct: self._check(n, aead.decrypt(last_nonce[0], ct, None)),
        )

    def prepare_decrypt(self, n: int, threads: int | None) -> Prepared:
        data = self.cached(n, "bytes", lambda: payload(n).tobytes())
        aead = self._aead

        def make() -> tuple[bytes, bytes]:
            nonce = os.urandom(12)
            return nonce, aead.encrypt(nonce, data, None)

        nonce, ct = self.cached(n, "nonce+ct", make)
        return Prepared(
            run=lambda: aead.decrypt(nonce, ct, None),
            values=n,
            output_bytes=lambda _pt: len(ct),  # bytes on the wire for this payload
            max_abs_error=lambda pt: self._check(n, pt),
        )

    def prepare_encrypt_into(self, n: int, threads: int | None) -> Prepared:
        data = self.cached(n, "bytes", lambda: payload(n).tobytes())
        aead = self._aead
        buf = bytearray(len(data) + 16)
        last_nonce = [b""]

        def run() -> bytearray:
            nonce = os.urandom(12)
            last_nonce[0] = nonce
            aead.encrypt_into(nonce, data, None, buf)
            return buf

        return Prepared(
            run=run,
            values=n,
            output_bytes=len,
            max_abs_error=lambda ct: self._check(n, aead.decrypt(last_nonce[0], bytes(ct), None)),
        )

    def prepare_decrypt_into(self, n: int, threads: int | None) -> Prepared:
        prep = self.prepare_decrypt(n, threads)
        nonce, ct = self._cache["nonce+ct"]
        aead = self._aead
        buf = bytearray(len(ct) - 16)

        def run() -> bytearray:
            aead.decrypt_into(nonce, ct, None, buf)
            return buf

        return Prepared(
            run=run,
            values=n,
            output_bytes=prep.output_bytes,
            max_abs_error=lambda pt: self._check(n, bytes(pt)),
        )


# -- xcloud --------------------------------------------------------------------


def _ct_memory_bytes(ct: Any) -> int:
    """Bytes of ciphertext data held in memory (cpp/src/ckks/ciphertext.h layout).

    c0 is always n_blocks x L x N u64 residues; c1 is a 32-byte seed per block
    for secret-key ciphertexts, else residues of c0's size.
    """
    c0 = int(ct.c0_view().nbytes)
    return c0 + (32 * len(ct) if ct.origin == "secret-key" else c0)


@register
class XCloud(Implementation):
    """xcloud's CKKS kernel at its default 128-bit parameters (N=4096, two 36-bit primes)."""

    name = "xcloud"
    preset: ClassVar[str] = "default"

    def __init__(self) -> None:
        super().__init__()
        try:
            import xcloud
        except ImportError as e:  # pragma: no cover
            raise Unavailable(f"xcloud is not installed: {e}") from e
        self._x = xcloud
        self.ctx = xcloud.CkksContext.preset(self.preset)
        self.keys = self.ctx.keygen()
        self.public = self.keys.public_only()

    @classmethod
    def cases(cls) -> list[Case]:
        out: list[Case] = []
        for t in thread_counts():
            out.append(Case(cls, "encrypt", "prepare_encrypt_secret", "secret-key", t))
        for t in thread_counts():
            out.append(Case(cls, "encrypt", "prepare_encrypt_public", "public-key", t))
        for t in thread_counts():
            out.append(Case(cls, "decrypt", "prepare_decrypt", "secret-key", t))
        # The message path: AES-GCM's call returns bytes with their tag, so
        # these rows add xcloud's serialisation (bit-packing and SHA-256).
        out.append(Case(cls, "encrypt", "prepare_encrypt_to_bytes", "secret-key, to bytes", 1))
        out.append(Case(cls, "decrypt", "prepare_decrypt_from_bytes", "secret-key, from bytes", 1))
        for t in thread_counts():
            out.append(Case(cls, "aggregate", "prepare_aggregate_secret", "secret-key inputs", t, AGG_INPUTS))
        for t in thread_counts():
            out.append(Case(cls, "aggregate", "prepare_aggregate_public", "public-key inputs", t, AGG_INPUTS))
        return out

    @classmethod
    def versions(cls) -> dict[str, str]:
        try:
            import xcloud

            ctx = xcloud.CkksContext.preset(cls.preset)
            return {"xcloud": xcloud.__version__, f"xcloud_params_{cls.preset}": repr(ctx)}
        except Exception:  # pragma: no cover
            return {}

    @classmethod
    def param_set(cls) -> str:
        try:
            import xcloud

            ctx = xcloud.CkksContext.preset(cls.preset)
            return f"preset {cls.preset!r}: {ctx!r}"
        except Exception:  # pragma: no cover
            return f"preset {cls.preset!r}"

    # -- helpers ---------------------------------------------------------------
    def _error(self, ct: Any, expected: np.ndarray) -> float:
        """Max |decrypt(ct) - expected|, decrypting to float64 so float32 rounding does not hide noise."""
        y = self._x.decrypt_blocks(self.keys, ct, dtype="float64")
        return float(np.max(np.abs(np.asarray(y, dtype=np.float64) - expected)))

    def _x64(self, n: int) -> np.ndarray:
        return self.cached(n, "x64", lambda: payload(n).astype(np.float64))

    def _extra(self, ct: Any) -> dict[str, Any]:
        return {"ciphertext_blocks": len(ct), "origin": ct.origin, "memory_bytes": _ct_memory_bytes(ct)}

    # -- cases -----------------------------------------------------------------
    def _prepare_encrypt(self, n: int, threads: int | None, mode: str) -> Prepared:
        x = payload(n)
        keys = self.keys if mode == "secret" else self.public
        enc = self._x.encrypt_blocks
        return Prepared(
            run=lambda: enc(keys, x, threads=threads, mode=mode),
            values=n,
            output_bytes=lambda ct: int(ct.nbytes),
            max_abs_error=lambda ct: self._error(ct, self._x64(n)),
            extra={"mode": mode},
        )

    def prepare_encrypt_secret(self, n: int, threads: int | None) -> Prepared:
        return self._prepare_encrypt(n, threads, "secret")

    def prepare_encrypt_public(self, n: int, threads: int | None) -> Prepared:
        return self._prepare_encrypt(n, threads, "public")

    def prepare_decrypt(self, n: int, threads: int | None) -> Prepared:
        ct = self.cached(n, "ct-secret", lambda: self._x.encrypt_blocks(self.keys, payload(n), mode="secret"))
        dec, keys = self._x.decrypt_blocks, self.keys
        x64 = self._x64(n)
        return Prepared(
            run=lambda: dec(keys, ct, threads=threads),  # float32 out, as encrypted
            values=n,
            output_bytes=lambda _y: int(ct.nbytes),  # ciphertext bytes per value, as for encryption
            max_abs_error=lambda _y: self._error(ct, x64),
            consumed_bytes=int(ct.nbytes),
            extra=self._extra(ct),
        )

    def prepare_encrypt_to_bytes(self, n: int, threads: int | None) -> Prepared:
        """Secret-key encryption and serialisation to the wire format, as one call."""
        x = payload(n)
        keys, enc, blocks, ctx = self.keys, self._x.encrypt_blocks, self._x.CiphertextBlocks, self.ctx
        return Prepared(
            run=lambda: enc(keys, x, threads=threads, mode="secret").to_bytes(),
            values=n,
            output_bytes=len,
            max_abs_error=lambda data: self._error(blocks.from_bytes(ctx, data), self._x64(n)),
            extra={"mode": "secret", "output": "wire bytes"},
        )

    def prepare_decrypt_from_bytes(self, n: int, threads: int | None) -> Prepared:
        """Deserialisation of the wire bytes (every check) and decryption, as one call."""
        ct = self.cached(n, "ct-secret", lambda: self._x.encrypt_blocks(self.keys, payload(n), mode="secret"))
        data = self.cached(n, "ct-secret-bytes", ct.to_bytes)
        dec, keys, blocks, ctx = self._x.decrypt_blocks, self.keys, self._x.CiphertextBlocks, self.ctx
        x64 = self._x64(n)
        return Prepared(
            run=lambda: dec(keys, blocks.from_bytes(ctx, data), threads=threads),
            values=n,
            output_bytes=lambda _y: len(data),
            max_abs_error=lambda _y: self._error(blocks.from_bytes(ctx, data), x64),
            consumed_bytes=len(data),
            extra={"input": "wire bytes"},
        )

    def _aggregate_inputs(self, n: int, mode: str) -> tuple[list[Any], np.ndarray]:
        """AGG_INPUTS ciphertexts of rotations of the payload, and their exact mean."""

        def make() -> tuple[list[Any], np.ndarray]:
            x = payload(n)
            keys = self.keys if mode == "secret" else self.public
            cts, total = [], np.zeros(n, dtype=np.float64)
            for i in range(AGG_INPUTS):
                xi = np.roll(x, i * 7919)
                cts.append(self._x.encrypt_blocks(keys, xi, mode=mode))
                total += xi
            return cts, total / AGG_INPUTS

        return self.cached(n, f"agg-{mode}", make)

    def _prepare_aggregate(self, n: int, threads: int | None, mode: str) -> Prepared:
        cts, expected = self._aggregate_inputs(n, mode)
        agg = self._x.aggregate
        return Prepared(
            run=lambda: agg(cts, threads=threads),  # default weights: the plain mean
            values=n * len(cts),
            output_bytes=lambda out: int(out.nbytes),
            max_abs_error=lambda out: self._error(out, expected),
            consumed_bytes=sum(int(c.nbytes) for c in cts),
            extra={
                "inputs": len(cts),
                "input_origin": cts[0].origin,
                "consumed_memory_bytes": sum(_ct_memory_bytes(c) for c in cts),
            },
        )

    def prepare_aggregate_secret(self, n: int, threads: int | None) -> Prepared:
        return self._prepare_aggregate(n, threads, "secret")

    def prepare_aggregate_public(self, n: int, threads: int | None) -> Prepared:
        return self._prepare_aggregate(n, threads, "public")


@register
class XCloudCompact(XCloud):
    """xcloud's ``CkksContext.preset("compact")``: N=4096, one 47-bit prime, scale 2^32, coefficient encoding.

    The secret-key upload is 1.48x its float32 bytes. Public-key encryption runs modulo
    q*P (a 30-bit auxiliary prime P) at scale 2^34 and is divided by P before it leaves
    the encryptor: two 47-bit polynomials, 2.94x the float32 bytes. Aggregation rows sum
    secret-key inputs (compact seeded-sum form) or public-key inputs (full c1).
    """

    name = "xcloud compact"
    preset = "compact"

    def _aggregate_inputs(self, n: int, mode: str) -> tuple[list[Any], np.ndarray]:
        """As the default's, with the mean's weights 1/10 rounded by ``xcloud.dyadic_weights``.

        At one 47-bit prime the headroom allows only about 10 fractional weight bits, so
        ``aggregate`` refuses 1/10 itself; the rows time the rounded weights (summing to 1).
        """

        def make() -> tuple[list[Any], np.ndarray, list[float]]:
            x = payload(n)
            keys = self.keys if mode == "secret" else self.public
            cts, xs = [], []
            for i in range(AGG_INPUTS):
                xs.append(np.roll(x, i * 7919))
                cts.append(self._x.encrypt_blocks(keys, xs[-1], mode=mode))
            w = self._x.dyadic_weights(cts, [1.0 / AGG_INPUTS] * AGG_INPUTS)
            total = np.zeros(n, dtype=np.float64)
            for wi, xi in zip(w, xs, strict=True):
                total += wi * xi.astype(np.float64)
            return cts, total, w

        cts, total, self._weights = self.cached(n, f"agg-{mode}", make)
        return cts, total

    def _prepare_aggregate(self, n: int, threads: int | None, mode: str) -> Prepared:
        prep = super()._prepare_aggregate(n, threads, mode)
        cts, weights, agg = self._aggregate_inputs(n, mode)[0], self._weights, self._x.aggregate
        prep.run = lambda: agg(cts, weights, threads=threads)
        prep.extra["weights"] = "xcloud.dyadic_weights of 1/10 each"
        return prep

    @classmethod
    def cases(cls) -> list[Case]:
        out: list[Case] = []
        for t in thread_counts():
            out.append(Case(cls, "encrypt", "prepare_encrypt_secret", "secret-key", t))
        for t in thread_counts():
            out.append(Case(cls, "encrypt", "prepare_encrypt_public", "public-key", t))
        for t in thread_counts():
            out.append(Case(cls, "decrypt", "prepare_decrypt", "secret-key", t))
        # The message path: AES-GCM's call returns bytes with their tag, so
        # these rows add xcloud's serialisation (bit-packing and SHA-256).
        out.append(Case(cls, "encrypt", "prepare_encrypt_to_bytes", "secret-key, to bytes", 1))
        out.append(Case(cls, "decrypt", "prepare_decrypt_from_bytes", "secret-key, from bytes", 1))
        for t in thread_counts():
            out.append(Case(cls, "aggregate", "prepare_aggregate_secret", "secret-key inputs", t, AGG_INPUTS))
        for t in thread_counts():
            out.append(Case(cls, "aggregate", "prepare_aggregate_public", "public-key inputs", t, AGG_INPUTS))
        return out


# -- xcloud, scalar reference paths ---------------------------------------------


@register
class XCloudScalar(XCloud):
    """xcloud with the scalar reference kernels forced (no SIMD), single thread.

    ``xcloud._native.testing.set_force_scalar(True)`` is set around each timed
    call only, and the previous setting restored afterwards.
    """

    name = "xcloud scalar"

    def __init__(self) -> None:
        super().__init__()
        try:
            from xcloud._native import testing
        except ImportError as e:  # pragma: no cover
            raise Unavailable(f"xcloud._native.testing is not available: {e}") from e
        self._force = testing.set_force_scalar

    @classmethod
    def cases(cls) -> list[Case]:
        return [
            Case(cls, "encrypt", "prepare_encrypt_secret", "secret-key", 1),
            Case(cls, "decrypt", "prepare_decrypt", "secret-key", 1),
        ]

    def _scalar(self, prep: Prepared) -> Prepared:
        inner, force = prep.run, self._force

        def run() -> Any:
            prev = force(True)
            try:
                return inner()
            finally:
                force(prev)

        prep.run = run
        prep.extra["forced_scalar"] = True
        return prep

    def prepare_encrypt_secret(self, n: int, threads: int | None) -> Prepared:
        return self._scalar(super().prepare_encrypt_secret(n, 1))

    def prepare_decrypt(self, n: int, threads: int | None) -> Prepared:
        return self._scalar(super().prepare_decrypt(n, 1))


# -- TenSEAL (Microsoft SEAL), in process ---------------------------------------


class _TenSealBase(Implementation):
    """TenSEAL CKKS vectors over the payload, one ``ckks_vector`` per ``slots`` values, single thread.

    Encryption times ``ts.ckks_vector`` per chunk (public key: TenSEAL's default,
    as NVFlare uses it; secret key: ``ENCRYPTION_TYPE.SYMMETRIC``). Bytes per value
    are the ``serialize()`` bytes of all vectors (not timed) over the payload size.
    Decryption times ``vector.decrypt()`` per chunk (TenSEAL returns Python lists).
    """

    poly_modulus_degree: ClassVar[int] = 8192
    coeff_mod_bit_sizes: ClassVar[tuple[int, ...]] = (60, 40, 40)
    scale_bits: ClassVar[int] = 40

    def __init__(self) -> None:
        super().__init__()
        try:
            import tenseal as ts
        except ImportError as e:
            raise Unavailable(f"tenseal is not installed (pip install tenseal): {e}") from e
        self._ts = ts
        self.slots = self.poly_modulus_degree // 2
        self.ctx = {kind: self._context(kind) for kind in ("public", "secret")}

    def _context(self, kind: str) -> Any:
        ts = self._ts
        enc = ts.ENCRYPTION_TYPE.ASYMMETRIC if kind == "public" else ts.ENCRYPTION_TYPE.SYMMETRIC
        ctx = ts.context(
            ts.SCHEME_TYPE.CKKS,
            poly_modulus_degree=self.poly_modulus_degree,
            coeff_mod_bit_sizes=list(self.coeff_mod_bit_sizes),
            encryption_type=enc,
            n_threads=1,
        )
        ctx.global_scale = 2.0**self.scale_bits
        return ctx

    @classmethod
    def cases(cls) -> list[Case]:
        return [
            Case(cls, "encrypt", "prepare_encrypt_public", "public-key", 1),
            Case(cls, "encrypt", "prepare_encrypt_secret", "secret-key", 1),
            Case(cls, "decrypt", "prepare_decrypt", "secret-key", 1),
        ]

    @classmethod
    def versions(cls) -> dict[str, str]:
        try:
            import tenseal

            return {"tenseal": tenseal.__version__}
        except Exception:
            return {}

    @classmethod
    def param_set(cls) -> str:
        return (
            f"N={cls.poly_modulus_degree}, coeff_mod_bit_sizes {list(cls.coeff_mod_bit_sizes)} "
            f"(log2 q = {sum(cls.coeff_mod_bit_sizes)}), scale 2^{cls.scale_bits}, "
            f"{cls.poly_modulus_degree // 2} slots per vector"
        )

    def _params(self) -> dict[str, Any]:
        return {
            "poly_modulus_degree": self.poly_modulus_degree,
            "coeff_mod_bit_sizes": list(self.coeff_mod_bit_sizes),
            "scale_bits": self.scale_bits,
            "slots": self.slots,
        }

    def _chunks(self, n: int) -> list[np.ndarray]:
        x, s = payload(n), self.slots
        return self.cached(n, "chunks", lambda: [x[i : i + s] for i in range(0, n, s)])

    def _error(self, n: int, decrypted: list[list[float]]) -> float:
        y = np.concatenate([np.asarray(v, dtype=np.float64) for v in decrypted])
        return float(np.max(np.abs(y - payload(n).astype(np.float64))))

    @staticmethod
    def _serialized(vectors: list[Any]) -> int:
        return sum(len(v.serialize()) for v in vectors)

    def _prepare_encrypt(self, n: int, kind: str) -> Prepared:
        chunks, ctx, vec = self._chunks(n), self.ctx[kind], self._ts.ckks_vector
        return Prepared(
            run=lambda: [vec(ctx, c) for c in chunks],
            values=n,
            output_bytes=self._serialized,
            max_abs_error=lambda vs: self._error(n, [v.decrypt() for v in vs]),
            extra={**self._params(), "ciphertexts": len(chunks), "mode": kind},
        )

    def prepare_encrypt_public(self, n: int, threads: int | None) -> Prepared:
        return self._prepare_encrypt(n, "public")

    def prepare_encrypt_secret(self, n: int, threads: int | None) -> Prepared:
        return self._prepare_encrypt(n, "secret")

    def prepare_decrypt(self, n: int, threads: int | None) -> Prepared:
        ctx, vec = self.ctx["secret"], self._ts.ckks_vector
        chunks = self._chunks(n)
        vs = self.cached(n, "vectors", lambda: [vec(ctx, c) for c in chunks])
        nbytes = self.cached(n, "vector-bytes", lambda: self._serialized(vs))
        return Prepared(
            run=lambda: [v.decrypt() for v in vs],
            values=n,
            output_bytes=lambda _y: nbytes,
            max_abs_error=lambda y: self._error(n, y),
            extra={**self._params(), "ciphertexts": len(vs)},
        )


@register
class TenSealNVFlare(_TenSealBase):
    """NVFlare's TenSEAL parameters: N=8192, coeff_mod_bit_sizes [60, 40, 40], scale 2^40.

    128-bit secure: log2(q) = 140 <= 218 (HE standard, N=8192, classical).
    """

    name = "TenSEAL (NVFlare set)"


@register
class TenSealFast(_TenSealBase):
    """TenSEAL's fastest 128-bit set keeping >= 17 bits: N=4096, [40, 40], scale 2^32.

    128-bit secure: log2(q) = 80 <= 109 (HE standard, N=4096, classical). SEAL
    uses the last prime as the key-switching prime, so data sits at one 40-bit
    prime: the fewest residues there can be (N=2048 allows only 54 bits, too few
    for a 2^32 scale plus a special prime). Measured ~19-20 bits at 1M values.
    """

    name = "TenSEAL (N=4096 set)"
    poly_modulus_degree = 4096
    coeff_mod_bit_sizes = (40, 40)
    scale_bits = 32


# -- OpenFHE, out of process (CPython 3.10) --------------------------------------

OPENFHE_PYTHON_ENV = "XCLOUD_OPENFHE_PYTHON"
"""Environment variable naming the CPython 3.10 interpreter that has ``openfhe`` installed."""
_HERE = os.path.dirname(os.path.abspath(__file__))


def openfhe_python() -> str:
    """$XCLOUD_OPENFHE_PYTHON, else bench/.venv310/bin/python if present, else /tmp/venv310/bin/python."""
    env = os.environ.get(OPENFHE_PYTHON_ENV)
    if env:
        return env
    local = os.path.join(_HERE, ".venv310", "bin", "python")
    return local if os.path.exists(local) else "/tmp/venv310/bin/python"


@register
class OpenFhe(Implementation):
    """OpenFHE CKKS (bench/peers/openfhe_bench.py under CPython 3.10), public-key encryption, 1 thread.

    The subprocess builds the same payload (numpy default_rng(PAYLOAD_SEED)), times
    encryption and decryption itself (best of its runs) and reports JSON; its
    times are used as is (``Prepared.seconds``). Parameters: HEStd_128_classic,
    multiplicative depth 0, first modulus 60 bits, scaling modulus 40 bits
    (FIXEDMANUAL): OpenFHE chooses ring dimension 8192 and refuses 4096 at
    128-bit security (its check counts the key-switching modulus too).
    """

    name = "OpenFHE"
    script = os.path.join(_HERE, "peers", "openfhe_bench.py")
    repeat = 5
    timeout_s = 900

    def __init__(self) -> None:
        super().__init__()
        import subprocess

        self._sp = subprocess
        self.python = openfhe_python()
        if not os.path.exists(self.python):
            raise Unavailable(
                f"no CPython 3.10 with openfhe at {self.python} (set {OPENFHE_PYTHON_ENV}; see bench/peers/README.md)"
            )
        probe = subprocess.run(
            [self.python, "-c", "import openfhe, numpy"], capture_output=True, text=True, timeout=120
        )
        if probe.returncode != 0:
            last = (probe.stderr.strip().splitlines() or ["?"])[-1]
            raise Unavailable(f"{self.python} cannot import openfhe: {last}")

    @classmethod
    def cases(cls) -> list[Case]:
        return [
            Case(cls, "encrypt", "prepare_encrypt", "public-key", 1),
            Case(cls, "decrypt", "prepare_decrypt", "secret-key", 1),
        ]

    @classmethod
    def versions(cls) -> dict[str, str]:
        return {"openfhe_python": openfhe_python()}

    @classmethod
    def param_set(cls) -> str:
        return (
            "HEStd_128_classic, multiplicative depth 0, first modulus 60 bits, scaling modulus 40 bits, "
            "FIXEDMANUAL; OpenFHE picks ring dimension 8192 (it refuses 4096 at 128-bit), 4096 slots"
        )

    def _report(self, n: int) -> dict[str, Any]:
        def make() -> dict[str, Any]:
            import json

            env = dict(os.environ, OMP_NUM_THREADS="1")
            cmd = [
                self.python,
                self.script,
                "--size",
                str(n),
                "--seed",
                str(PAYLOAD_SEED),
                "--repeat",
                str(self.repeat),
            ]
            out = self._sp.run(cmd, capture_output=True, text=True, timeout=self.timeout_s, env=env)
            if out.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr[-2000:]}")
            return json.loads(out.stdout.strip().splitlines()[-1])

        return self.cached(n, "report", make)

    def _prepare(self, n: int, op: str) -> Prepared:
        rep = self._report(n)
        keep = (
            "openfhe_version",
            "ring_dim",
            "slots",
            "ciphertexts",
            "multiplicative_depth",
            "scaling_mod_size",
            "first_mod_size",
            "scaling_technique",
            "security_level",
            "log2_q",
        )
        return Prepared(
            run=lambda: rep,  # timed by the subprocess
            values=n,
            output_bytes=lambda r: int(r["serialized_bytes"]),
            max_abs_error=lambda r: float(r["max_abs_error"]),
            extra={k: rep.get(k) for k in keep},
            seconds=float(rep[f"{op}_s"]),
            times_s=list(rep[f"{op}_times_s"]),
        )

    def prepare_encrypt(self, n: int, threads: int | None) -> Prepared:
        return self._prepare(n, "encrypt")

    def prepare_decrypt(self, n: int, threads: int | None) -> Prepared:
        return self._prepare(n, "decrypt")


# -- metrics -------------------------------------------------------------------


def metrics(case: Case, prep: Prepared, n: int, seconds: float, result: Any) -> dict[str, Any]:
    """Derived numbers for one timed case (JSON-serialisable; precision None = exact).

    ``bytes_per_value`` is output bytes / n: ciphertext size per payload value
    for encryption, and for decryption the size of the ciphertext it reads.
    """
    if prep.seconds is not None:
        seconds = prep.seconds
    out_bytes = prep.output_bytes(result)
    err = prep.max_abs_error(result) if prep.max_abs_error is not None else 0.0
    m: dict[str, Any] = {
        "seconds": seconds,
        "self_timed": prep.seconds is not None,
        "values_per_s": prep.values / seconds,
        "output_bytes": out_bytes,
        "bytes_per_value": out_bytes / n,
        "max_abs_error": err,
        "precision_bits": (-math.log2(err) if err > 0 else None),
        "log2_max_abs_error": (math.log2(err) if err > 0 else None),
        "exact": err == 0.0,
    }
    if prep.consumed_bytes is not None:
        m["consumed_bytes"] = prep.consumed_bytes
        m["consumed_GBps"] = prep.consumed_bytes / seconds / 1e9
    for k, v in prep.extra.items():
        m.setdefault(k, v)
    if "consumed_memory_bytes" in m:
        m["consumed_memory_GBps"] = m["consumed_memory_bytes"] / seconds / 1e9
    return m


def memcopy_bandwidth(nbytes: int = 256 << 20, repeat: int = 5) -> dict[str, float]:
    """Memory copy bandwidth: best ``np.copyto`` of a float64 array of ``nbytes``.

    ``copy_GBps`` counts the bytes copied once (memcpy convention);
    ``read_write_GBps`` counts read plus write (STREAM 'Copy' convention).
    """
    src = np.ones(nbytes // 8, dtype=np.float64)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # fault both arrays in
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return {
        "bytes": float(src.nbytes),
        "seconds": best,
        "copy_GBps": src.nbytes / best / 1e9,
        "read_write_GBps": 2 * src.nbytes / best / 1e9,
    }
