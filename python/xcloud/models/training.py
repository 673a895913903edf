"""Local training and evaluation of a language model on one client's data.

``train_local`` runs one federated round of local work: exactly
``TrainConfig.local_steps`` AdamW steps from the model's current weights, with
a fresh optimizer each call (every round starts from new global weights, so
optimizer moments from the previous round would point the wrong way). Batches
are drawn from a ``torch.Generator`` seeded with the caller's ``seed``, and
dropout draws from a forked global RNG seeded the same way, so on CPU the same
weights, data and seed give bit-identical results.

Datasets
--------
A dataset is anything with ``len()`` and integer indexing (a
``torch.utils.data.Dataset``, a list, an int64 tensor of shape (N, T + 1))
whose items are either

- one int64 tensor of T + 1 token ids: the input is ``item[:-1]`` and the
  targets are ``item[1:]``, or
- a pair ``(x, y)`` of int64 tensors of shape (T,): input ids and next-token
  targets, with ``IGNORE_INDEX`` (-100) at padding positions.

Items of different lengths are right-padded within a batch (inputs with 0,
targets with -100). The model is called as ``model(x, y) -> (logits, loss)``
(the :class:`~xcloud.models.GPT` interface).

Drift correction
----------------
With a :class:`GradientCorrection` (SCAFFOLD, Karimireddy et al. 2020), every
step's gradient is recorded and then shifted by a fixed per-parameter offset
(the federation's control variate minus the client's own, ``c - c_i``) before
AdamW sees it. Under record-level DP the shift is applied to the
clipped and noised gradient Opacus hands the optimizer, so it is
post-processing and costs no privacy. The recorded mean gradient (before the
shift) along the local trajectory is the client's next control variate (for
plain SGD this is exactly SCAFFOLD's option II update of ``c_i``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import torch
import torch.nn as nn
import torch.nn.functional as F

from xcloud.models.tiny_gpt import IGNORE_INDEX

if TYPE_CHECKING:
    from xcloud.privacy.record_dp import RecordDP

__all__ = [
    "GradientCorrection",
    "TokenDataset",
    "TrainConfig",
    "TrainStats",
    "collate",
    "evaluate",
    "perplexity",
    "resolve_device",
    "train_local",
]


class TokenDataset(Protocol):
    """What ``train_local`` and ``evaluate`` need of a dataset (see the module docstring)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...


@dataclass
class TrainConfig:
    """Local-training settings of one round."""

    lr: float = 3e-3  # AdamW learning rate
    local_steps: int = 20  # optimizer steps per train_local call (one federated round)
    batch_size: int = 16  # sequences per step without DP (DP-SGD samples RecordDP.expected_batch_size)
    grad_clip: float = 1.0  # global gradient-norm clip without DP (0 disables); DP clips per example instead
    weight_decay: float = 0.0  # AdamW decoupled weight decay
    device: str = "auto"  # "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
    amp: bool = True  # mixed precision on CUDA: bf16 if supported, else fp16 with GradScaler; never on CPU

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not isinstance(self.local_steps, int) or self.local_steps <= 0:
            raise ValueError(f"local_steps must be a positive integer, got {self.local_steps!r}")
        if not isinstance(self.batch_size, int) or self.batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if self.grad_clip < 0 or self.weight_decay < 0:
            raise ValueError("grad_clip and weight_decay must be non-negative")


@dataclass
class TrainStats:
    """What one call of :func:`train_local` did.

    Attributes
    ----------
    mean_loss : float
        Mean over the steps of the batch's mean token cross-entropy (before each
        step). Not privatised, even under DP.
    steps : int
        Optimizer steps taken (``TrainConfig.local_steps``).
    examples : int
        Sequences processed over all steps (under DP, the Poisson batch sizes' sum).
    seconds : float
        Wall time of the call.
    epsilon : float or None
        Record-level epsilon spent so far by this client (at the RecordDP's
        delta), None without DP.
    """

    mean_loss: float
    steps: int
    examples: int
    seconds: float
    epsilon: float | None


