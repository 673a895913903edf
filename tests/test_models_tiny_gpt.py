"""The tiny GPT: shapes, causal masking, sensitive parameters, and that it learns."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from xcloud.models import GPT, IGNORE_INDEX, SENSITIVE_PARAMETERS, GPTConfig, TrainConfig, evaluate, train_local

SMALL = GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=32)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_model(cfg: GPTConfig = SMALL, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(cfg)


def test_config_defaults() -> None:
    cfg = GPTConfig(vocab_size=100)

    assert (cfg.block_size, cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.dropout) == (64, 2, 4, 128, 0.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"vocab_size": 0},
        {"vocab_size": 10, "block_size": 0},
        {"vocab_size": 10, "n_embd": 30, "n_head": 4},
        {"vocab_size": 10, "dropout": 1.0},
        {"vocab_size": 10, "n_layer": -1},
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        GPTConfig(**kwargs)  # type: ignore[arg-type]


def test_forward_shapes() -> None:
    model = make_model()
    idx = torch.randint(0, SMALL.vocab_size, (3, 10))

    logits, loss = model(idx)
    logits2, loss2 = model(idx, idx)

    assert logits.shape == (3, 10, SMALL.vocab_size)
    assert loss is None
    assert loss2 is not None and loss2.dim() == 0 and torch.isfinite(loss2)
    torch.testing.assert_close(logits, logits2)


def test_forward_rejects_bad_input() -> None:
    model = make_model()

    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros((1, SMALL.block_size + 1), dtype=torch.long))
    with pytest.raises(ValueError, match="shape"):
        model(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="targets"):
        model(torch.zeros((2, 4), dtype=torch.long), torch.zeros((2, 5), dtype=torch.long))


def test_initial_loss_is_near_uniform() -> None:
    model = make_model()
    idx = torch.randint(0, SMALL.vocab_size, (8, 16))

    _, loss = model(idx, idx)

    assert loss is not None
    assert abs(float(loss.detach()) - torch.log(torch.tensor(float(SMALL.vocab_size))).item()) < 0.2


@pytest.mark.parametrize("j", [0, 5, 15])
def test_causal_masking(j: int) -> None:
    """Changing token j changes no logit before position j, and does change position j."""
    model = make_model().eval()
    idx = torch.randint(0, SMALL.vocab_size, (2, 16))
    changed = idx.clone()
    changed[:, j] = (idx[:, j] + 1) % SMALL.vocab_size

    with torch.no_grad():
        a, _ = model(idx)
        b, _ = model(changed)

    torch.testing.assert_close(a[:, :j], b[:, :j], rtol=0, atol=1e-6)
    assert not torch.allclose(a[:, j], b[:, j])


def test_loss_ignores_padding_targets() -> None:
    model = make_model()
    idx = torch.randint(0, SMALL.vocab_size, (2, 12))
    targets = torch.randint(0, SMALL.vocab_size, (2, 12))
    targets[0, 8:] = IGNORE_INDEX
    targets[1, 3:] = IGNORE_INDEX

    logits, loss = model(idx, targets)

    keep = targets != IGNORE_INDEX
    expected = F.cross_entropy(logits[keep], targets[keep])
    assert loss is not None
    torch.testing.assert_close(loss, expected)


def test_sensitive_parameters_are_untied_embedding_and_head() -> None:
    model = make_model()
    state = model.state_dict()

    assert SENSITIVE_PARAMETERS == ("wte.weight", "lm_head.weight")
    assert GPT.sensitive_parameter_names() == SENSITIVE_PARAMETERS
    assert all(name in state for name in SENSITIVE_PARAMETERS)
    assert model.wte.weight.data_ptr() != model.lm_head.weight.data_ptr()
    assert model.lm_head.bias is None
    assert state["wte.weight"].shape == state["lm_head.weight"].shape == (SMALL.vocab_size, SMALL.n_embd)


def test_opacus_friendly_structure() -> None:
    """No buffers, and only Linear / Embedding / LayerNorm hold parameters."""
    model = make_model()

    assert list(model.buffers()) == []
    holders = {type(m).__name__ for m in model.modules() if any(True for _ in m.parameters(recurse=False))}
    assert holders == {"Linear", "Embedding", "LayerNorm"}


def test_default_parameter_count() -> None:
    for vocab in (256, 1024, 2000):
        model = GPT(GPTConfig(vocab_size=vocab))

        assert model.num_parameters() == 396_800 + 64 * 128 + 2 * 128 * vocab
        assert model.num_parameters(exclude_position_embedding=True) == 396_800 + 2 * 128 * vocab
    assert GPT(GPTConfig(vocab_size=2000)).num_parameters() == 916_992


def test_state_dict_keys_are_stable() -> None:
    keys = list(make_model(seed=0).state_dict())

    assert keys == list(make_model(seed=1).state_dict())
    assert keys[0] == "wte.weight" and keys[1] == "wpe.weight" and keys[-1] == "lm_head.weight"
    assert "h.1.mlp.c_proj.weight" in keys


def test_loss_decreases_when_overfitting() -> None:
    model = make_model()
    data = torch.randint(0, SMALL.vocab_size, (4, SMALL.block_size + 1), generator=torch.Generator().manual_seed(1))
    before = evaluate(model, data)

    train_local(model, data, TrainConfig(lr=1e-2, local_steps=60, batch_size=4, device="cpu"), seed=0)

    after = evaluate(model, data)
    assert after < 0.3 * before


def test_generate_extends_and_is_reproducible() -> None:
    model = make_model().eval()
    prompt = torch.randint(0, SMALL.vocab_size, (2, 5))

    a = model.generate(prompt, 20, top_k=5, generator=torch.Generator().manual_seed(3))
    b = model.generate(prompt, 20, top_k=5, generator=torch.Generator().manual_seed(3))

    assert a.shape == (2, 25)
    assert torch.equal(a[:, :5], prompt)
    assert torch.equal(a, b)
    with pytest.raises(ValueError):
        model.generate(prompt, 1, temperature=0.0)
