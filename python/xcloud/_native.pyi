"""Typed stub of the native kernel module (the contract of cpp/bindings/module.cpp)."""

from typing import Any, overload

import numpy as np
import numpy.typing as npt

class ParameterError(ValueError): ...
class IntegrityError(ValueError): ...
class UnsupportedVersionError(IntegrityError): ...

class Params:
    @property
    def n(self) -> int: ...
    @property
    def log_n(self) -> int: ...
    @property
    def primes(self) -> list[int]: ...
    @property
    def prime_bits(self) -> list[int]: ...
    @property
    def scale_bits(self) -> int: ...
    @property
    def scale(self) -> float: ...
    @property
    def max_value(self) -> float: ...
    @property
    def security_bits(self) -> int: ...
    @property
    def insecure(self) -> bool: ...
    @property
    def log2_q(self) -> float: ...
    @property
    def aux_prime_bits(self) -> int: ...
    @property
    def encoding(self) -> str:
        """'slots' (canonical embedding) or 'coefficients' (value i is coefficient i)."""
    @property
    def aux_prime(self) -> int:
        """The auxiliary prime P of public-key encryption, or 0 without one."""
    @property
    def public_scale_bits(self) -> int:
        """Scale bits of public-key encryptions (scale_bits unless set with an auxiliary prime)."""
    @property
    def public_scale(self) -> float: ...
    @property
    def log2_key_modulus(self) -> float:
        """log2 Q + log2 P: the modulus the public key lives at (checked against the security table)."""
    @property
    def fingerprint(self) -> bytes: ...
    @property
    def canonical_bytes(self) -> bytes: ...
    def describe(self) -> str: ...

def make_params(
    log_n: int,
    prime_bits: list[int],
    scale_bits: int,
    max_value: float,
    security_bits: int,
    insecure: bool,
    aux_prime_bits: int = 0,
    public_scale_bits: int = 0,
    encoding: str = "slots",
) -> Params:
    """Validated parameters. Raises ParameterError."""

def max_log_q(n: int, security_bits: int) -> int: ...
def hardware_threads() -> int: ...

class RealSampler:
    """Uniform and Gaussian reals from AES-256-CTR under a secret 32-byte key."""

    @overload
    def __init__(self) -> None: ...
    @overload
    def __init__(self, key: bytes) -> None: ...
    def uniform(self, n: int) -> npt.NDArray[np.float64]: ...
    def gaussian(self, n: int, std: float) -> npt.NDArray[np.float64]: ...
    @property
    def bytes_drawn(self) -> int: ...

class KeySet:
    @property
    def params(self) -> Params: ...
    @property
    def has_secret(self) -> bool: ...
    @property
    def key_id(self) -> bytes: ...
    def public_only(self) -> KeySet: ...
    def public_to_bytes(self) -> bytes: ...
    def secret_to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(params: Params, data: bytes) -> KeySet:
        """Raises IntegrityError."""

def keygen(params: Params) -> KeySet: ...
def keygen_derand(params: Params, seed: bytes) -> KeySet: ...

class CiphertextBatch:
    """Supports the buffer protocol: a read-only (n_blocks, L, N) uint64 view of c0."""

    @property
    def params(self) -> Params: ...
    @property
    def key_id(self) -> bytes: ...
    @property
    def n_values(self) -> int: ...
    @property
    def n_blocks(self) -> int: ...
    @property
    def shape(self) -> tuple[int, ...]: ...
    @property
    def dtype(self) -> str: ...
    @property
    def origin(self) -> str: ...
    @property
    def scale(self) -> float: ...
    @property
    def bound(self) -> float: ...
    @property
    def seeded(self) -> bool:
        """True when c1 is regenerated from seeds (c1_form 'seeded' or 'seeded-sum')."""
    @property
    def c1_form(self) -> str:
        """'seeded' (one seed per block), 'full' (packed c1) or 'seeded-sum' (K seeds per block, K weights)."""
    @property
    def seeds_per_block(self) -> int:
        """1 for 'seeded', K in [1, MAX_SEEDS_PER_BLOCK] for 'seeded-sum', 0 for 'full'."""
    @property
    def nbytes(self) -> int: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(params: Params, data: Any) -> CiphertextBatch:
        """Raises IntegrityError for bad bytes, TypeError for non-bytes-like data."""
    def __buffer__(self, flags: int) -> memoryview: ...

