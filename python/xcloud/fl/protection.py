"""Which parameters of an update are encrypted (equation 4 as DESIGN.md reads it).

A :class:`ProtectionPlan` is a boolean mask over the flattened update: the
masked values are encrypted with CKKS, the rest travel in plain. Selective
encryption as in FedML-HE: the token embedding and the output head, whose
update rows reveal which tokens a client trained on, are always encrypted;
the encrypted fraction is a knob that adds whole tensors in a fixed priority
order (the plan never depends on the data).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xcloud.fl.layout import ParameterLayout

__all__ = ["ProtectionPlan", "selective_plan"]


@dataclass(frozen=True)
class ProtectionPlan:
    """Encrypted tensors of a layout, and the resulting mask."""

    layout: ParameterLayout
    encrypted: tuple[str, ...]

    def mask(self) -> np.ndarray:
        """Boolean mask over the flattened vector: True = encrypted."""
        m = np.zeros(self.layout.total, dtype=bool)
        offsets = self.layout.offsets()
        for name in self.encrypted:
            a, b = offsets[name]
            m[a:b] = True
        return m

    @property
    def encrypted_values(self) -> int:
        sizes = dict(zip(self.layout.names, self.layout.sizes, strict=True))
        return int(sum(sizes[n] for n in self.encrypted))

    @property
    def fraction(self) -> float:
        """Fraction of the update's values that are encrypted."""
        return self.encrypted_values / self.layout.total if self.layout.total else 0.0

    def digest(self) -> bytes:
        """SHA-256 binding the layout and the encrypted tensor names."""
        h = hashlib.sha256(self.layout.digest())
        for name in self.encrypted:
            h.update(name.encode() + b"\0")
        return h.digest()


def selective_plan(
    layout: ParameterLayout, fraction: float, always: Sequence[str] = (), priority: Sequence[str] = ()
) -> ProtectionPlan:
    """A plan encrypting ``always`` plus further tensors until ``fraction`` of the values is encrypted.

    Parameters
    ----------
    layout : ParameterLayout
    fraction : float
        Target encrypted fraction in [0, 1]; 1 encrypts everything.
    always : sequence of str
        Tensors encrypted whatever the fraction (the token embedding and output head).
    priority : sequence of str
        Order in which further tensors are added; tensors not listed follow in
        reverse layout order (layers nearest the output first).

    Raises
    ------
    ValueError
        If ``fraction`` is outside [0, 1] or a name is not in the layout.
    """
    if not 0.0 <= fraction <= 1.0 or fraction != fraction:
        raise ValueError(f"encrypted fraction must be in [0, 1], got {fraction}")
    names = set(layout.names)
    for n in (*always, *priority):
        if n not in names:
            raise ValueError(f"{n!r} is not a parameter of the model")
    sizes = dict(zip(layout.names, layout.sizes, strict=True))
    chosen: list[str] = list(dict.fromkeys(always))
    order = [n for n in priority if n not in chosen] + [
        n for n in reversed(layout.names) if n not in chosen and n not in priority
    ]
    target = fraction * layout.total
    done = sum(sizes[n] for n in chosen)
    for n in order:
        if done >= target - 1e-9:
            break
        chosen.append(n)
        done += sizes[n]
    # Keep layout order so the mask and the names agree everywhere.
    ordered = tuple(n for n in layout.names if n in set(chosen))
    return ProtectionPlan(layout, ordered)
