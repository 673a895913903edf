"""Optional: a local Hugging Face causal LM with LoRA adapters, federating only the adapters.

LoRA (Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models", ICLR
2022) freezes the pretrained weights W and trains a low-rank update
``W + (alpha / r) B A``. Only A and B travel in a federated round, a small
fraction of the model, so encrypting all of it is cheap.

Needs the ``hf`` extra (``transformers`` and ``peft``); both are imported only
when :func:`load_causal_lm_with_lora` is called. Nothing is downloaded: the
model is read from a local directory with ``local_files_only=True``.

The returned :class:`LoraCausalLM` has the :class:`~xcloud.models.GPT` calling
convention, ``model(idx, targets) -> (logits, loss)`` with targets already
shifted by one and -100 at padding, so :func:`~xcloud.models.train_local` and
:func:`~xcloud.models.evaluate` work on it unchanged.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from xcloud.models.tiny_gpt import IGNORE_INDEX

__all__ = ["LoraCausalLM", "load_causal_lm_with_lora", "load_trainable_state", "trainable_state"]

_MISSING_EXTRA = (
    "the Hugging Face LoRA path needs the optional packages transformers and peft (pip install 'xcloud[hf]')"
)


_CHECKPOINTING_DEPRECATION = r"`?is_gradient_checkpointing`? is deprecated"


class LoraCausalLM(nn.Module):
    """A peft-wrapped causal LM behind the ``(idx, targets) -> (logits, loss)`` interface.

    Parameters
    ----------
    peft_model : nn.Module
        A ``peft.PeftModel`` around a ``transformers`` causal LM.

    Attributes
    ----------
    peft_model : nn.Module
        The wrapped model (use it for ``generate``, ``save_pretrained``, ...).
    """

    def __init__(self, peft_model: nn.Module) -> None:
        super().__init__()
        self.peft_model = peft_model

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Computes logits (B, T, V) and, given targets (B, T), the mean cross-entropy over non-ignored targets."""
        attention_mask = torch.ones_like(idx)  # (B, T); padding is only ever on the right, so causal masking suffices
        logits = self.peft_model(input_ids=idx, attention_mask=attention_mask).logits  # (B, T, V)
        if targets is None:
            return logits, None
        B, T, V = logits.shape
        loss = F.cross_entropy(logits.reshape(B * T, V).float(), targets.reshape(B * T), ignore_index=IGNORE_INDEX)
        return logits, loss


def load_causal_lm_with_lora(
    path: str | os.PathLike[str],
    r: int = 8,
    alpha: int = 16,
    target_modules: Sequence[str] | None = None,
    dropout: float = 0.0,
) -> LoraCausalLM:
    """Loads a local causal-LM directory and wraps it with LoRA adapters.

    Parameters
    ----------
    path : str or os.PathLike
        A directory written by ``save_pretrained`` (config and weights). Never
        downloaded: ``local_files_only=True``.
    r : int
        LoRA rank.
    alpha : int
        LoRA scaling numerator (the update is scaled by ``alpha / r``).
    target_modules : sequence of str, optional
        Names of the modules to adapt; None lets peft pick its default for the
        architecture (``c_attn`` for GPT-2, the query/value projections for
        Llama-like models).
    dropout : float
        LoRA dropout (0 keeps training deterministic).

    Returns
    -------
    LoraCausalLM
        Only the adapter parameters require gradients.

    Raises
    ------
    ImportError
        If transformers or peft is not installed.
    FileNotFoundError
        If ``path`` is not a directory.
    ValueError
        If ``r`` or ``alpha`` is not positive, or peft has no default target
        modules for the architecture and none were given.
    """
    if r <= 0 or alpha <= 0:
        raise ValueError(f"r and alpha must be positive, got r={r}, alpha={alpha}")
    if not os.path.isdir(path):
        raise FileNotFoundError(f"no model directory at {os.fspath(path)!r}")
    try:
        import peft
        import transformers
    except ImportError as e:
        raise ImportError(_MISSING_EXTRA) from e

    base = transformers.AutoModelForCausalLM.from_pretrained(os.fspath(path), local_files_only=True)
    config = peft.LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(target_modules) if target_modules is not None else None,
        fan_in_fan_out=_uses_conv1d(base, target_modules),
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():
        # peft probes ``model.is_gradient_checkpointing``, which transformers 5
        # deprecates in favour of ``is_activation_checkpointing``: a version skew
        # between the two packages, nothing the caller can act on.
        warnings.filterwarnings("ignore", message=_CHECKPOINTING_DEPRECATION, category=FutureWarning)
        model = peft.get_peft_model(base, config)
    return LoraCausalLM(model)


def _uses_conv1d(model: nn.Module, target_modules: Sequence[str] | None) -> bool:
    """Whether the adapted layers are GPT-2-style ``Conv1D`` (weights stored transposed).

    peft needs ``fan_in_fan_out=True`` for them; telling it up front avoids its
    correcting warning.
    """
    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:  # pragma: no cover - layout of another transformers version
        return False
    names = set(target_modules) if target_modules is not None else {"c_attn"}
    return any(isinstance(m, Conv1D) and n.rsplit(".", 1)[-1] in names for n, m in model.named_modules())


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Returns detached copies of the parameters that require gradients, by name.

    For a :class:`LoraCausalLM` these are the LoRA adapters only; for a plain
    model, all its parameters. The order is ``named_parameters`` order, so the
    federated layer can flatten it deterministically.
    """
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def load_trainable_state(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Copies ``state`` (from :func:`trainable_state`) into the trainable parameters in place.

    Raises
    ------
    KeyError
        If ``state`` lacks a trainable parameter or names one that is not.
    ValueError
        If a tensor has the wrong shape.
    """
    params: dict[str, Any] = {name: p for name, p in model.named_parameters() if p.requires_grad}
    missing = params.keys() - state.keys()
    unexpected = state.keys() - params.keys()
    if missing or unexpected:
        raise KeyError(f"trainable state mismatch: missing {sorted(missing)}, unexpected {sorted(unexpected)}")
    with torch.no_grad():
        for name, p in params.items():
            value = torch.as_tensor(state[name])
            if value.shape != p.shape:
                raise ValueError(f"{name}: shape {tuple(value.shape)} does not match {tuple(p.shape)}")
            p.copy_(value.to(device=p.device, dtype=p.dtype))
