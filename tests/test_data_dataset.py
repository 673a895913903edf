"""Tests of the per-note training dataset (xcloud.data.dataset) and the train/validation split."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

import xcloud.data
from xcloud.data import IGNORE_INDEX, NoteDataset, WordTokenizer, generate_corpus, split_train_val

BOS, EOS, PAD = 2, 3, 0


def test_a_short_note_is_padded_with_ignored_targets() -> None:
    # Prepare
    ds = NoteDataset([[10, 11, 12]], block_size=8)

    # Execute
    x, y = ds[0]

    # Assert
    assert x.dtype == y.dtype == torch.int64
    assert x.shape == y.shape == (8,)
    assert x.tolist() == [BOS, 10, 11, 12, EOS, PAD, PAD, PAD]
    assert y.tolist() == [10, 11, 12, EOS, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]
    assert IGNORE_INDEX == -100
    assert ds.lengths.tolist() == [5]


def test_a_note_exactly_filling_the_block_has_no_padding() -> None:
    # Prepare
    ds = NoteDataset([[10, 11, 12]], block_size=4)

    # Execute
    x, y = ds[0]

    # Assert
    assert x.tolist() == [BOS, 10, 11, 12]
    assert y.tolist() == [10, 11, 12, EOS]


def test_a_long_note_is_truncated_not_split() -> None:
    # Prepare
    note = list(range(20, 40))

    # Execute
    ds = NoteDataset([note], block_size=6)
    x, y = ds[0]

    # Assert
    assert len(ds) == 1
    assert x.tolist() == [BOS, *note[:5]]
    assert y.tolist() == note[:6]


def test_an_empty_note_still_teaches_end_of_note() -> None:
    # Execute
    x, y = NoteDataset([[]], block_size=3)[0]

    # Assert
    assert x.tolist() == [BOS, EOS, PAD]
    assert y.tolist() == [EOS, IGNORE_INDEX, IGNORE_INDEX]


def test_one_example_per_note_and_batches_stack() -> None:
    # Prepare
    corpus = generate_corpus(hospitals=2, notes_per_hospital=25, seed=0)
    tok = WordTokenizer.build(corpus.texts())
    ids = tok.encode_batch(corpus.texts())

    # Execute
    ds = NoteDataset(ids, block_size=64, vocab_size=tok.vocab_size)
    x, y = next(iter(DataLoader(ds, batch_size=8, shuffle=False)))

    # Assert
    assert len(ds) == len(corpus.notes)
    assert x.shape == y.shape == (8, 64)
    assert torch.equal(x[:, 1:], torch.where(y[:, :-1] == IGNORE_INDEX, PAD, y[:, :-1]))
    assert ds.num_targets == sum(min(len(i) + 1, 64) for i in ids)


def test_cross_entropy_ignores_the_padding_targets() -> None:
    # Prepare
    torch.manual_seed(0)
    ds = NoteDataset([[5, 6], [7, 8, 9, 10, 11]], block_size=6)
    y = torch.stack([ds[0][1], ds[1][1]])
    logits = torch.randn(2, 6, 20)

    # Execute
    loss = F.cross_entropy(logits.view(-1, 20), y.view(-1))

    # Assert
    keep = y.view(-1) != IGNORE_INDEX
    manual = F.cross_entropy(logits.view(-1, 20)[keep], y.view(-1)[keep])
    assert torch.allclose(loss, manual)
    assert int(keep.sum()) == ds.num_targets == 3 + 6


def test_every_default_note_fits_a_256_token_block_so_canaries_are_never_cut() -> None:
    # Prepare
    corpus = generate_corpus()
    tok = WordTokenizer.build(corpus.texts())

    # Execute
    ds = NoteDataset(tok.encode_batch(corpus.texts()), block_size=256)

    # Assert: every example ends with eos inside the block.
    assert int(ds.lengths.max()) < 256
    assert all(int((ds[i][1] == EOS).sum()) == 1 for i in range(len(ds)))


@pytest.mark.parametrize(
    ("lists", "block_size", "vocab_size", "message"),
    [
        ([[1]], 0, None, "block_size"),
        ([[1]], 2.5, None, "block_size"),
        ([[1, -2]], 4, None, "non-negative"),
        ([[1, 50]], 4, 50, "vocab_size"),
    ],
)
def test_bad_input_raises_value_error(
    lists: list[list[int]], block_size: int, vocab_size: int | None, message: str
) -> None:
    # Execute / Assert
    with pytest.raises(ValueError, match=message):
        NoteDataset(lists, block_size, vocab_size=vocab_size)


# --- train/validation split ---


def test_split_is_disjoint_covering_and_deterministic() -> None:
    # Prepare
    indices = np.arange(100, 200)

    # Execute
    train, val = split_train_val(indices, 0.2, seed=3)
    train2, val2 = split_train_val(indices, 0.2, seed=3)
    train3, _ = split_train_val(indices, 0.2, seed=4)

    # Assert
    assert (train.size, val.size) == (80, 20)
    assert np.array_equal(np.sort(np.concatenate([train, val])), indices)
    assert np.array_equal(train, train2) and np.array_equal(val, val2)
    assert not np.array_equal(train, train3)


@pytest.mark.parametrize(
    ("n", "fraction", "sizes"), [(1, 0.5, (1, 0)), (2, 0.01, (1, 1)), (5, 0.99, (1, 4)), (9, 0.0, (9, 0))]
)
def test_split_keeps_both_parts_usable(n: int, fraction: float, sizes: tuple[int, int]) -> None:
    # Execute
    train, val = split_train_val(np.arange(n), fraction, seed=0)

    # Assert
    assert (train.size, val.size) == sizes


@pytest.mark.parametrize(
    ("indices", "fraction", "seed"),
    [(np.arange(5), 1.0, 0), (np.arange(5), -0.1, 0), (np.arange(5), 0.2, -1), (np.zeros((2, 2), dtype=int), 0.2, 0)],
)
def test_split_rejects_bad_input(indices: np.ndarray, fraction: float, seed: int) -> None:
    # Execute / Assert
    with pytest.raises(ValueError):
        split_train_val(indices, fraction, seed)


# --- the package's public surface ---


def test_all_is_sorted_and_every_name_resolves() -> None:
    # Execute / Assert
    assert xcloud.data.__all__ == sorted(xcloud.data.__all__)
    for name in xcloud.data.__all__:
        assert getattr(xcloud.data, name) is not None


def test_the_numpy_parts_import_without_torch() -> None:
    # Prepare
    code = "import sys, xcloud.data; xcloud.data.generate_corpus(1, 20); assert 'torch' not in sys.modules"

    # Execute
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)

    # Assert
    assert result.returncode == 0, result.stderr