@dataclass
class GradientCorrection:
    """SCAFFOLD's gradient shift for one call of :func:`train_local`, and what it measured.

    Attributes
    ----------
    offset : dict[str, torch.Tensor] or None
        Per trainable parameter name (``named_parameters`` names), the value added
        to each step's gradient (``c - c_i``); None for no shift (the first
        round, before any control variate exists).
    mean_grad : dict[str, torch.Tensor]
        Filled by :func:`train_local`: the mean over its steps of the gradient the
        optimizer was given, before the shift (under DP: clipped and noised), on
        the CPU in float32. Names of parameters that never had a gradient map to zeros.
    """

    offset: dict[str, torch.Tensor] | None = None
    mean_grad: dict[str, torch.Tensor] = field(default_factory=dict)


class _CorrectedAdamW(torch.optim.AdamW):
    """AdamW whose ``step`` records each gradient and adds ``correction.offset`` to it first.

    Opacus calls the wrapped optimizer's ``step`` after it clipped and noised
    the gradients, so the record and the shift see the privatised gradient.
    """

    def __init__(
        self, named: list[tuple[str, nn.Parameter]], lr: float, weight_decay: float, correction: GradientCorrection
    ) -> None:
        super().__init__([p for _, p in named], lr=lr, weight_decay=weight_decay)
        self._named = named
        self._correction = correction
        self._sums = [torch.zeros_like(p, dtype=torch.float32) for _, p in named]
        self._offsets: list[torch.Tensor | None] = [None] * len(named)
        if correction.offset is not None:
            missing = [n for n, _ in named if n not in correction.offset]
            if missing:
                raise ValueError(f"the gradient correction lacks parameters {missing[:3]}")
            self._offsets = [correction.offset[n].to(device=p.device, dtype=p.dtype) for n, p in named]
        self._count = 0

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        for (_, p), acc, off in zip(self._named, self._sums, self._offsets, strict=True):
            if p.grad is None:
                continue
            acc.add_(p.grad.float())
            if off is not None:
                p.grad.add_(off)
        self._count += 1
        return super().step(closure)

    def finish(self) -> None:
        """Writes the mean recorded gradient into the correction's ``mean_grad``."""
        n = max(self._count, 1)
        self._correction.mean_grad = {
            name: (acc / n).cpu() for (name, _), acc in zip(self._named, self._sums, strict=True)
        }


def resolve_device(name: str = "auto") -> torch.device:
    """Turns a device name into a ``torch.device``.

    Parameters
    ----------
    name : str
        ``"auto"`` picks CUDA when available, else CPU; anything else is passed
        to ``torch.device``.

    Raises
    ------
    ValueError
        If CUDA is asked for but not available, or the name is not a device.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"unknown device {name!r}: {e}") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return device


def collate(dataset: TokenDataset, indices: Sequence[int] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Builds a batch (x, y), each int64 of shape (B, T), from dataset items.

    Raises
    ------
    ValueError
        If an item is neither a 1-D token tensor nor an (x, y) pair of equal length.
    """
    xs: list[torch.Tensor] = []
    ys: list[torch.Tensor] = []
    for i in indices:
        item = dataset[int(i)]
        if isinstance(item, (tuple, list)) and len(item) == 2:
            x, y = torch.as_tensor(item[0], dtype=torch.long), torch.as_tensor(item[1], dtype=torch.long)
        else:
            t = torch.as_tensor(item, dtype=torch.long)
            if t.dim() != 1 or t.numel() < 2:
                raise ValueError(
                    f"dataset item {int(i)} must be 1-D with at least 2 tokens, got shape {tuple(t.shape)}"
                )
            x, y = t[:-1], t[1:]
        if x.dim() != 1 or x.shape != y.shape:
            raise ValueError(f"dataset item {int(i)}: x and y must be 1-D of equal length")
        xs.append(x)
        ys.append(y)
    if not xs:
        return torch.zeros((0, 1), dtype=torch.long), torch.full((0, 1), IGNORE_INDEX, dtype=torch.long)
    T = max(x.numel() for x in xs)
    xb = torch.zeros((len(xs), T), dtype=torch.long)  # (B, T), padded with token 0
    yb = torch.full((len(xs), T), IGNORE_INDEX, dtype=torch.long)  # (B, T), padding ignored
    for r, (x, y) in enumerate(zip(xs, ys, strict=True)):
        xb[r, : x.numel()] = x
        yb[r, : y.numel()] = y
    return xb, yb


