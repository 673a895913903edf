"""Gradient inversion (DLG / iDLG) on a one-layer model: it recovers a plain gradient's text, not a ciphertext's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import xcloud
from xcloud.data import WordTokenizer, generate_corpus
from xcloud.models import GPT, GPTConfig
from xcloud.privacy.leakage import (
    batch_gradient,
    dp_gradient,
    infer_bag,
    invert,
    pseudo_values,
    rouge_1,
    rouge_l,
    score_reconstruction,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LENGTH = 8


@pytest.fixture(scope="module")
def setting():
    corpus = generate_corpus(hospitals=1, notes_per_hospital=20, seed=0)
    tok = WordTokenizer.build(corpus.texts(), max_vocab=500)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=16))
    x = torch.tensor([[tok.token_to_id("<bos>"), *tok.encode(corpus.texts()[0])[:LENGTH]]])  # (1, T+1)
    return tok, model, x


def test_dlg_recovers_a_plain_gradient(setting):
    tok, model, x = setting
    g = batch_gradient(model, x)
    bag = infer_bag(g)
    assert set(x.reshape(-1).tolist()) <= set(bag)  # iDLG step: the bag read off the gradient
    rec, dist, steps = invert(model, g, 1, LENGTH, first_token=tok.token_to_id("<bos>"), steps=150, restarts=1)
    acc, r1, rl = score_reconstruction(rec, x.numpy())
    assert acc > 0.8 and r1 > 0.8 and rl > 0.8
    assert 0 < steps <= 150


def test_dlg_on_ciphertext_coefficients_recovers_nothing(setting, default_ctx):
    tok, model, x = setting
    g = batch_gradient(model, x)
    names = list(g)
    flat = np.clip(torch.cat([g[n].reshape(-1) for n in names]).numpy(), -1, 1).astype(np.float32)
    ct = xcloud.encrypt_blocks(default_ctx.keygen(), flat)
    stand = pseudo_values(ct.c0_view(), default_ctx.primes[0], ct.size)
    enc, pos = {}, 0
    for n in names:
        enc[n] = torch.from_numpy(stand[pos : pos + g[n].numel()].copy()).reshape(g[n].shape)
        pos += g[n].numel()
    rec, _, _ = invert(model, enc, 1, LENGTH, first_token=tok.token_to_id("<bos>"), steps=40, restarts=1)
    acc, _, _ = score_reconstruction(rec, x.numpy())
    assert acc < 0.3


def test_dp_gradient_is_clipped_and_noised(setting):
    _, model, x = setting
    plain = batch_gradient(model, x)
    zero_noise = dp_gradient(model, x, 1e-3, 0.0, torch.Generator().manual_seed(0))
    norm = torch.sqrt(sum((t**2).sum() for t in zero_noise.values()))
    assert float(norm) == pytest.approx(1e-3, rel=1e-4)
    noisy = dp_gradient(model, x, 1.0, 1.0, torch.Generator().manual_seed(0))
    assert not torch.allclose(noisy["wte.weight"], plain["wte.weight"])


def test_rouge_known_answers():
    assert rouge_1([1, 2, 3], [1, 2, 3]) == 1.0
    assert rouge_l([1, 2, 3, 4], [1, 3, 4]) == pytest.approx(2 * 0.75 * 1.0 / 1.75)
    assert rouge_1([5, 6], [1, 2]) == 0.0
    acc, _, _ = score_reconstruction(np.array([[2, 1, 2], [2, 3, 4]]), np.array([[2, 3, 4], [2, 1, 2]]))
    assert acc == 1.0  # sequences matched in the best order


def test_bad_input_raises_value_error(setting):
    _, model, x = setting
    g = batch_gradient(model, x)
    with pytest.raises(ValueError, match="lacks parameters"):
        invert(model, {"wte.weight": g["wte.weight"]}, 1, LENGTH)
    with pytest.raises(ValueError, match="positive"):
        invert(model, g, 0, LENGTH)
    with pytest.raises(ValueError, match="bag of words is empty"):
        invert(model, g, 1, LENGTH, bag=[])
    with pytest.raises(ValueError, match="T \\+ 1"):
        batch_gradient(model, x[:, :1])
    with pytest.raises(ValueError, match="token-indexed"):
        infer_bag({"wpe.weight": g["wpe.weight"]})
    with pytest.raises(ValueError, match="differ in shape"):
        score_reconstruction(np.zeros((1, 3)), np.zeros((1, 4)))
