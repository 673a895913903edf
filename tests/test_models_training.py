"""Local training and evaluation: determinism, step counts, dataset formats, padding."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from xcloud.models import (
    GPT,
    IGNORE_INDEX,
    GPTConfig,
    TrainConfig,
    collate,
    evaluate,
    perplexity,
    resolve_device,
    train_local,
)

CFG = GPTConfig(vocab_size=40, block_size=16, n_layer=1, n_head=2, n_embd=32)
TRAIN = TrainConfig(lr=3e-3, local_steps=5, batch_size=4, device="cpu")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_model(seed: int = 0, dropout: float = 0.0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=40, block_size=16, n_layer=1, n_head=2, n_embd=32, dropout=dropout))


def make_data(n: int = 24, length: int = 17, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, CFG.vocab_size, (n, length), generator=torch.Generator().manual_seed(seed))


def states_equal(a: GPT, b: GPT) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_train_config_defaults_and_validation() -> None:
    cfg = TrainConfig()

    assert (cfg.lr, cfg.local_steps, cfg.batch_size, cfg.grad_clip) == (3e-3, 20, 16, 1.0)
    assert (cfg.weight_decay, cfg.device, cfg.amp) == (0.0, "auto", True)
    for bad in ({"lr": 0.0}, {"local_steps": 0}, {"batch_size": -1}, {"grad_clip": -1.0}):
        with pytest.raises(ValueError):
            TrainConfig(**bad)  # type: ignore[arg-type]


def test_resolve_device() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"

    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError):
        resolve_device("not-a-device")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            resolve_device("cuda")


def test_train_local_is_deterministic_on_cpu() -> None:
    data = make_data()
    a, b, c = make_model(), make_model(), make_model()

    sa = train_local(a, data, TRAIN, seed=7)
    sb = train_local(b, data, TRAIN, seed=7)
    train_local(c, data, TRAIN, seed=8)

    assert states_equal(a, b)
    assert sa.mean_loss == sb.mean_loss
    assert not states_equal(a, c)
    train_local(make_model(), data, TRAIN, seed=2**70 + 7)  # any Python int is a valid seed


def test_train_local_with_dropout_is_deterministic_and_leaves_global_rng_alone() -> None:
    data = make_data()
    a, b = make_model(dropout=0.2), make_model(dropout=0.2)
    rng_before = torch.get_rng_state()

    train_local(a, data, TRAIN, seed=3)
    rng_between = torch.get_rng_state()
    train_local(b, data, TRAIN, seed=3)

    assert states_equal(a, b)
    assert torch.equal(rng_before, rng_between)


def test_train_local_counts_steps_and_examples() -> None:
    model = make_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}

    stats = train_local(model, make_data(n=10), TRAIN, seed=0)

    assert stats.steps == TRAIN.local_steps
    assert stats.examples == TRAIN.local_steps * TRAIN.batch_size
    assert stats.epsilon is None
    assert math.isfinite(stats.mean_loss) and stats.seconds > 0
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_batch_larger_than_dataset_uses_whole_dataset() -> None:
    stats = train_local(make_model(), make_data(n=3), TRAIN, seed=0)

    assert stats.examples == TRAIN.local_steps * 3


def test_train_local_restores_mode_and_rejects_empty_dataset() -> None:
    model = make_model().eval()

    train_local(model, make_data(), TRAIN, seed=0)

    assert not model.training
    with pytest.raises(ValueError, match="empty"):
        train_local(model, [], TRAIN, seed=0)


def test_token_rows_and_pairs_train_identically() -> None:
    rows = make_data()
    pairs = [(r[:-1], r[1:]) for r in rows]
    a, b = make_model(), make_model()

    train_local(a, rows, TRAIN, seed=1)
    train_local(b, pairs, TRAIN, seed=1)

    assert states_equal(a, b)


def test_collate_pads_variable_lengths() -> None:
    items = [torch.arange(6), torch.arange(4)]

    x, y = collate(items, [0, 1])

    assert x.shape == y.shape == (2, 5)
    assert torch.equal(x[1], torch.tensor([0, 1, 2, 0, 0]))
    assert torch.equal(y[1], torch.tensor([1, 2, 3, IGNORE_INDEX, IGNORE_INDEX]))
    with pytest.raises(ValueError):
        collate([torch.tensor([1])], [0])


def test_evaluate_is_token_weighted_mean_cross_entropy() -> None:
    model = make_model().eval()
    data = make_data(n=5)

    got = evaluate(model, data, batch_size=2)

    x, y = data[:, :-1], data[:, 1:]
    with torch.no_grad():
        logits, _ = model(x)
    expected = F.cross_entropy(logits.reshape(-1, CFG.vocab_size), y.reshape(-1)).item()
    assert got == pytest.approx(expected, rel=1e-5)
    assert perplexity(got) == pytest.approx(math.exp(expected), rel=1e-5)


def test_evaluate_ignores_padding_targets() -> None:
    """Padding a sequence with ignored targets gives the same result as truncating it."""
    model = make_model()
    rows = make_data(n=6)
    cut = [5, 16, 9, 2, 12, 7]
    truncated = [(r[:c], r[1 : c + 1]) for r, c in zip(rows, cut, strict=True)]
    padded = []
    for r, c in zip(rows, cut, strict=True):
        y = r[1:].clone()
        y[c:] = IGNORE_INDEX
        padded.append((r[:-1], y))

    a = evaluate(model, truncated, batch_size=4)
    b = evaluate(model, padded, batch_size=4)

    assert a == pytest.approx(b, rel=1e-6)
    with pytest.raises(ValueError, match="non-padding"):
        evaluate(model, [(torch.arange(3), torch.full((3,), IGNORE_INDEX))])