def _token_losses(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-token cross-entropy (B, T); 0 where the target is ignored."""
    B, T, V = logits.shape
    return F.cross_entropy(
        logits.reshape(B * T, V).float(), y.reshape(B * T), ignore_index=IGNORE_INDEX, reduction="none"
    ).view(B, T)


def _amp_settings(cfg: TrainConfig, device: torch.device, dp: RecordDP | None) -> tuple[bool, torch.dtype]:
    # Mixed precision only on CUDA and only without DP: Opacus's per-example
    # gradients do not compose with GradScaler's loss scaling, and fp32 keeps
    # the clipping exact.
    if not (cfg.amp and device.type == "cuda" and dp is None):
        return False, torch.float32
    return True, (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)


def train_local(
    model: nn.Module,
    dataset: TokenDataset,
    cfg: TrainConfig,
    *,
    seed: int,
    dp: RecordDP | None = None,
    correction: GradientCorrection | None = None,
) -> TrainStats:
    """Trains ``model`` in place for exactly ``cfg.local_steps`` optimizer steps.

    Parameters
    ----------
    model : nn.Module
        Called as ``model(x, y) -> (logits, loss)``. It is moved to the training
        device and back to where it was.
    dataset : TokenDataset
        The client's training records.
    cfg : TrainConfig
    seed : int
        Seeds batch sampling and dropout. Under ``dp``, the Poisson batches
        and the noise come from OS entropy instead, or, with
        ``dp.config.noise_seed`` set, from hashes of it and ``seed``.
    dp : RecordDP, optional
        Record-level DP-SGD: Poisson batches of expected size
        ``dp.expected_batch_size``, per-example clipping and noise through
        Opacus, each step accounted. ``cfg.grad_clip`` and AMP are then unused.
    correction : GradientCorrection, optional
        SCAFFOLD drift correction (see the module docstring); its ``mean_grad``
        is filled when the call returns.

    Returns
    -------
    TrainStats

    Raises
    ------
    ValueError
        If the dataset is empty, or its size differs from the one ``dp`` was
        calibrated for, or ``correction`` lacks a trainable parameter.
    """
    n = len(dataset)
    if n == 0:
        raise ValueError("cannot train on an empty dataset")
    t0 = time.perf_counter()
    device = resolve_device(cfg.device)
    home = next(model.parameters()).device
    was_training = model.training
    model.to(device).train()
    use_amp, amp_dtype = _amp_settings(cfg, device, dp)
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    optimizer: torch.optim.AdamW
    if correction is None:
        optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        optimizer = _CorrectedAdamW(named, cfg.lr, cfg.weight_decay, correction)
    seed63 = int(seed) % (1 << 63)  # any Python int; torch seeds are 64-bit
    sampler = torch.Generator().manual_seed(seed63)  # CPU stream for batch indices
    losses: list[float] = []
    examples = 0
    devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed63)  # dropout; the caller's global RNG state is restored afterwards
            if dp is None:
                batches = _epoch_batches(n, cfg.batch_size, cfg.local_steps, sampler)
                scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
                for idx in batches:
                    x, y = (t.to(device, non_blocking=True) for t in collate(dataset, idx))
                    with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=use_amp):
                        _, loss = model(x, y)
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    if cfg.grad_clip > 0:
                        scaler.unscale_(optimizer)
                        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                    scaler.step(optimizer)
                    scaler.update()
                    losses.append(float(loss.detach()))
                    examples += len(idx)
            else:
                # Not the batch stream seeded by ``seed`` above: under DP the batches must not be
                # reproducible from the run's public seed (RecordDP.sampling_source).
                dp_sampler = dp.sampling_source(seed)
                with dp.private(model, optimizer, noise=dp.noise_source(seed)) as dp_opt:
                    for _ in range(cfg.local_steps):
                        idx = dp.sample(n, dp_sampler)
                        dp_opt.zero_grad(set_to_none=True)
                        if idx.numel() == 0:
                            dp.empty_step(dp_opt)
                            continue
                        x, y = (t.to(device, non_blocking=True) for t in collate(dataset, idx))
                        logits, _ = model(x)  # (b, T, V)
                        tok = _token_losses(logits, y)  # (b, T)
                        counts = (y != IGNORE_INDEX).sum(dim=1)  # (b,)
                        per_example = tok.sum(dim=1) / counts.clamp(min=1)  # (b,)
                        per_example.sum().backward()  # Opacus: sum of per-example losses
                        dp_opt.step()
                        losses.append(float(tok.detach().sum() / counts.sum().clamp(min=1)))
                        examples += idx.numel()
    finally:
        optimizer.zero_grad(set_to_none=True)
        model.to(home).train(was_training)
    if isinstance(optimizer, _CorrectedAdamW):
        optimizer.finish()
    return TrainStats(
        mean_loss=sum(losses) / len(losses) if losses else float("nan"),
        steps=cfg.local_steps,
        examples=examples,
        seconds=time.perf_counter() - t0,
        epsilon=dp.epsilon() if dp is not None else None,
    )


def _epoch_batches(n: int, batch_size: int, steps: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Batches of shuffled epochs: without replacement within an epoch, reshuffled after.

    Each batch has ``min(batch_size, n)`` distinct indices.
    """
    b = min(batch_size, n)
    batches: list[torch.Tensor] = []
    perm = torch.randperm(n, generator=generator)
    pos = 0
    for _ in range(steps):
        if pos + b > n:
            perm = torch.randperm(n, generator=generator)
            pos = 0
        batches.append(perm[pos : pos + b])
        pos += b
    return batches


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset: TokenDataset,
    batch_size: int = 64,
    device: torch.device | str | None = None,
) -> float:
    """Returns the mean token cross-entropy (nats) over all non-padding targets.

    Every target counts once (a token-weighted mean over the whole dataset,
    not a mean of per-batch means); perplexity is ``exp`` of the result.

    Parameters
    ----------
    model : nn.Module
        Called as ``model(x) -> (logits, _)``; its train/eval mode is restored.
    dataset : TokenDataset
    batch_size : int
    device : torch.device or str, optional
        Defaults to the device the model is on.

    Raises
    ------
    ValueError
        If the dataset has no non-padding target.
    """
    home = next(model.parameters()).device
    device = home if device is None else (resolve_device(device) if isinstance(device, str) else device)
    was_training = model.training
    model.to(device).eval()
    total, count = 0.0, 0
    try:
        for start in range(0, len(dataset), batch_size):
            idx = range(start, min(start + batch_size, len(dataset)))
            x, y = (t.to(device) for t in collate(dataset, idx))
            logits, _ = model(x)  # (B, T, V)
            total += float(_token_losses(logits, y).sum(dtype=torch.float64))
            count += int((y != IGNORE_INDEX).sum())
    finally:
        model.to(home).train(was_training)
    if count == 0:
        raise ValueError("the dataset has no non-padding target to evaluate")
    return total / count


def perplexity(mean_cross_entropy: float) -> float:
    """Returns ``exp(mean_cross_entropy)``, the perplexity of a mean token cross-entropy."""
    return math.exp(mean_cross_entropy)
