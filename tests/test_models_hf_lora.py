"""Optional Hugging Face + LoRA path, on a tiny randomly initialised GPT-2 built here (never a download)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from xcloud.models import (
    TrainConfig,
    evaluate,
    load_causal_lm_with_lora,
    load_trainable_state,
    train_local,
    trainable_state,
)

HAVE_HF = all(importlib.util.find_spec(name) is not None for name in ("transformers", "peft"))
needs_hf = pytest.mark.skipif(
    not HAVE_HF, reason="optional extra not installed: pip install transformers peft (xcloud[hf]) to run the LoRA tests"
)
VOCAB = 100


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-layer GPT-2 with random weights, saved with save_pretrained."""
    if not HAVE_HF:
        pytest.skip("optional extra not installed: pip install transformers peft (xcloud[hf])")
    import transformers

    config = transformers.GPT2Config(
        n_layer=1, n_head=2, n_embd=32, vocab_size=VOCAB, n_positions=32, bos_token_id=0, eos_token_id=0
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-gpt2")
    transformers.GPT2LMHeadModel(config).save_pretrained(path)
    return path


def data(n: int = 16, length: int = 13) -> torch.Tensor:
    return torch.randint(0, VOCAB, (n, length), generator=torch.Generator().manual_seed(0))


@needs_hf
def test_only_adapters_are_trainable(tiny_gpt2_dir: Path) -> None:
    model = load_causal_lm_with_lora(tiny_gpt2_dir, r=4, alpha=8)

    state = trainable_state(model)

    assert state and all("lora_" in name for name in state)
    n_trainable = sum(v.numel() for v in state.values())
    n_total = sum(p.numel() for p in model.parameters())
    assert 0 < n_trainable < 0.1 * n_total
    assert {tuple(v.shape) for v in state.values()} == {(4, 32), (96, 4)}  # c_attn: 32 -> 96


@needs_hf
def test_forward_follows_the_gpt_interface(tiny_gpt2_dir: Path) -> None:
    model = load_causal_lm_with_lora(tiny_gpt2_dir)
    x = data(3, 9)

    logits, loss = model(x[:, :-1], x[:, 1:])

    assert logits.shape == (3, 8, VOCAB)
    assert loss is not None and torch.isfinite(loss)


@needs_hf
def test_local_training_moves_only_adapters(tiny_gpt2_dir: Path) -> None:
    model = load_causal_lm_with_lora(tiny_gpt2_dir)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    adapters = trainable_state(model)
    rows = data()
    before = evaluate(model, rows)

    train_local(model, rows, TrainConfig(lr=1e-2, local_steps=10, batch_size=8, device="cpu"), seed=0)

    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if not p.requires_grad)
    assert any(not torch.equal(v, adapters[k]) for k, v in trainable_state(model).items())
    assert evaluate(model, rows) < before


@needs_hf
def test_trainable_state_round_trip(tiny_gpt2_dir: Path) -> None:
    trained = load_causal_lm_with_lora(tiny_gpt2_dir)
    train_local(trained, data(), TrainConfig(lr=1e-2, local_steps=3, batch_size=8, device="cpu"), seed=1)
    fresh = load_causal_lm_with_lora(tiny_gpt2_dir)
    x = data(2, 8)

    load_trainable_state(fresh, trainable_state(trained))

    with torch.no_grad():
        torch.testing.assert_close(fresh.eval()(x)[0], trained.eval()(x)[0])


@needs_hf
def test_load_trainable_state_rejects_mismatch(tiny_gpt2_dir: Path) -> None:
    model = load_causal_lm_with_lora(tiny_gpt2_dir)
    state = trainable_state(model)
    name = next(iter(state))

    with pytest.raises(KeyError, match="missing"):
        load_trainable_state(model, {k: v for k, v in state.items() if k != name})
    with pytest.raises(KeyError, match="unexpected"):
        load_trainable_state(model, {**state, "extra.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="shape"):
        load_trainable_state(model, {**state, name: torch.zeros(1)})


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_causal_lm_with_lora(tmp_path / "absent")


def test_missing_extra_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "peft", None)  # makes ``import peft`` raise ImportError

    with pytest.raises(ImportError, match="transformers and peft"):
        load_causal_lm_with_lora(tmp_path)
