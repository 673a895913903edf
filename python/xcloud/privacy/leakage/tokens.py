"""Token leakage: the bag-of-words attack on the rows of token-indexed update tensors.

Row ``v`` of the token-embedding update changes only if token ``v`` was an
input of the client's batch (an embedding lookup passes gradient to the rows
it read and to no other), so the set of rows that moved is the bag of words
the client trained on. This is the first stage of FILM (Gupta et al. 2022,
"Recovering Private Text in Federated Learning of Language Models") and of
TAG (Deng et al. 2021, "TAG: Gradient Attack on Transformer-based Language
Models"), which then order the recovered words.

The output head is subtler: through the softmax every row gets a gradient,
``(p_v - 1[y = v]) h`` summed over positions. For a token that was never a
target the gradient is ``p_v * sum(h)``, the same direction for every such
row, and AdamW (which normalises each coordinate) turns those rows into
nearly the same update. So this attack scores a row by its distance from the
coordinate-wise median row, not by its norm: rows that moved together are
the untouched majority, rows that moved differently are the tokens that were
targets. For the embedding the median row is zero whenever fewer than half
the vocabulary was used, and the score is the row norm.

The attacker's own decision is a threshold on the scores chosen by Otsu's
method on their logarithm (the split maximising the between-class variance,
the classic parameter-free cut of a bimodal histogram): when the attack works
the scores are two clusters (rows that moved and rows that did not, often
exactly zero); on noise or ciphertext it splits noise and reads chance. The
threshold-free numbers are the area under the ROC curve of the ranking and
the *leakage rate*: the largest recall of any cut of the ranking whose
precision is at least ``min_precision`` (0.9 by default). The rate is
measured with the true bag, so it bounds from above what an attacker without
it achieves; a random ranking's expectation of the same statistic, the chance
level, is reported next to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from xcloud.models.tiny_gpt import IGNORE_INDEX

__all__ = [
    "TokenLeakage",
    "bag_of_words",
    "batch_tokens",
    "chance_rate",
    "otsu_threshold",
    "rate_at_precision",
    "replay_batches",
    "roc_auc",
    "row_scores",
]


@dataclass(frozen=True)
class TokenLeakage:
    """What the bag-of-words attack recovered from one client's update rows in one round.

    Attributes
    ----------
    recall, precision : float
        Of the attacker's own decision (rows above the Otsu threshold) against
        the client's distinct training tokens.
    auc : float
        Area under the ROC curve of the row ranking (0.5 = chance).
    rate : float
        Leakage rate: the largest recall of a cut of the ranking with
        precision >= ``min_precision``.
    chance_rate : float
        Expected ``rate`` of a random ranking (same vocabulary and bag size).
    chance_precision : float
        Precision of guessing every row: ``true / vocab``.
    predicted, true, vocab : int
        Rows the attacker flagged, distinct training tokens, rows ranked.
    min_precision : float
    """

    recall: float
    precision: float
    auc: float
    rate: float
    chance_rate: float
    chance_precision: float
    predicted: int
    true: int
    vocab: int
    min_precision: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def row_scores(rows: np.ndarray) -> np.ndarray:
    """Scores of the rows of a token-indexed update: L2 distance from the coordinate-wise median row.

    Parameters
    ----------
    rows : numpy.ndarray
        Shape (V, C): one row per token id (embedding or output-head update).

    Returns
    -------
    numpy.ndarray
        float64, shape (V,).

    Raises
    ------
    ValueError
        If ``rows`` is not a non-empty 2-D array of finite values.
    """
    a = np.asarray(rows, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"rows must be a non-empty 2-D array (tokens, width), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("rows contain NaN or Inf")
    return np.linalg.norm(a - np.median(a, axis=0, keepdims=True), axis=1)


def otsu_threshold(scores: np.ndarray) -> float:
    """Otsu's threshold on ``log10(scores)``: rows with a score strictly above it are flagged.

    Scores that are exactly zero (rows that did not move) count as ten
    decades below the smallest positive score, so they always fall below.

    Raises
    ------
    ValueError
        If ``scores`` is empty, negative or not finite.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.size == 0:
        raise ValueError("no scores to threshold")
    if not np.all(np.isfinite(s)) or s.min() < 0:
        raise ValueError("scores must be finite and non-negative")
    pos = s[s > 0]
    if pos.size == 0:
        return 0.0  # nothing moved: nothing is flagged
    floor = pos.min() * 1e-10
    logs = np.sort(np.log10(np.maximum(s, floor)))
    if logs[0] == logs[-1]:
        return float(s.max())  # one cluster: flag nothing
    n = logs.size
    csum = np.cumsum(logs)
    k = np.arange(1, n)  # split after the k smallest
    mean_lo = csum[:-1] / k
    mean_hi = (csum[-1] - csum[:-1]) / (n - k)
    between = k * (n - k) * (mean_lo - mean_hi) ** 2
    between[logs[:-1] == logs[1:]] = -1.0  # only split between distinct values
    best = int(np.argmax(between))
    return float(10 ** ((logs[best] + logs[best + 1]) / 2))


