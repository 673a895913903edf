"""Block-partitioned encryption, aggregation and decryption of update vectors.

An input of any shape is flattened and split into blocks of N values (one
ciphertext each: equation 2 of the paper); blocks are processed in parallel
by the native kernel with the GIL released.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from xcloud import _native

if TYPE_CHECKING:
    from xcloud.crypto.context import CkksContext
    from xcloud.crypto.keys import KeySet

__all__ = [
    "MAX_SEEDS_PER_BLOCK",
    "CiphertextBlocks",
    "add",
    "aggregate",
    "decrypt_blocks",
    "dyadic_weights",
    "encrypt_blocks",
    "encrypt_blocks_derand",
]

#: Most seeds one block of a ``'seeded-sum'`` aggregate carries (the kernel's
#: and the wire format's bound); a compact sum that would need more is sent
#: with a full c1 instead.
MAX_SEEDS_PER_BLOCK: int = int(_native.MAX_SEEDS_PER_BLOCK)


class CiphertextBlocks:
    """An encrypted array: one CKKS ciphertext per block of N values.

    Attributes
    ----------
    shape : tuple[int, ...]
        Shape of the encrypted array.
    nbytes : int
        Size of :meth:`to_bytes` output.
    """

    def __init__(self, native: _native.CiphertextBatch, ctx: CkksContext, torch_like: Any = None) -> None:
        self._native = native
        self.ctx = ctx
        # (device, dtype) of a torch input, so decryption can return the same kind.
        self._torch_like = torch_like

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._native.shape)

    @property
    def size(self) -> int:
        """Number of encrypted values."""
        return int(self._native.n_values)

    @property
    def dtype(self) -> str:
        """dtype of the encrypted array ('float32' or 'float64'); decryption returns it."""
        return str(self._native.dtype)

    @property
    def nbytes(self) -> int:
        return int(self._native.nbytes)

    @property
    def origin(self) -> str:
        """'secret-key', 'public-key' or 'aggregate'."""
        return str(self._native.origin)

    @property
    def c1_form(self) -> str:
        """How the random half c1 of each block is held and sent.

        ``'seeded'``
            A fresh secret-key encryption: one 32-byte seed per block, from
            which c1 is expanded.
        ``'full'``
            c1 as packed polynomials (public-key encryptions, and aggregates
            that could not be kept compact or were asked not to be).
        ``'seeded-sum'``
            An aggregate of seeded inputs: per block the K seeds of its
            inputs, and the K public integer weights once, so c1 is
            ``sum_k w_k a_k`` recomputed by the key holder at decryption.
            About the size of one fresh upload; decryption expands K seeds
            per block.
        """
        return str(self._native.c1_form)

    @property
    def seeds_per_block(self) -> int:
        """Seeds each block carries: 1 ('seeded'), K ('seeded-sum') or 0 ('full')."""
        return int(self._native.seeds_per_block)

    @property
    def scale(self) -> float:
        return float(self._native.scale)

    @property
    def bound(self) -> float:
        """Upper bound on |value| of the encrypted values."""
        return float(self._native.bound)

    @property
    def key_id(self) -> bytes:
        return bytes(self._native.key_id)

    def __len__(self) -> int:
        """Number of ciphertext blocks."""
        return int(self._native.n_blocks)

    def c0_view(self) -> np.ndarray:
        """Zero-copy read-only view of the c0 residues, shape (blocks, primes, N)."""
        return np.asarray(memoryview(self._native))

    def to_bytes(self) -> bytes:
        """Serialises to xcloud's versioned, checksummed wire format."""
        return bytes(self._native.to_bytes())

    @classmethod
    def from_bytes(cls, ctx: CkksContext, data: bytes | bytearray | memoryview) -> CiphertextBlocks:
        """Parses and validates wire bytes made under ``ctx``.

        Raises
        ------
        IntegrityError
            For malformed, truncated, oversized, tampered bytes, or bytes made
            under another parameter set.
        TypeError
            If ``data`` is not bytes-like.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"from_bytes needs bytes, got {type(data).__name__}")
        return cls(_native.CiphertextBatch.from_bytes(ctx._params, data), ctx)

    def __add__(self, other: CiphertextBlocks) -> CiphertextBlocks:
        return add(self, other)

    def __repr__(self) -> str:
        return (
            f"CiphertextBlocks(shape={self.shape}, blocks={len(self)}, origin={self.origin}, "
            f"c1_form={self.c1_form}, nbytes={self.nbytes})"
        )


def _threads(threads: int | None) -> int:
    if threads is None:
        return 0
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    return threads


def _as_flat_numpy(x: Any) -> tuple[np.ndarray, tuple[int, ...], Any]:
    """The one explicit conversion: torch/numpy -> contiguous 1-D float32/float64 numpy."""
    torch_like = None
    mod = type(x).__module__
    if mod.startswith("torch"):
        import torch

        if not isinstance(x, torch.Tensor):
            raise TypeError(f"expected a tensor or array, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"encrypt_blocks needs a floating-point tensor, got {x.dtype}")
        torch_like = (x.device, x.dtype)
        t = x.detach()
        if t.dtype not in (torch.float32, torch.float64):
            t = t.to(torch.float32)  # float16 / bfloat16: widened exactly
        x = t.to("cpu").contiguous().numpy()
    if not isinstance(x, np.ndarray):
        raise TypeError(f"encrypt_blocks needs a numpy array or torch tensor, got {type(x).__name__}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"encrypt_blocks needs float32 or float64 values, got {x.dtype}")
    shape = tuple(int(d) for d in x.shape)
    flat = np.ascontiguousarray(x).reshape(-1)
    if flat.size == 0:
        raise ValueError("cannot encrypt an empty array")
    return flat, shape, torch_like


def _encrypt(keys: KeySet, x: Any, threads: int | None, mode: str | None, seed: bytes | None) -> CiphertextBlocks:
    flat, shape, torch_like = _as_flat_numpy(x)
    if mode is None:
        mode = "secret" if keys.has_secret else "public"
    if mode not in ("secret", "public"):
        raise ValueError(f"mode must be 'secret' or 'public', got {mode!r}")
    native = _native.encrypt(keys._native, flat, list(shape), mode, _threads(threads), seed)
    return CiphertextBlocks(native, keys.ctx, torch_like)


def encrypt_blocks(keys: KeySet, x: Any, threads: int | None = None, mode: str | None = None) -> CiphertextBlocks:
    """Encrypts an array block by block.

    Parameters
    ----------
    keys : KeySet
        Full keys (secret-key encryption: only a seed of each ciphertext's
        random half travels) or public keys (public-key encryption).
    x : numpy.ndarray or torch.Tensor
        float32 or float64 values of any shape with ``|x| <= ctx.max_value``
        (CUDA tensors are copied to the CPU; float16/bfloat16 are widened).
    threads : int, optional
        Worker threads; all hardware threads by default.
    mode : {'secret', 'public'}, optional
        Default: 'secret' when ``keys`` holds the secret key, else 'public'.

    Raises
    ------
    TypeError
        For non-float inputs.
    ValueError
        For empty inputs, NaN/Inf, values outside ``[-max_value, max_value]``,
        or 'secret' mode without a secret key.
    """
    return _encrypt(keys, x, threads, mode, None)


def encrypt_blocks_derand(
    keys: KeySet, x: Any, seed: bytes, threads: int | None = None, mode: str = "secret"
) -> CiphertextBlocks:
    """As :func:`encrypt_blocks`, with all randomness from a 32-byte seed. Known-answer tests only."""
    if not isinstance(seed, bytes) or len(seed) != 32:
        raise ValueError("seed must be 32 bytes")
    return _encrypt(keys, x, threads, mode, seed)


def decrypt_blocks(keys: KeySet, ct: CiphertextBlocks, threads: int | None = None, dtype: str | None = None) -> Any:
    """Decrypts to an array of the encrypted shape and dtype.

    A torch input gives a torch tensor back on the input's device and dtype.

    Raises
    ------
    ValueError
        If ``keys`` has no secret key, or belongs to another context or key pair.
    """
    if not isinstance(ct, CiphertextBlocks):
        raise TypeError(f"decrypt_blocks needs CiphertextBlocks, got {type(ct).__name__}")
    out_dtype = dtype or ct.dtype
    flat = _native.decrypt(keys._native, ct._native, out_dtype, _threads(threads))
    y = flat.reshape(ct.shape)
    if ct._torch_like is not None:
        import torch

        device, tdtype = ct._torch_like
        return torch.from_numpy(y).to(device=device, dtype=tdtype)
    return y


def aggregate(
    cts: Sequence[CiphertextBlocks],
    weights: Sequence[float] | None = None,
    threads: int | None = None,
    compact: bool = True,
) -> CiphertextBlocks:
    """Weighted sum of encrypted arrays: E(sum_i w_i x_i) (equations 3 and 6).

    Parameters
    ----------
    cts : sequence of CiphertextBlocks
        Same context, key, shape and scale.
    weights : sequence of float, optional
        Public real weights; default ``1/len(cts)`` each (the plain mean).
        Weights are applied as integers at scale 2**k (k <= 30, chosen by the
        kernel), which adds at most ``sum_i 2**-(k+1) * bound_i`` of error.
    threads : int, optional
        Worker threads; all hardware threads by default.
    compact : bool, default True
        When every input is ``'seeded'`` or ``'seeded-sum'`` (secret-key
        encryptions and aggregates of them) and the seeds per block add up to
        at most :data:`MAX_SEEDS_PER_BLOCK`, return the ``'seeded-sum'`` form:
        the summed c0 plus the inputs' seeds and the integer weights, about
        half the bytes of the full form and no seed expansion on the
        aggregator. Otherwise, or with ``compact=False``, c1 is summed in
        full (``'full'``). Both decrypt to the same bits. The compact form
        shows every key holder the inputs' count and weights (the seeds were
        public in the uploads already); use ``compact=False`` to keep only
        their sum visible.

    Raises
    ------
    ValueError
        For no inputs, mismatched inputs or weights, non-finite weights, or a
        sum that could overflow the modulus.
    """
    cts = list(cts)
    if not cts:
        raise ValueError("aggregate needs at least one ciphertext")
    for c in cts:
        if not isinstance(c, CiphertextBlocks):
            raise TypeError(f"aggregate needs CiphertextBlocks, got {type(c).__name__}")
    if weights is None:
        w = [1.0 / len(cts)] * len(cts)
    else:
        w = [float(v) for v in weights]
    if not isinstance(compact, bool):
        raise TypeError(f"compact must be a bool, got {type(compact).__name__}")
    native = _native.aggregate([c._native for c in cts], w, _threads(threads), compact)
    return CiphertextBlocks(native, cts[0].ctx, cts[0]._torch_like)


def dyadic_weights(cts: Sequence[CiphertextBlocks], weights: Sequence[float]) -> list[float]:
    """Weights rounded to what :func:`aggregate` applies exactly on ``cts``, with their sum kept.

    The kernel applies weight ``w`` as the integer ``round(w * 2**k)`` at
    scale ``2**k``, with ``k <= 30`` limited by the headroom of the modulus
    (about 30 bits at the default parameters, about 12 at
    ``CkksContext.preset("compact")`` for secret-key inputs and 10 for its
    public-key inputs, which are at scale 2^34). This returns weights that are
    multiples of ``2**-k`` for the largest ``k`` that cannot overflow, adjusted
    by whole units of ``2**-k`` so that they add up to ``round(sum(weights) *
    2**k) * 2**-k`` (exactly 1 for normalised weights). :func:`aggregate` with
    them adds no weight-rounding error: the result is exactly the weighted sum
    with these weights, which the caller can publish and apply to plain data
    alike (the federated aggregator does, so both halves of a hybrid update
    use the same weights).

    Parameters
    ----------
    cts : sequence of CiphertextBlocks
        The inputs to be aggregated (their scale, bounds and modulus set ``k``).
    weights : sequence of float
        One finite weight per input.

    Returns
    -------
    list of float

    Raises
    ------
    ValueError
        For mismatched inputs or weights, non-finite weights, or weights too
        large to be applied without overflow even at ``k = 0``.
    """
    cts = list(cts)
    w = np.asarray([float(v) for v in weights], dtype=np.float64)
    if not cts or w.shape != (len(cts),):
        raise ValueError(f"dyadic_weights needs one weight per ciphertext, got {w.size} for {len(cts)}")
    if not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite")
    natives = [c._native for c in cts]
    for k in range(30, -1, -1):
        units = np.rint(np.ldexp(w, k))
        # Keep the sum: hand the rounding residue to the largest weight.
        residue = float(np.rint(np.ldexp(w.sum(), k)) - units.sum())
        units[int(np.argmax(np.abs(w)))] += residue
        out = [float(x) for x in np.ldexp(units, -k)]
        try:
            _native.aggregate_weight_bits(natives, out)
        except ValueError as e:
            # Too many fractional bits for the headroom: the kernel would lower k
            # (and refuse the rounding) or overflow; try one bit fewer.
            if k > 0 and ("overflow" in str(e) or "fractional bits" in str(e)):
                continue
            raise
        return out
    raise AssertionError("unreachable: k = 0 either fits or raises")


def add(a: CiphertextBlocks, b: CiphertextBlocks, threads: int | None = None, compact: bool = True) -> CiphertextBlocks:
    """Homomorphic sum of two encrypted arrays (weights 1 and 1, exact).

    Any c1 forms mix: two seeded or seeded-sum operands give a ``'seeded-sum'``
    result (their seed lists joined) while it fits, anything else a ``'full'``
    one; see :func:`aggregate` for ``compact``.
    """
    return aggregate([a, b], [1.0, 1.0], threads, compact)
