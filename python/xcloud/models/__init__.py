"""Models and local training: the tiny GPT, its training loop, and the optional Hugging Face LoRA path.

``hf_lora`` imports transformers and peft only when a model is loaded, so this
package needs neither.
"""

from xcloud.models.hf_lora import LoraCausalLM, load_causal_lm_with_lora, load_trainable_state, trainable_state
from xcloud.models.tiny_gpt import GPT, IGNORE_INDEX, SENSITIVE_PARAMETERS, GPTConfig
from xcloud.models.training import (
    TokenDataset,
    TrainConfig,
    TrainStats,
    collate,
    evaluate,
    perplexity,
    resolve_device,
    train_local,
)

__all__ = [
    "GPT",
    "GPTConfig",
    "IGNORE_INDEX",
    "LoraCausalLM",
    "SENSITIVE_PARAMETERS",
    "TokenDataset",
    "TrainConfig",
    "TrainStats",
    "collate",
    "evaluate",
    "load_causal_lm_with_lora",
    "load_trainable_state",
    "perplexity",
    "resolve_device",
    "train_local",
    "trainable_state",
]