def _labels(truth: Iterable[int], vocab: int) -> np.ndarray:
    ids = np.unique(np.fromiter((int(t) for t in truth), dtype=np.int64))
    if ids.size == 0:
        raise ValueError("the client's training tokens are empty: nothing to measure leakage against")
    if ids.min() < 0 or ids.max() >= vocab:
        raise ValueError(f"training token ids must lie in [0, {vocab}), got [{ids.min()}, {ids.max()}]")
    y = np.zeros(vocab, dtype=bool)
    y[ids] = True
    return y


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties).

    Raises
    ------
    ValueError
        If the shapes differ, or either class is empty.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=bool).ravel()
    if s.shape != y.shape:
        raise ValueError(f"scores ({s.size}) and labels ({y.size}) differ in length")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs at least one positive and one negative")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(s.size, dtype=np.float64)
    sorted_s = s[order]
    # Average rank (1-based) over each run of equal scores.
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_s)) + 1]
    ends = np.r_[starts[1:], s.size]
    for a, b in zip(starts, ends, strict=True):
        ranks[order[a:b]] = (a + b + 1) / 2.0
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def rate_at_precision(scores: np.ndarray, labels: np.ndarray, min_precision: float = 0.9) -> float:
    """Largest recall of a cut ``score >= s`` of the ranking whose precision is at least ``min_precision``.

    Tied scores are kept together (a cut never splits a tie). 0 when no cut qualifies.
    """
    if not 0.0 < min_precision <= 1.0:
        raise ValueError(f"min_precision must be in (0, 1], got {min_precision}")
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=bool).ravel()
    if s.shape != y.shape:
        raise ValueError(f"scores ({s.size}) and labels ({y.size}) differ in length")
    n_pos = int(y.sum())
    if n_pos == 0:
        raise ValueError("no positive label")
    order = np.argsort(-s, kind="mergesort")
    hits = np.cumsum(y[order])
    ss = s[order]
    ends = np.r_[np.flatnonzero(np.diff(ss)), s.size - 1]  # last index of each tie group
    counts = ends + 1
    prec = hits[ends] / counts
    ok = prec >= min_precision - 1e-12
    return float(hits[ends][ok].max() / n_pos) if ok.any() else 0.0


def chance_rate(n_true: int, vocab: int, min_precision: float = 0.9, draws: int = 200, seed: int = 0) -> float:
    """Expected :func:`rate_at_precision` of a random ranking, by Monte Carlo (numpy's generator, seeded).

    Results are cached by their arguments (the meters ask for the same few often).

    Raises
    ------
    ValueError
        If ``n_true`` is not in [1, vocab].
    """
    if not 1 <= n_true <= vocab:
        raise ValueError(f"n_true must be in [1, vocab={vocab}], got {n_true}")
    return _chance_rate(int(n_true), int(vocab), float(min_precision), int(draws), int(seed))


