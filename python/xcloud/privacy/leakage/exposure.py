"""Canary exposure: how much better than chance a model ranks a planted secret (the "secret sharer" metric).

Carlini et al. 2019, "The Secret Sharer: Evaluating and Testing Unintended
Memorization in Neural Networks": plant ``prefix + secret`` in the training
data, then rank the secret's log-perplexity after the prefix among the other
members of its randomness space. Exposure is ``log2 |R| - log2 rank``: 0 for
a secret ranked last, ``log2 |R|`` for one ranked first; an unmemorised
secret sits near the middle, about 1 bit.

The space of a ``k``-digit secret has ``10 ** k`` members (a million for the
synthetic corpus's six digits), too many to score on a CPU for every canary,
so the rank is estimated among ``candidates`` members drawn uniformly at
random (without the secret): exposure ``log2(m + 1) - log2 rank`` with rank
in ``1 .. m + 1``, ties counted half. This caps the measurable exposure at
``log2(m + 1)`` (about 10 bits for m = 1000); a canary at the cap is
memorised at least that well.

The model is scored on ``<bos> prefix secret``: the prefix alone as context,
as the paper does, though the planted phrase sits inside a note.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["CanaryExposure", "canary_exposure", "secret_log_likelihoods"]


@dataclass(frozen=True)
class CanaryExposure:
    """Exposure of one canary in one model.

    Attributes
    ----------
    prefix, secret : str
    rank : float
        1-based rank of the secret among itself and the candidates (ties half).
    candidates : int
        Random members of the secret's space it was ranked against.
    exposure : float
        ``log2(candidates + 1) - log2(rank)`` bits.
    max_exposure : float
        ``log2(candidates + 1)``.
    log_likelihood : float
        Of the secret's digits after the prefix (nats).
    """

    prefix: str
    secret: str
    rank: float
    candidates: int
    exposure: float
    max_exposure: float
    log_likelihood: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@torch.no_grad()
def secret_log_likelihoods(
    model: torch.nn.Module, context: Sequence[int], secrets: np.ndarray, batch_size: int = 512
) -> np.ndarray:
    """Log-likelihood (nats) of each row of ``secrets`` after ``context`` under ``model``.

    Parameters
    ----------
    model : torch.nn.Module
        ``model(idx) -> (logits, _)``, logits of shape (B, T, V).
    context : sequence of int
        Token ids before the secret (``<bos>`` and the prefix).
    secrets : numpy.ndarray
        int64 (M, k) token ids of the candidate secrets.
    batch_size : int

    Raises
    ------
    ValueError
        For an empty context or candidate array.
    """
    s = np.asarray(secrets, dtype=np.int64)
    if len(context) == 0 or s.ndim != 2 or s.size == 0:
        raise ValueError("need a non-empty context and a non-empty (M, k) array of secrets")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    ctx = torch.as_tensor(list(context), dtype=torch.long, device=device)
    out = np.empty(s.shape[0], dtype=np.float64)
    k = s.shape[1]
    try:
        for a in range(0, s.shape[0], batch_size):
            cand = torch.as_tensor(s[a : a + batch_size], device=device)  # (b, k)
            seq = torch.cat([ctx.expand(cand.shape[0], -1), cand], dim=1)  # (b, c + k)
            logits, _ = model(seq[:, :-1])  # (b, c + k - 1, V)
            logp = F.log_softmax(logits[:, -k:, :].float(), dim=-1)  # (b, k, V): the secret's positions
            out[a : a + cand.shape[0]] = logp.gather(2, cand.unsqueeze(2)).squeeze(2).sum(1).double().cpu().numpy()
    finally:
        model.train(was_training)
    return out


def canary_exposure(
    model: torch.nn.Module,
    context: Sequence[int],
    secret: Sequence[int],
    alphabet: Sequence[int],
    *,
    prefix: str = "",
    secret_text: str = "",
    candidates: int = 1000,
    seed: int = 0,
) -> CanaryExposure:
    """Exposure of ``secret`` after ``context``, ranked among ``candidates`` random secrets over ``alphabet``.

    Parameters
    ----------
    model : torch.nn.Module
    context : sequence of int
        ``<bos>`` and the prefix's token ids.
    secret : sequence of int
        The planted secret's token ids (each in ``alphabet``).
    alphabet : sequence of int
        Token ids a secret symbol can take (the ten digit tokens).
    prefix, secret_text : str
        For the record.
    candidates : int
        Random members of the space drawn (numpy's generator seeded with
        ``seed``: candidates are public test data, not secrets).
    seed : int

    Raises
    ------
    ValueError
        For an empty secret or alphabet, a secret symbol outside the
        alphabet, or fewer than one candidate.
    """
    sec = np.asarray(list(secret), dtype=np.int64)
    alpha = np.asarray(sorted(set(int(a) for a in alphabet)), dtype=np.int64)
    if sec.size == 0 or alpha.size == 0:
        raise ValueError("the secret and its alphabet must not be empty")
    if not np.isin(sec, alpha).all():
        raise ValueError("a symbol of the secret is not in the alphabet")
    if candidates < 1:
        raise ValueError(f"candidates must be at least 1, got {candidates}")
    space = alpha.size**sec.size
    rng = np.random.default_rng(seed)
    pool = alpha[rng.integers(0, alpha.size, size=(candidates * 2 + 8, sec.size))]
    pool = pool[~(pool == sec).all(axis=1)][:candidates]  # the secret itself is not a candidate
    if pool.shape[0] < min(candidates, space - 1):
        raise ValueError("could not draw enough distinct-from-the-secret candidates")
    ll = secret_log_likelihoods(model, context, np.vstack([sec[None, :], pool]))
    mine, others = ll[0], ll[1:]
    rank = 1.0 + float((others > mine).sum()) + 0.5 * float((others == mine).sum())
    m = others.size
    return CanaryExposure(
        prefix=prefix,
        secret=secret_text,
        rank=rank,
        candidates=m,
        exposure=math.log2(m + 1) - math.log2(rank),
        max_exposure=math.log2(m + 1),
        log_likelihood=float(mine),
    )
