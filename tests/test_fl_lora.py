"""Federating only LoRA adapters of a local Hugging Face model (the optional [hf] extra).

The model and tokenizer are built in the test, randomly initialised; nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

transformers = pytest.importorskip("transformers", reason="the [hf] extra (transformers, peft) is not installed")
pytest.importorskip("peft", reason="the [hf] extra (transformers, peft) is not installed")
tokenizers = pytest.importorskip("tokenizers", reason="the [hf] extra (tokenizers) is not installed")

from xcloud.data import WordTokenizer, generate_corpus  # noqa: E402
from xcloud.fl.config import PLAIN_FEDAVG, RunConfig  # noqa: E402
from xcloud.fl.simulation import FederatedRun  # noqa: E402

CFG = RunConfig(
    **PLAIN_FEDAVG,
    clouds=3,
    rounds=2,
    local_steps=2,
    batch_size=4,
    notes_per_hospital=20,
    block_size=48,
    min_clients=2,
    dp_epsilon=50.0,
)


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiny-hf")
    corpus = generate_corpus(hospitals=CFG.clouds, notes_per_hospital=CFG.notes_per_hospital, seed=CFG.seed)
    words = WordTokenizer.build(corpus.texts(), max_vocab=500)
    vocab = {w: i for i, w in enumerate(words.vocab)}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", bos_token="<bos>", eos_token="<eos>"
    )
    fast.save_pretrained(path)
    config = transformers.GPT2Config(n_layer=1, n_head=2, n_embd=32, vocab_size=len(vocab), n_positions=64)
    transformers.GPT2LMHeadModel(config).save_pretrained(path)
    return path


@pytest.mark.parametrize("method", ["fedavg", "xcloud"])
def test_only_adapters_are_federated(hf_dir: Path, tmp_path: Path, method: str) -> None:
    run = FederatedRun(replace(CFG, method=method, hf_model=str(hf_dir)), tmp_path)
    assert run.layout.names and all("lora" in n for n in run.layout.names)
    if method == "xcloud":
        assert run.plan.fraction == 1.0  # every adapter value is encrypted
    before = run.layout.flatten(run.global_state).copy()
    m0 = run.run_round(0)
    m1 = run.run_round(1)
    assert np.isfinite(m1.val_loss) and m1.accepted == CFG.clouds
    assert not np.array_equal(before, run.layout.flatten(run.global_state))
    # Only adapters travel: the update is tiny compared with the whole model.
    total = sum(p.numel() for p in run.model.parameters())
    assert run.layout.total < 0.2 * total
    assert m0.bytes_up > 0


def test_missing_model_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no model directory"):
        FederatedRun(replace(CFG, hf_model=str(tmp_path / "nope")), tmp_path / "run")