@lru_cache(maxsize=4096)
def _chance_rate(n_true: int, vocab: int, min_precision: float, draws: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    y = np.zeros(vocab, dtype=bool)
    y[:n_true] = True
    rates = [rate_at_precision(rng.permutation(vocab).astype(float), y, min_precision) for _ in range(draws)]
    return float(np.mean(rates))


def bag_of_words(
    rows: np.ndarray,
    truth: Iterable[int],
    *,
    min_precision: float = 0.9,
    chance_draws: int = 200,
) -> TokenLeakage:
    """Runs the bag-of-words attack on one update tensor and scores it against the true bag.

    Parameters
    ----------
    rows : numpy.ndarray
        (V, C) update of a token-indexed tensor as the observer holds it: the
        plain embedding or output-head delta, or whatever stands in its place
        (DP-noised values, ciphertext coefficients laid out the same way).
    truth : iterable of int
        Distinct token ids the client trained on this round.
    min_precision : float
        Precision of the leakage rate.
    chance_draws : int
        Random rankings averaged for the chance level.

    Raises
    ------
    ValueError
        For empty or non-2-D rows, an empty truth, or ids outside the rows.
    """
    scores = row_scores(rows)
    vocab = scores.size
    y = _labels(truth, vocab)
    flagged = scores > otsu_threshold(scores)
    tp = int((flagged & y).sum())
    n_true = int(y.sum())
    return TokenLeakage(
        recall=tp / n_true,
        precision=tp / int(flagged.sum()) if flagged.any() else 0.0,
        auc=roc_auc(scores, y) if n_true < vocab else float("nan"),
        rate=rate_at_precision(scores, y, min_precision),
        chance_rate=chance_rate(n_true, vocab, min_precision, draws=chance_draws),
        chance_precision=n_true / vocab,
        predicted=int(flagged.sum()),
        true=n_true,
        vocab=vocab,
        min_precision=min_precision,
    )


def replay_batches(n: int, batch_size: int, steps: int, seed: int, dp: Any = None) -> list[torch.Tensor]:
    """The record indices :func:`xcloud.models.train_local` draws for ``seed``, recomputed without training.

    Without DP, ``train_local`` draws its batches from a CPU ``torch.Generator``
    seeded with ``seed`` (reduced mod 2^63) and nothing else, so the same draws
    give the same batches: shuffled epochs of ``min(batch_size, n)``. With
    ``dp`` (a :class:`~xcloud.privacy.RecordDP`) the Poisson batches come from
    OS entropy and cannot be recomputed: they are the ones ``dp`` recorded when
    it trained with ``seed`` in this process (or, with ``dp.config.noise_seed``
    set, recomputed from it).

    Raises
    ------
    ValueError
        If ``n``, ``batch_size`` or ``steps`` is not positive, or ``dp`` did not
        train with ``seed`` here and has no ``noise_seed``.
    """
    from xcloud.models.training import _epoch_batches  # the sampler itself, so a change to it shows here

    if n < 1 or batch_size < 1 or steps < 1:
        raise ValueError(f"n, batch_size and steps must be positive, got {n}, {batch_size}, {steps}")
    if dp is None:
        return _epoch_batches(n, batch_size, steps, torch.Generator().manual_seed(int(seed) % (1 << 63)))
    drawn = dp.drawn_batches(seed)
    if drawn is not None:
        return drawn
    if dp.config.noise_seed is None:
        raise ValueError(f"the DP batches of seed {seed} come from OS entropy and this RecordDP did not draw them")
    source = dp.sampling_source(seed)
    return [dp.sample(n, source) for _ in range(steps)]


def batch_tokens(dataset: Any, batches: Sequence[torch.Tensor | Sequence[int]]) -> np.ndarray:
    """Distinct token ids a client trained on in ``batches``: every input and target that enters the loss.

    An input counts where its target is not ignored (padding), a target
    wherever it is not ignored; with :class:`~xcloud.data.dataset.NoteDataset`
    that is ``<bos>``, the note's tokens and ``<eos>`` (if not cut off).

    Raises
    ------
    ValueError
        If there are no batches or they hold no token that enters the loss.
    """
    from xcloud.models.training import collate

    if len(batches) == 0:
        raise ValueError("no batches")
    seen: set[int] = set()
    for idx in batches:
        if len(idx) == 0:
            continue  # an empty Poisson batch
        x, y = collate(dataset, idx)
        keep = y != IGNORE_INDEX
        seen.update(x[keep].tolist())
        seen.update(y[keep].tolist())
    if not seen:
        raise ValueError("the batches hold no token that enters the loss")
    return np.array(sorted(seen), dtype=np.int64)