def encrypt(
    keys: KeySet,
    values: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    shape: list[int],
    mode: str,
    threads: int,
    seed: bytes | None = None,
) -> CiphertextBatch:
    """Raises TypeError (dtype), ValueError (empty, NaN/Inf, out of range, missing key)."""

def decrypt(keys: KeySet, ct: CiphertextBatch, dtype: str, threads: int) -> npt.NDArray[Any]: ...

MAX_SEEDS_PER_BLOCK: int

def aggregate(
    inputs: list[CiphertextBatch], weights: list[float], threads: int, compact: bool = True
) -> CiphertextBatch:
    """Weighted sum; 'seeded-sum' c1 when compact and every input is seeded and the seeds fit, else 'full'."""

def aggregate_weight_bits(inputs: list[CiphertextBatch], weights: list[float]) -> int:
    """The weight exponent k aggregate() would apply; ValueError (overflow, imprecise weights) as aggregate()."""

class testing:  # submodule
    @staticmethod
    def chacha20_block(key: bytes, counter: int, nonce: bytes) -> bytes: ...
    @staticmethod
    def chacha20_stream(key: bytes, nonce: bytes, counter: int, n: int) -> bytes: ...
    @staticmethod
    def sha256(data: bytes) -> bytes: ...
    @staticmethod
    def sha256_path() -> str: ...
    @staticmethod
    def real_sampler_log(u: npt.ArrayLike) -> npt.NDArray[np.float64]: ...
    @staticmethod
    def real_sampler_cos_sin(v: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]: ...
    @staticmethod
    def sample_uniform_mod(seed: bytes, q: int, n: int) -> npt.NDArray[np.uint64]: ...
    @staticmethod
    def aes256_ctr_keystream(key: bytes, counter_block: bytes, n: int) -> bytes: ...
    @staticmethod
    def aes256_ctr_path() -> str: ...
    @staticmethod
    def aes256_force_portable(force: bool) -> bool: ...
    @staticmethod
    def sample_uniform_mod_ctr(seed: bytes, q: int, n: int) -> npt.NDArray[np.uint64]: ...
    @staticmethod
    def sample_ternary(seed: bytes, n: int) -> npt.NDArray[np.int8]: ...
    @staticmethod
    def sample_ternary_packed(seed: bytes, n: int) -> npt.NDArray[np.int8]: ...
    @staticmethod
    def sample_cbd(seed: bytes, n: int) -> npt.NDArray[np.int32]: ...
    @staticmethod
    def aes256_sbox(impl: str) -> bytes:
        """The 256-byte S-box from the table ('table') or the constant-time circuit ('ct')."""
    @staticmethod
    def aes256_expand_key(key: bytes, impl: str) -> bytes:
        """240 bytes of round keys by one key schedule: 'table', 'ct' or 'aes-ni'."""
    @staticmethod
    def aes256_encrypt_block(key: bytes, block: bytes, impl: str) -> bytes: ...
    @staticmethod
    def aes256_ctr_blocks(impl: str, key: bytes, prefix: bytes, ctr: int, blocks: int) -> bytes:
        """Counter blocks prefix || BE32(ctr + i mod 2^32), i < blocks, encrypted by one kernel."""
    @staticmethod
    def aes256_force_ni(force: bool) -> bool: ...
    @staticmethod
    def aes256_ctr_impls() -> list[str]: ...
    @staticmethod
    def aes256_ctr_path_for(use: str) -> str: ...
    @staticmethod
    def aes256_ctr_keystream_for(key: bytes, counter_block: bytes, n: int, use: str) -> bytes: ...
    @staticmethod
    def sample_cbd_ctr(
        key: bytes, counter_block: bytes, n: int, reference: bool = False, use: str = "secret"
    ) -> npt.NDArray[np.int32]: ...
    @staticmethod
    def sample_ternary_packed_ctr(
        key: bytes, counter_block: bytes, n: int, reference: bool = False, use: str = "secret"
    ) -> npt.NDArray[np.int8]: ...
    @staticmethod
    def buffer_pool_stats() -> tuple[int, int]:
        """(buffers, bytes) the large-buffer cache of ciphertext arrays holds now."""
    @staticmethod
    def release_buffer_pool() -> None: ...
    @staticmethod
    def generate_ntt_primes(bits: int, two_n: int, count: int, exclude: list[int] = ...) -> list[int]: ...
    @staticmethod
    def is_prime(n: int) -> bool: ...
    @staticmethod
    def ntt_psi(q: int, n: int) -> int: ...
    @staticmethod
    def ntt_forward(q: int, n: int, a: npt.ArrayLike, scalar: bool = False) -> npt.NDArray[np.uint64]: ...
    @staticmethod
    def ntt_inverse(q: int, n: int, a: npt.ArrayLike, scalar: bool = False) -> npt.NDArray[np.uint64]: ...
    @staticmethod
    def ntt_inverse_mul(
        q: int, n: int, a: npt.ArrayLike, b: npt.ArrayLike, scalar: bool = False
    ) -> npt.NDArray[np.uint64]: ...
    @staticmethod
    def ntt_inverse_mul_encode_minus(
        q: int,
        n: int,
        a: npt.ArrayLike,
        b: npt.ArrayLike,
        x: npt.ArrayLike,
        scale: float,
        e: npt.ArrayLike,
        scalar: bool = False,
    ) -> npt.NDArray[np.uint64]:
        """(round(x * scale) + e) - inverse(a * b) mod q (fused kernel, or the reference with scalar=True)."""
    @staticmethod
    def encode(params: Params, x: npt.ArrayLike) -> npt.NDArray[np.float64]: ...
    @staticmethod
    def decode(params: Params, m: npt.ArrayLike) -> npt.NDArray[np.float64]: ...
    @staticmethod
    def aggregate_weight_bits(inputs: list[CiphertextBatch], weights: list[float]) -> int: ...
    @staticmethod
    def aggregate_compact_seeds(inputs: list[CiphertextBatch]) -> int:
        """Seeds per block of a compact aggregate of these inputs, or 0 if it would be 'full'."""
    @staticmethod
    def seed_weights(ct: CiphertextBatch) -> npt.NDArray[np.uint64]:
        """A 'seeded-sum' batch's weights as stored: L x K residues, index j * K + k; empty otherwise."""
    @staticmethod
    def crt_centered_doubles_of_sum(
        params: Params, a: npt.NDArray[np.uint64], b: npt.NDArray[np.uint64], scale: float
    ) -> npt.NDArray[np.float64]: ...
    @staticmethod
    def poly_rescale_aux(
        t: npt.ArrayLike | None,
        e: npt.ArrayLike,
        xp: npt.ArrayLike,
        m: npt.ArrayLike | None,
        q: int,
        p: int,
        scalar: bool,
    ) -> npt.NDArray[np.uint64]:
        """t + (e - [xp + e]_p) * p^-1 (+ m) mod q: the modulus drop (dispatching, or the scalar reference)."""
    @staticmethod
    def poly_encode_minus(
        x: npt.ArrayLike,
        scale: float,
        e: npt.ArrayLike,
        t: npt.ArrayLike,
        q: int,
    ) -> npt.NDArray[np.uint64]:
        """round(x * scale) + e - t mod q over len(t) values, x zero-padded (the portable reference)."""
    @staticmethod
    def simd_supported() -> bool:
        """Whether this CPU has the AVX2 + FMA paths."""
    @staticmethod
    def simd_enabled() -> bool:
        """Whether the AVX2 paths are in use (false with XCLOUD_FORCE_SCALAR=1)."""
    @staticmethod
    def set_force_scalar(force: bool) -> bool:
        """Forces the scalar reference paths on or off; returns the previous setting."""
