"""A torch Dataset with one training example per note.

One example per note (never a window across notes) is what makes per-example
clipping in DP-SGD protect a whole patient record: each record's influence on
a step is bounded by the clipping norm (Abadi et al. 2016, "Deep Learning with
Differential Privacy"). A note longer than the block is truncated, not spread
over several examples.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from xcloud.data.split import split_train_val

__all__ = ["IGNORE_INDEX", "NoteDataset", "split_train_val"]

IGNORE_INDEX = -100
"""Target value of padding positions; ``torch.nn.functional.cross_entropy`` ignores it by default."""


class NoteDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Token-id lists as fixed-length next-token examples, one per note.

    Example ``i`` is the sequence ``s = [bos] + token_id_lists[i] + [eos]``,
    cut to ``block_size + 1`` tokens (a long note loses its tail and its
    ``eos``) and padded with ``pad_id`` to that length; ``x = s[:-1]`` and
    ``y = s[1:]`` with every target that is padding set to
    :data:`IGNORE_INDEX`.

    Parameters
    ----------
    token_id_lists : Sequence[Sequence[int]]
        Token ids of each note, without ``bos``/``eos`` (e.g.
        :meth:`WordTokenizer.encode_batch`).
    block_size : int
        Model context length T; x and y have shape (T,).
    bos_id, eos_id, pad_id : int
        Special token ids (the :class:`WordTokenizer` defaults).
    vocab_size : int or None
        If given, every id must be below it.

    Raises
    ------
    ValueError
        If ``block_size < 1`` or an id is negative or not below ``vocab_size``.

    Notes
    -----
    All examples are built once, in two int64 tensors of shape (N, T);
    ``__getitem__`` returns views of their rows.
    """

    def __init__(
        self,
        token_id_lists: Sequence[Sequence[int]],
        block_size: int,
        *,
        bos_id: int = 2,
        eos_id: int = 3,
        pad_id: int = 0,
        vocab_size: int | None = None,
    ) -> None:
        if int(block_size) != block_size or block_size < 1:
            raise ValueError(f"block_size must be a positive int, got {block_size!r}")
        n, width = len(token_id_lists), block_size + 1
        seqs = np.full((n, width), pad_id, dtype=np.int64)  # (N, T+1)
        lengths = np.empty(n, dtype=np.int64)
        for i, ids in enumerate(token_id_lists):
            row = [bos_id, *ids[: width - 1], eos_id][:width]
            seqs[i, : len(row)] = row
            lengths[i] = len(row)
        if n and seqs.min() < 0:
            raise ValueError(f"token ids must be non-negative, got {int(seqs.min())}")
        if n and vocab_size is not None and seqs.max() >= vocab_size:
            raise ValueError(f"token id {int(seqs.max())} is not below vocab_size={vocab_size}")
        targets = seqs[:, 1:].copy()  # (N, T): target j is token j+1
        targets[np.arange(block_size)[None, :] >= lengths[:, None] - 1] = IGNORE_INDEX
        self._x = torch.from_numpy(np.ascontiguousarray(seqs[:, :-1]))  # (N, T)
        self._y = torch.from_numpy(targets)  # (N, T)
        self._lengths = lengths
        self.block_size = int(block_size)

    def __len__(self) -> int:
        return int(self._x.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)``, int64 tensors of shape (block_size,)."""
        return self._x[index], self._y[index]

    @property
    def lengths(self) -> np.ndarray:
        """Tokens kept per example, ``bos`` and ``eos`` included (at most ``block_size + 1``)."""
        return self._lengths.copy()

    @property
    def num_targets(self) -> int:
        """Number of targets that are not :data:`IGNORE_INDEX` (the tokens a loss is averaged over)."""
        return int((self._y != IGNORE_INDEX).sum())
