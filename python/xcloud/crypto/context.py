"""CKKS parameter sets (:class:`CkksContext`) and key generation."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from xcloud import _native
from xcloud.crypto.keys import KeySet
from xcloud.errors import ParameterError

__all__ = ["ENCODINGS", "PRESETS", "CkksContext", "CkksLiteral"]

#: Named parameter sets for :meth:`CkksContext.preset` (all 128-bit secure at N = 4096).
#:
#: - ``"default"``: two 36-bit primes, scale 2^38 (log2 Q = 72): every mode and
#:   every weighting, 2^-28 fresh precision in secret-key mode, 2^-21 in
#:   public-key mode, 2^-16 for weighted sums of 1,000 inputs.
#: - ``"compact"``: one 47-bit prime, scale 2^32 (log2 Q = 47), a 30-bit
#:   auxiliary prime P that only public-key encryption uses (log2 Q*P = 77,
#:   the figure checked against the 107-bit bound), and, since 2026-12-02, the
#:   coefficient encoding (no FFT; see :attr:`CkksLiteral.encoding`).
#:   Secret-key (shared-key) mode: 5.9 bytes per value on the wire (1.47x
#:   float32, against 9.0), one NTT per block instead of two, every value
#:   within 21.5 * 2^-32 = 2^-27.6 (about 2^-28 measured). Public-key mode:
#:   the encryption is made modulo Q*P under a public key at Q*P and divided
#:   by P with rounding before it leaves the encryptor, so the wire carries
#:   two polynomials modulo the 47-bit prime: 11.8 bytes per value (2.94x
#:   float32, against 18.1 for ``"default"``). What noise remains is the
#:   rounding's (r0 + r1*s); public-key encryptions use scale 2^34
#:   (``public_scale_bits``, chosen when the preset still used the slot
#:   encoding, whose errors are heavier-tailed): about 2^-27.7 fresh. Aggregation
#:   weights are applied with at most 12 fractional bits to secret-key inputs
#:   and 10 to public-key ones (see :func:`xcloud.dyadic_weights`); sums of
#:   1,000 inputs stayed within about 2^-32.5 (secret-key) and 2^-31.5
#:   (public-key) of the sum with those weights in the measurements.
#:   Secret-key and public-key ciphertexts (different scales) are not
#:   aggregated together. Its fingerprint covers P, the public-key scale and
#:   the encoding: keys and ciphertexts made under earlier versions of the
#:   preset (parameter format 1, before P; format 2, before the coefficient
#:   encoding) are refused with :class:`xcloud.IntegrityError`.
PRESETS: dict[str, dict[str, object]] = {
    "default": {},
    "compact": {
        "prime_bits": (47,),
        "scale_bits": 32,
        "aux_prime_bits": 30,
        "public_scale_bits": 34,
        "encoding": "coefficients",
    },
}

#: The plaintext encodings (see :attr:`CkksLiteral.encoding`).
ENCODINGS = ("slots", "coefficients")


@dataclass(frozen=True)
class CkksLiteral:
    """An unchecked description of a parameter set (validated by :class:`CkksContext`).

    The defaults are xcloud's 128-bit secure aggregation parameters.
    """

    log_n: int = 12
    """Ring degree N = 2**log_n; one ciphertext block holds N real values."""
    prime_bits: tuple[int, ...] = field(default=(36, 36))
    """Bit sizes of the RNS primes (each 20..50); log2 Q is about their sum."""
    scale_bits: int = 38
    """Encoding scale Delta = 2**scale_bits; fresh precision is about 2**-(scale_bits - 11)."""
    max_value: float = 1.0
    """Inputs must satisfy |x| <= max_value (clip updates to this bound first)."""
    security_bits: int = 128
    """128, 192 or 256: log2 Q (Q*P with an auxiliary prime) is checked against the HomomorphicEncryption.org table."""
    aux_prime_bits: int = 0
    """Bit size (20..50) of an auxiliary prime P for public-key encryption, or 0 for none.

    With P, the public key lives modulo Q*P and a public-key encryption is
    divided by P with rounding before it leaves the encryptor: ciphertexts stay
    modulo Q and their encryption noise shrinks to the rounding's.
    """
    public_scale_bits: int = 0
    """Scale of public-key encryptions, 2**public_scale_bits (0: ``scale_bits``); only with an auxiliary prime."""
    encoding: str = "slots"
    """How a block of N reals becomes a plaintext polynomial.

    ``"slots"``: CKKS's canonical embedding, two reals per complex slot (an
    FFT in encryption and in decryption). ``"coefficients"``: value i is
    coefficient i, scaled and rounded, with no transform. Aggregation (sums
    and products by public scalars) is coefficient-wise, so both encodings
    give the same results; the coefficient encoding skips the FFTs and each
    value carries only its own coefficient's noise (about 5 bits more
    precision). Slot-wise products or rotations, which xcloud does not
    offer, would need the slot encoding. Part of the fingerprint.
    """


class CkksContext:
    """A validated, immutable CKKS parameter set.

    With no arguments it gives xcloud's secure defaults: N = 4096 (4096 values
    per ciphertext block), two 36-bit primes (log2 Q = 72, below the 107-bit
    limit for 128-bit security at N = 4096), scale 2**38, inputs in [-1, 1].
    Measured precision (max absolute error): see the README's precision table.

    Parameters
    ----------
    log_n, prime_bits, scale_bits, max_value, security_bits, aux_prime_bits, public_scale_bits, encoding
        See :class:`CkksLiteral`.

    Raises
    ------
    ParameterError
        If the set is malformed or weaker than ``security_bits`` (use
        :meth:`insecure` for small test parameters).
    """

    def __init__(
        self,
        log_n: int = 12,
        prime_bits: Sequence[int] = (36, 36),
        scale_bits: int = 38,
        max_value: float = 1.0,
        security_bits: int = 128,
        *,
        aux_prime_bits: int = 0,
        public_scale_bits: int = 0,
        encoding: str = "slots",
        _insecure: bool = False,
    ) -> None:
        if encoding not in ENCODINGS:
            raise ParameterError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
        self.literal = CkksLiteral(
            log_n,
            tuple(int(b) for b in prime_bits),
            scale_bits,
            float(max_value),
            security_bits,
            int(aux_prime_bits),
            int(public_scale_bits),
            encoding,
        )
        self._params = _native.make_params(
            int(log_n),
            list(self.literal.prime_bits),
            int(scale_bits),
            float(max_value),
            int(security_bits),
            _insecure,
            int(aux_prime_bits),
            int(public_scale_bits),
            encoding,
        )

    @classmethod
    def preset(cls, name: str) -> CkksContext:
        """The named parameter set of :data:`PRESETS` (``"default"`` or ``"compact"``).

        Raises
        ------
        ValueError
            If ``name`` is not a preset.
        """
        if name not in PRESETS:
            raise ValueError(f"unknown CKKS preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls(**PRESETS[name])  # type: ignore[arg-type]

    @classmethod
    def insecure(
        cls,
        log_n: int = 10,
        prime_bits: Sequence[int] = (36, 36),
        scale_bits: int = 38,
        max_value: float = 1.0,
        *,
        aux_prime_bits: int = 0,
        public_scale_bits: int = 0,
        encoding: str = "slots",
    ) -> CkksContext:
        """A parameter set that skips the security check: for tests and examples only.

        Its fingerprint differs from any secure set's, so its ciphertexts can
        never be mistaken for secure ones.
        """
        return cls(
            log_n,
            prime_bits,
            scale_bits,
            max_value,
            128,
            aux_prime_bits=aux_prime_bits,
            public_scale_bits=public_scale_bits,
            encoding=encoding,
            _insecure=True,
        )

    @classmethod
    def _wrap(cls, params: _native.Params) -> CkksContext:
        ctx = cls.__new__(cls)
        ctx.literal = CkksLiteral(
            params.log_n,
            tuple(params.prime_bits),
            params.scale_bits,
            params.max_value,
            params.security_bits,
            params.aux_prime_bits,
            params.public_scale_bits if params.aux_prime_bits else 0,
            params.encoding,
        )
        ctx._params = params
        return ctx

    # -- properties ---------------------------------------------------------
    @property
    def n(self) -> int:
        """Ring degree N: the number of real values one ciphertext block holds."""
        return int(self._params.n)

    @property
    def encoding(self) -> str:
        """``"slots"`` or ``"coefficients"`` (see :attr:`CkksLiteral.encoding`)."""
        return str(self._params.encoding)

    @property
    def slots(self) -> int:
        """Real values per ciphertext block (two per complex slot, so equal to N)."""
        return int(self._params.n)

    @property
    def primes(self) -> list[int]:
        """The RNS primes, generated deterministically from the bit sizes."""
        return list(self._params.primes)

    @property
    def log2_q(self) -> float:
        return float(self._params.log2_q)

    @property
    def aux_prime(self) -> int:
        """The auxiliary prime P of public-key encryption (0 without one); never on the wire."""
        return int(self._params.aux_prime)

    @property
    def log2_key_modulus(self) -> float:
        """log2 Q + log2 P: the public key's modulus, the figure the security check uses."""
        return float(self._params.log2_key_modulus)

    @property
    def scale(self) -> float:
        return float(self._params.scale)

    @property
    def public_scale(self) -> float:
        """Scale of public-key encryptions (``scale`` unless ``public_scale_bits`` is set)."""
        return float(self._params.public_scale)

    @property
    def max_value(self) -> float:
        return float(self._params.max_value)

    @property
    def insecure_params(self) -> bool:
        return bool(self._params.insecure)

    @property
    def fingerprint(self) -> bytes:
        """SHA-256 of the canonical serialisation of the parameters."""
        return bytes(self._params.fingerprint)

    def canonical_bytes(self) -> bytes:
        return bytes(self._params.canonical_bytes)

    # -- keys ---------------------------------------------------------------
    def keygen(self) -> KeySet:
        """Fresh secret and public keys, seeded from the OS CSPRNG."""
        return KeySet(_native.keygen(self._params), self)

    def keygen_derand(self, seed: bytes) -> KeySet:
        """Deterministic keys from a 32-byte seed. For known-answer tests only."""
        return KeySet(_native.keygen_derand(self._params, bytes(seed)), self)

    def load_keys(self, path: str | os.PathLike[str]) -> KeySet:
        """Loads keys written by :meth:`KeySet.save_public` or :meth:`KeySet.save_secret`."""
        return KeySet.load(self, path)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CkksContext) and other.fingerprint == self.fingerprint

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __repr__(self) -> str:
        return f"CkksContext({self._params.describe()})"
