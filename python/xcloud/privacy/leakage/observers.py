"""What each observer of a round holds, as arrays the meters can attack.

Two observers (DESIGN.md's security model):

- the aggregation server, honest but curious: it verifies every update, so it
  holds each client's plain part in the clear and its encrypted part as
  ciphertext, and it computes the aggregate;
- a network eavesdropper on a link: it holds the bytes of the update
  messages and the aggregate. xcloud's messages are authenticated (HMAC,
  Ed25519), not encrypted, so without TLS it reads the plain parts exactly as
  the server does; with TLS (Flower's transport) it reads only AES-GCM output.

An :class:`Observation` holds, for every tensor of the agreed layout, the
values the observer can put in its place: the plain values where the tensor
travels in plain, and where it is encrypted, the ciphertext's c0 coefficients
laid out over the same positions (coefficient ``i`` of the stream for value
``i``, centred and divided by the modulus). That mapping is the attacker's
best guess; under encryption any other is as good, which is the point. So
every attack runs unchanged on what each observer actually holds.

This module is below the federated layer: building an observation from
message bytes is :mod:`xcloud.experiments.leakage`'s job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Observation", "assemble", "pseudo_values", "tensor_rows"]


@dataclass
class Observation:
    """What one observer holds of one client's update (or of the aggregate) in one round.

    Attributes
    ----------
    observer : str
        ``"server"`` or ``"eavesdropper"``.
    round : int
    source : str
        The client id, or ``"aggregate"``.
    tensors : dict of str to numpy.ndarray
        Every tensor of the layout, shaped, as the observer holds it.
    encrypted : tuple of str
        Names of the tensors whose values are ciphertext coefficients.
    plain_bytes, ciphertext_bytes, message_bytes : int
        Sizes of the plain part, the ciphertext part and the whole message.
    residues : numpy.ndarray or None
        The ciphertext's c0 residues (blocks, primes, N), for uniformity tests.
    """

    observer: str
    round: int
    source: str
    tensors: dict[str, np.ndarray]
    encrypted: tuple[str, ...] = ()
    plain_bytes: int = 0
    ciphertext_bytes: int = 0
    message_bytes: int = 0
    residues: np.ndarray | None = field(default=None, repr=False)

    def kind(self, name: str) -> str:
        """``"ciphertext"`` or ``"plain"``: how tensor ``name`` reached the observer."""
        if name not in self.tensors:
            raise ValueError(f"{name!r} is not a tensor of this observation")
        return "ciphertext" if name in self.encrypted else "plain"


def pseudo_values(residues: np.ndarray, prime: int, n_values: int) -> np.ndarray:
    """The first ``n_values`` c0 coefficients modulo ``prime`` (row 0), centred and scaled into [-0.5, 0.5).

    Parameters
    ----------
    residues : numpy.ndarray
        uint64 (blocks, primes, N).
    prime : int
        Modulus of row 0.
    n_values : int
        Encrypted values the coefficients stand in for.

    Raises
    ------
    ValueError
        If the ciphertext has fewer coefficients than ``n_values``.
    """
    r = np.asarray(residues)
    if r.ndim != 3:
        raise ValueError(f"residues must be (blocks, primes, N), got shape {r.shape}")
    flat = r[:, 0, :].reshape(-1)
    if flat.size < n_values:
        raise ValueError(f"ciphertext has {flat.size} coefficients, fewer than its {n_values} values")
    v = flat[:n_values].astype(np.float64)
    v = np.where(v >= prime / 2, v - prime, v)
    return (v / prime).astype(np.float32)


def assemble(
    names: Sequence[str],
    shapes: Sequence[tuple[int, ...]],
    mask: np.ndarray,
    plain: np.ndarray,
    encrypted: np.ndarray | None,
) -> dict[str, np.ndarray]:
    """Puts plain values and ciphertext stand-ins back into the layout's tensors.

    Parameters
    ----------
    names, shapes : sequences
        The layout, in order.
    mask : numpy.ndarray
        bool over the flattened vector, True where encrypted.
    plain : numpy.ndarray
        The plain values, in layout order over ``~mask``.
    encrypted : numpy.ndarray or None
        Stand-ins of the encrypted values (:func:`pseudo_values`), over ``mask``.

    Raises
    ------
    ValueError
        If the sizes do not match the mask or the layout.
    """
    m = np.asarray(mask, dtype=bool)
    sizes = [int(np.prod(s)) if s else 1 for s in shapes]
    if len(names) != len(shapes) or sum(sizes) != m.size:
        raise ValueError(f"the layout holds {sum(sizes)} values, the mask {m.size}")
    if plain.size != int((~m).sum()):
        raise ValueError(f"{plain.size} plain values for {int((~m).sum())} plain positions")
    n_enc = int(m.sum())
    if n_enc and (encrypted is None or encrypted.size != n_enc):
        raise ValueError(f"{0 if encrypted is None else encrypted.size} stand-ins for {n_enc} encrypted positions")
    full = np.zeros(m.size, dtype=np.float32)
    full[~m] = plain
    if n_enc:
        assert encrypted is not None
        full[m] = encrypted
    out: dict[str, np.ndarray] = {}
    pos = 0
    for name, shape, size in zip(names, shapes, sizes, strict=True):
        out[name] = full[pos : pos + size].reshape(shape)
        pos += size
    return out


def tensor_rows(observation: Observation, name: str) -> np.ndarray:
    """Tensor ``name`` of an observation as (rows, width); raises ValueError if it is not 2-D."""
    t = observation.tensors.get(name)
    if t is None:
        raise ValueError(f"{name!r} is not a tensor of this observation")
    if t.ndim != 2:
        raise ValueError(f"{name!r} has shape {t.shape}: the token attack needs (tokens, width)")
    return t
