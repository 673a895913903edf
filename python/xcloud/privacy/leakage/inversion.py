"""Reconstruction by gradient inversion: DLG and iDLG on a tiny language model.

DLG (Zhu, Liu and Han 2019, "Deep Leakage from Gradients") optimises dummy
inputs and labels until the gradient they produce matches the observed one;
iDLG (Zhao, Mopuri and Bilen 2020, "iDLG: Improved Deep Leakage from
Gradients") first reads the labels off the output layer's gradient, which
removes them from the optimisation. For a language model the analogue used
here, as in TAG (Deng et al. 2021) and FILM (Gupta et al. 2022), is to read
the bag of words first (:mod:`xcloud.privacy.leakage.tokens`: the rows of the
embedding and output-head gradient that stand out, found by the attack itself,
never from the truth) and then optimise, per position, a distribution over
that bag only. The inputs are the distributions' mixtures of token
embeddings; the targets are the next position's distribution (a language
model's labels are its inputs shifted), so one set of variables is optimised.
The loss is the squared distance between the dummy and observed gradients,
each tensor normalised by the observed gradient's norm, minimised with Adam;
the reconstruction is the argmax of each position, the best of a few random
restarts by final distance.

This is the FedSGD worst case: the observer sees one exact gradient of a
batch of one or two short sequences. xcloud's clients send the difference of
several AdamW steps instead, which these attacks do not model; the meter is
an upper bound on what a gradient observer gets at this scale, feasible on a
CPU for a one-layer model, a batch of 1-2 and a few hundred steps.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from xcloud.privacy.leakage.tokens import otsu_threshold, row_scores

__all__ = [
    "InversionResult",
    "batch_gradient",
    "dp_gradient",
    "infer_bag",
    "invert",
    "rouge_1",
    "rouge_l",
    "score_reconstruction",
]


@dataclass(frozen=True)
class InversionResult:
    """A reconstruction scored against the true batch.

    Attributes
    ----------
    token_accuracy : float
        Fraction of positions whose recovered token is the true one (best
        matching of recovered to true sequences; a fixed first token excluded).
    rouge1, rougeL : float
        Mean ROUGE-1 and ROUGE-L F1 against the true sequences.
    distance : float
        Final normalised gradient distance.
    steps : int
        Optimizer steps taken (all restarts).
    seconds : float
    bag_size : int
        Tokens in the inferred bag (the optimisation's alphabet).
    recovered, truth : list of list of int
    """

    token_accuracy: float
    rouge1: float
    rougeL: float
    distance: float
    steps: int
    seconds: float
    bag_size: int
    recovered: list[list[int]] = field(default_factory=list)
    truth: list[list[int]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _params(model: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def batch_gradient(model: torch.nn.Module, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """The gradient of the mean next-token loss of ``tokens`` (B, T + 1): what a FedSGD client sends.

    Raises
    ------
    ValueError
        If ``tokens`` is not (B, T + 1) with B >= 1 and T >= 1.
    """
    if tokens.dim() != 2 or tokens.shape[0] < 1 or tokens.shape[1] < 2:
        raise ValueError(f"tokens must be (B, T + 1) with T >= 1, got {tuple(tokens.shape)}")
    names, params = zip(*_params(model), strict=True)
    _, loss = model(tokens[:, :-1], tokens[:, 1:])
    grads = torch.autograd.grad(loss, params)
    return {n: g.detach().clone() for n, g in zip(names, grads, strict=True)}


def dp_gradient(
    model: torch.nn.Module,
    tokens: torch.Tensor,
    max_grad_norm: float,
    noise_multiplier: float,
    generator: torch.Generator,
) -> dict[str, torch.Tensor]:
    """One DP-SGD step's released gradient (Abadi et al. 2016): per-example clipping, Gaussian noise, mean.

    Per-example gradients are computed one example at a time (the batch is
    tiny). The noise's generator is the caller's: this simulates what the
    observer receives, it does not protect anything.
    """
    total: dict[str, torch.Tensor] | None = None
    for i in range(tokens.shape[0]):
        g = batch_gradient(model, tokens[i : i + 1])
        norm = torch.sqrt(sum((t.double() ** 2).sum() for t in g.values())).item()
        factor = min(1.0, max_grad_norm / (norm + 1e-12))
        total = (
            {n: t * factor for n, t in g.items()} if total is None else {n: total[n] + t * factor for n, t in g.items()}
        )
    assert total is not None
    B = tokens.shape[0]
    return {
        n: (t + noise_multiplier * max_grad_norm * torch.randn(t.shape, generator=generator)) / B
        for n, t in total.items()
    }


def infer_bag(gradients: dict[str, torch.Tensor], names: Sequence[str] = ("wte.weight", "lm_head.weight")) -> list[int]:
    """Token ids the observed gradient gives away: rows above the Otsu cut of each token-indexed tensor, united.

    Raises
    ------
    ValueError
        If none of ``names`` is in ``gradients``.
    """
    bag: set[int] = set()
    found = False
    for n in names:
        if n not in gradients:
            continue
        found = True
        s = row_scores(gradients[n].detach().double().cpu().numpy())
        bag.update(np.flatnonzero(s > otsu_threshold(s)).tolist())
    if not found:
        raise ValueError(f"the gradient has none of the token-indexed tensors {list(names)}")
    return sorted(bag)


def _soft_forward(model: torch.nn.Module, emb: torch.Tensor) -> torch.Tensor:
    """The GPT of :mod:`xcloud.models.tiny_gpt` from input embeddings (B, T, C) to logits (B, T, V)."""
    B, T, _ = emb.shape
    pos = torch.arange(T, device=emb.device).expand(B, T)  # (B, T)
    x = model.drop(emb + model.wpe(pos))  # (B, T, C)
    for block in model.h:
        x = block(x)
    return model.lm_head(model.ln_f(x))  # (B, T, V)


def invert(
    model: torch.nn.Module,
    gradients: dict[str, torch.Tensor],
    batch_size: int,
    length: int,
    *,
    bag: Sequence[int] | None = None,
    first_token: int | None = None,
    steps: int = 300,
    lr: float = 0.1,
    restarts: int = 2,
    seed: int = 0,
    time_limit_s: float = 60.0,
) -> tuple[np.ndarray, float, int]:
    """Reconstructs a batch of ``batch_size`` sequences of ``length + 1`` tokens from their gradient.

    Parameters
    ----------
    model : GPT
        The model the gradient was taken on (its weights are not changed).
    gradients : dict of str to torch.Tensor
        The observed gradient, by parameter name (all trainable parameters).
    batch_size, length : int
        The batch's shape (B, T + 1) is assumed known (it travels in metadata).
    bag : sequence of int, optional
        Alphabet of the optimisation; default :func:`infer_bag` of the gradient.
    first_token : int, optional
        Fix position 0 (every note starts with ``<bos>``: public format knowledge).
    steps, lr, restarts, seed, time_limit_s
        Adam steps per restart, its learning rate, random restarts, the seed
        of their initialisation, and a wall-time bound over all of them.

    Returns
    -------
    (tokens, distance, steps_taken)
        int64 (B, T + 1) reconstruction, its normalised gradient distance, steps run.

    Raises
    ------
    ValueError
        For a gradient missing a parameter, an empty bag, or bad sizes.
    """
    if batch_size < 1 or length < 1 or steps < 1 or restarts < 1:
        raise ValueError("batch_size, length, steps and restarts must be positive")
    named = _params(model)
    missing = [n for n, _ in named if n not in gradients]
    if missing:
        raise ValueError(f"the gradient lacks parameters {missing[:3]}")
    params = [p for _, p in named]
    target = [gradients[n].detach() for n, _ in named]
    scale = [1.0 / (float((t.double() ** 2).sum()) + 1e-30) for t in target]
    alphabet = list(bag) if bag is not None else infer_bag(gradients)
    if not alphabet:
        raise ValueError("the bag of words is empty: nothing to reconstruct from")
    ids = torch.as_tensor(alphabet, dtype=torch.long)
    V = model.lm_head.weight.shape[0]
    K = ids.numel()
    was_training = model.training
    model.eval()  # no dropout; the tiny GPT has no other train-mode behaviour
    g = torch.Generator().manual_seed(int(seed) % (1 << 63))
    best: tuple[float, torch.Tensor] | None = None
    taken = 0
    t0 = time.perf_counter()
    # The fused CPU attention kernels have no second derivative; the math one does.
    try:
        with sdpa_kernel(SDPBackend.MATH):
            for _ in range(restarts):
                z = (0.1 * torch.randn((batch_size, length + 1, K), generator=g)).requires_grad_(True)
                opt = torch.optim.Adam([z], lr=lr)
                dist = float("inf")
                for _ in range(steps):
                    if time.perf_counter() - t0 > time_limit_s:
                        break
                    probs = F.softmax(z, dim=-1)  # (B, T+1, K)
                    if first_token is not None:
                        fixed = torch.zeros_like(probs)
                        fixed[:, 0, :] = (ids == first_token).float() if (ids == first_token).any() else 1.0 / K
                        probs = torch.cat([fixed[:, :1], probs[:, 1:]], dim=1)
                    full = torch.zeros((batch_size, length + 1, V)).index_add(2, ids, probs)  # (B, T+1, V)
                    emb = full[:, :-1] @ model.wte.weight  # (B, T, C)
                    logits = _soft_forward(model, emb)  # (B, T, V)
                    loss = -(full[:, 1:] * F.log_softmax(logits.float(), dim=-1)).sum(-1).mean()
                    dummy = torch.autograd.grad(loss, params, create_graph=True)
                    d = sum(((a - b) ** 2).sum() * s for a, b, s in zip(dummy, target, scale, strict=True))
                    opt.zero_grad()
                    d.backward()
                    opt.step()
                    dist = float(d.detach())
                    taken += 1
                with torch.no_grad():
                    rec = ids[z.argmax(-1)]  # (B, T+1)
                    if first_token is not None:
                        rec[:, 0] = first_token
                if best is None or dist < best[0]:
                    best = (dist, rec)
    finally:
        model.train(was_training)
        for p in params:
            p.grad = None
    assert best is not None
    return best[1].numpy(), best[0], taken


def _lcs(a: Sequence[int], b: Sequence[int]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def _f1(overlap: float, n_pred: int, n_true: int) -> float:
    if overlap == 0 or n_pred == 0 or n_true == 0:
        return 0.0
    p, r = overlap / n_pred, overlap / n_true
    return 2 * p * r / (p + r)


def rouge_1(pred: Sequence[int], true: Sequence[int]) -> float:
    """ROUGE-1 F1: clipped unigram overlap of two token sequences."""
    from collections import Counter

    cp, ct = Counter(pred), Counter(true)
    return _f1(sum((cp & ct).values()), len(pred), len(true))


def rouge_l(pred: Sequence[int], true: Sequence[int]) -> float:
    """ROUGE-L F1: longest common subsequence of two token sequences."""
    return _f1(_lcs(pred, true), len(pred), len(true))


def score_reconstruction(
    recovered: np.ndarray, truth: np.ndarray, skip_first: bool = True
) -> tuple[float, float, float]:
    """(token accuracy, ROUGE-1, ROUGE-L) of a reconstruction, under the best matching of its sequences.

    Raises
    ------
    ValueError
        If the shapes differ.
    """
    r, t = np.asarray(recovered), np.asarray(truth)
    if r.shape != t.shape or r.ndim != 2:
        raise ValueError(f"recovered {r.shape} and true {t.shape} batches differ in shape")
    a = 1 if skip_first else 0
    best = (-1.0, 0.0, 0.0)
    for perm in itertools.permutations(range(r.shape[0])):
        rp = r[list(perm)]
        acc = float((rp[:, a:] == t[:, a:]).mean())
        r1 = float(np.mean([rouge_1(rp[i, a:].tolist(), t[i, a:].tolist()) for i in range(r.shape[0])]))
        rl = float(np.mean([rouge_l(rp[i, a:].tolist(), t[i, a:].tolist()) for i in range(r.shape[0])]))
        if acc > best[0]:
            best = (acc, r1, rl)
    return best
