"""Canary exposure and loss-threshold membership inference: both measurably lower with DP-SGD than without."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xcloud.data import WordTokenizer, generate_corpus
from xcloud.data.dataset import NoteDataset
from xcloud.models import GPT, GPTConfig, TrainConfig, train_local
from xcloud.privacy import RecordDP, RecordDPConfig
from xcloud.privacy.leakage import canary_exposure, loss_threshold_attack, per_example_losses, secret_log_likelihoods

pytestmark = pytest.mark.usefixtures("one_torch_thread")

STEPS = 60


@pytest.fixture(scope="module")
def setting():
    """A tiny model's training set with one canary planted in 10 of its 40 notes, and 20 held-out notes."""
    corpus = generate_corpus(
        hospitals=1, notes_per_hospital=60, seed=0, canaries_per_hospital=1, canary_repetitions=(1,)
    )
    canary = corpus.canaries[0]
    tok = WordTokenizer.build(corpus.texts(), max_vocab=1000)
    notes = [tok.encode(t)[:24] for t in corpus.texts()]
    planted = [tok.encode(canary.phrase) + n[:10] for n in notes[:10]]
    train = NoteDataset(planted + notes[10:40], 32, vocab_size=tok.vocab_size)
    held = NoteDataset(notes[40:], 32, vocab_size=tok.vocab_size)
    return tok, canary, train, held


def _train(tok, train, dp_epsilon: float | None) -> GPT:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=1, n_head=2, n_embd=32))
    dp = None
    if dp_epsilon is not None:
        dp = RecordDP(RecordDPConfig(target_epsilon=dp_epsilon, noise_seed=1), len(train), 8, STEPS, 1)
    train_local(model, train, TrainConfig(lr=1e-2, local_steps=STEPS, batch_size=8, device="cpu"), seed=3, dp=dp)
    return model


@pytest.fixture(scope="module")
def models(setting):
    tok, _, train, _ = setting
    return {"plain": _train(tok, train, None), "dp": _train(tok, train, 1.0)}


def _exposure(model, tok, canary):
    context = [tok.token_to_id("<bos>"), *tok.encode(canary.prefix)]
    return canary_exposure(model, context, tok.encode(canary.secret), tok.digit_ids, candidates=200, seed=0)


def test_exposure_is_lower_with_dp(setting, models):
    tok, canary, _, _ = setting
    plain = _exposure(models["plain"], tok, canary)
    dp = _exposure(models["dp"], tok, canary)
    assert plain.max_exposure == pytest.approx(np.log2(201))
    assert plain.exposure > 5.0  # memorised: ranked near the top of 200 random secrets
    assert plain.exposure - dp.exposure > 2.0


def test_untrained_model_reads_chance_exposure(setting):
    tok, canary, _, _ = setting
    torch.manual_seed(1)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=1, n_head=2, n_embd=32))
    e = _exposure(model, tok, canary)
    assert e.exposure < 4.0  # a random model ranks the secret anywhere


def test_membership_advantage_is_lower_with_dp(setting, models):
    _, _, train, held = setting
    plain = loss_threshold_attack(per_example_losses(models["plain"], train), per_example_losses(models["plain"], held))
    dp = loss_threshold_attack(per_example_losses(models["dp"], train), per_example_losses(models["dp"], held))
    assert plain.auc > 0.8 and plain.advantage > 0.2
    assert dp.auc < plain.auc - 0.2
    assert plain.members == 40 and plain.non_members == 20


def test_bad_input_raises_value_error(setting, models):
    tok, canary, _, _ = setting
    m = models["plain"]
    with pytest.raises(ValueError, match="not in the alphabet"):
        canary_exposure(m, [2], [999], tok.digit_ids)
    with pytest.raises(ValueError, match="must not be empty"):
        canary_exposure(m, [2], [], tok.digit_ids)
    with pytest.raises(ValueError, match="at least 1"):
        canary_exposure(m, [2], tok.encode(canary.secret), tok.digit_ids, candidates=0)
    with pytest.raises(ValueError, match="non-empty"):
        secret_log_likelihoods(m, [], np.zeros((1, 6), np.int64))
    with pytest.raises(ValueError, match="members and non-members"):
        loss_threshold_attack(np.zeros(0), np.ones(3))
    with pytest.raises(ValueError, match="finite"):
        loss_threshold_attack(np.array([np.nan]), np.ones(3))
    with pytest.raises(ValueError, match="empty dataset"):
        per_example_losses(m, [])
