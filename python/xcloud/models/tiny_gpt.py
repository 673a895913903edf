"""A small decoder-only transformer (GPT) sized for federated training on CPU.

The architecture follows GPT-2 as written in nanoGPT (Karpathy, 2022): learned
token and position embeddings, pre-LayerNorm blocks of causal self-attention
and an MLP, a final LayerNorm and a linear output head. Two choices differ and
both serve xcloud:

- The token embedding ``wte`` and the output head ``lm_head`` are *untied*.
  They are the parameters whose updates leak the training tokens (a non-zero
  row of the embedding update names a token the client saw), so the hybrid
  strategy always encrypts them (DESIGN.md, equation 4). Keeping them separate
  tensors makes that mask two whole tensors, :data:`SENSITIVE_PARAMETERS`.
- Every parameter lives in a plain ``nn.Linear``, ``nn.Embedding`` or
  ``nn.LayerNorm`` and the model has no buffers, so Opacus computes per-example
  gradients for record-level DP-SGD with its stock grad samplers. Attention
  itself is the parameter-free ``F.scaled_dot_product_attention``.

With the defaults (2 layers, width 128, 4 heads, context 64) the model has
``396,800 + 64 * 128 + 2 * 128 * vocab_size`` parameters: 470,528 for a
256-token vocabulary, 667,136 for 1,024 and 916,992 for 2,000 (the default
run's word vocabulary cap); see :meth:`GPT.num_parameters`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["GPT", "GPTConfig", "IGNORE_INDEX", "SENSITIVE_PARAMETERS"]

#: Target value that the loss ignores (padding), as in ``F.cross_entropy``.
IGNORE_INDEX = -100

#: ``state_dict`` names of the parameters that leak training tokens; always encrypted.
SENSITIVE_PARAMETERS: tuple[str, ...] = ("wte.weight", "lm_head.weight")


@dataclass
class GPTConfig:
    """Hyperparameters of :class:`GPT`.

    The defaults train a federated round (20 steps of 16 sequences of 64 tokens)
    in about a second per client on 2 CPU cores, about three with DP-SGD.
    """

    vocab_size: int  # number of token ids, padding id included
    block_size: int = 64  # longest context in tokens (size of the position embedding)
    n_layer: int = 2  # transformer blocks
    n_head: int = 4  # attention heads per block; must divide n_embd
    n_embd: int = 128  # width of the residual stream
    dropout: float = 0.0  # on embeddings, attention and residuals; 0 keeps training deterministic

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"GPTConfig.{name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head != 0:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which position t attends to positions <= t."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)  # query, key, value projections at once
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)  # output projection
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.size()  # batch, time, channels (n_embd)
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)  # each (B, T, C)
        hs = C // self.n_head
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True
        )  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C): heads side by side
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """Position-wise feed-forward network, 4x wide with GELU."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.gelu(self.c_fc(x))  # (B, T, 4C)
        return self.dropout(self.c_proj(x))  # (B, T, C)


class Block(nn.Module):
    """Pre-LayerNorm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))  # (B, T, C)
        return x + self.mlp(self.ln_2(x))  # (B, T, C)


class GPT(nn.Module):
    """Decoder-only language model with an untied token embedding and output head.

    Parameters
    ----------
    config : GPTConfig
        Sizes. Weights are drawn from the global torch RNG (seed it with
        ``torch.manual_seed`` for a reproducible initialisation).

    Notes
    -----
    ``state_dict`` keys are stable and flat (``wte.weight``, ``wpe.weight``,
    ``h.0.attn.c_attn.weight``, ..., ``ln_f.bias``, ``lm_head.weight``); the
    federated layer flattens parameters in that order.
    """

    #: ``state_dict`` names of the parameters that leak training tokens.
    SENSITIVE_PARAMETERS: tuple[str, ...] = SENSITIVE_PARAMETERS

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)  # token embedding (sensitive)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)  # learned position embedding
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)  # output head (sensitive)
        self.apply(self._init_weights)
        # GPT-2: scale the residual projections by 1/sqrt(2 * n_layer) so the
        # residual stream's variance does not grow with depth.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    @classmethod
    def sensitive_parameter_names(cls) -> tuple[str, ...]:
        """Returns the ``state_dict`` names that must always be encrypted.

        Returns
        -------
        tuple of str
            ``("wte.weight", "lm_head.weight")``.
        """
        return cls.SENSITIVE_PARAMETERS

    def num_parameters(self, exclude_position_embedding: bool = False) -> int:
        """Returns the number of parameters.

        Parameters
        ----------
        exclude_position_embedding : bool
            Leave out ``wpe`` (the usual way to quote a model's size).
        """
        n = sum(p.numel() for p in self.parameters())
        if exclude_position_embedding:
            n -= self.wpe.weight.numel()
        return n

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Computes next-token logits and, given targets, the mean cross-entropy.

        Parameters
        ----------
        idx : torch.Tensor
            Token ids, int64 of shape (B, T) with T <= block_size.
        targets : torch.Tensor, optional
            Next-token ids of shape (B, T); positions equal to ``IGNORE_INDEX``
            (-100, padding) do not count.

        Returns
        -------
        logits : torch.Tensor
            Shape (B, T, vocab_size).
        loss : torch.Tensor or None
            Mean cross-entropy over the non-ignored targets (a scalar), or None
            without targets.

        Raises
        ------
        ValueError
            If ``idx`` is not 2-D or longer than ``block_size``, or ``targets``
            has another shape.
        """
        if idx.dim() != 2:
            raise ValueError(f"idx must have shape (B, T), got {tuple(idx.shape)}")
        B, T = idx.size()
        if T > self.config.block_size:
            raise ValueError(f"sequence of length {T} exceeds block_size {self.config.block_size}")
        # Positions carry the batch dimension so that Opacus sees one
        # position-embedding gradient per example.
        pos = torch.arange(T, dtype=torch.long, device=idx.device).expand(B, T)  # (B, T)
        x = self.drop(self.wte(idx) + self.wpe(pos))  # (B, T, C)
        for block in self.h:
            x = block(x)  # (B, T, C)
        x = self.ln_f(x)  # (B, T, C)
        logits = self.lm_head(x)  # (B, T, vocab_size)
        if targets is None:
            return logits, None
        if targets.shape != idx.shape:
            raise ValueError(f"targets must have shape {tuple(idx.shape)}, got {tuple(targets.shape)}")
        loss = F.cross_entropy(logits.reshape(B * T, -1).float(), targets.reshape(B * T), ignore_index=IGNORE_INDEX)
        return logits, loss

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Samples ``max_new_tokens`` continuations of ``idx`` (B, T) -> (B, T + max_new_tokens).

        Parameters
        ----------
        idx : torch.Tensor
            Prompt token ids of shape (B, T); the context is cropped to the last
            ``block_size`` tokens.
        max_new_tokens : int
        temperature : float
            Softmax temperature; must be positive.
        top_k : int, optional
            Sample only among the ``top_k`` most likely tokens.
        generator : torch.Generator, optional
            Source of randomness, for reproducible samples.
        """
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        for _ in range(max_new_tokens):
            context = idx[:, -self.config.block_size :]  # (B, <=block_size)
            logits, _ = self(context)
            logits = logits[:, -1, :].float() / temperature  # (B, vocab_size)
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]  # (B, 1)
                logits = logits.masked_fill(logits < kth, float("-inf"))
            probs = F.softmax(logits, dim=-1)  # (B, vocab_size)
            nxt = torch.multinomial(probs, num_samples=1, generator=generator)  # (B, 1)
            idx = torch.cat([idx, nxt], dim=1)
        return idx
