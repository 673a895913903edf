"""Flattening a model's parameters into one update vector and back.

The layout (names, shapes, offsets) is agreed by all parties; its digest
travels in every message so an update made for another model is rejected.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["ParameterLayout"]


@dataclass(frozen=True)
class ParameterLayout:
    """Ordered tensor names and shapes of the federated parameters."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    @classmethod
    def from_state(cls, state: Mapping[str, torch.Tensor], names: Iterable[str] | None = None) -> ParameterLayout:
        """Layout of ``state`` (all floating-point tensors, or the given names, in state order)."""
        wanted = set(names) if names is not None else None
        keep = [k for k, v in state.items() if v.is_floating_point() and (wanted is None or k in wanted)]
        if wanted is not None and set(keep) != wanted:
            missing = sorted(wanted - set(keep))
            raise ValueError(f"parameters not in the model state: {missing}")
        return cls(tuple(keep), tuple(tuple(int(d) for d in state[k].shape) for k in keep))

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(int(np.prod(s)) if s else 1 for s in self.shapes)

    @property
    def total(self) -> int:
        """Number of values in the flattened vector."""
        return int(sum(self.sizes))

    def offsets(self) -> dict[str, tuple[int, int]]:
        """name -> (start, stop) in the flattened vector."""
        out: dict[str, tuple[int, int]] = {}
        pos = 0
        for name, size in zip(self.names, self.sizes, strict=True):
            out[name] = (pos, pos + size)
            pos += size
        return out

    def digest(self) -> bytes:
        """SHA-256 of the canonical JSON description (names and shapes)."""
        blob = json.dumps({"names": list(self.names), "shapes": [list(s) for s in self.shapes]}, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).digest()

    def flatten(self, state: Mapping[str, torch.Tensor]) -> np.ndarray:
        """The parameters of ``state`` as one float32 numpy vector (on the CPU)."""
        parts = []
        for name, shape in zip(self.names, self.shapes, strict=True):
            t = state[name]
            if tuple(t.shape) != shape:
                raise ValueError(f"parameter {name} has shape {tuple(t.shape)}, the layout says {shape}")
            parts.append(t.detach().to("cpu", torch.float32).reshape(-1).numpy())
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    def unflatten(self, vec: np.ndarray, like: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Tensors of the layout from ``vec``, with the device and dtype of ``like``."""
        if vec.shape != (self.total,):
            raise ValueError(f"vector has shape {vec.shape}, the layout needs ({self.total},)")
        out: dict[str, torch.Tensor] = {}
        for name, (a, b) in self.offsets().items():
            ref = like[name]
            out[name] = torch.from_numpy(np.ascontiguousarray(vec[a:b])).reshape(ref.shape).to(ref.device, ref.dtype)
        return out
