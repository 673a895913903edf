"""Record-level DP-SGD through Opacus: calibration, accounting, clipping and noise, plain model after."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from opacus.accountants import RDPAccountant

from xcloud.models import GPT, GPTConfig, TrainConfig, train_local
from xcloud.privacy import DPRandom, RecordDP, RecordDPConfig

CFG = GPTConfig(vocab_size=30, block_size=8, n_layer=1, n_head=2, n_embd=16)
TRAIN = TrainConfig(lr=1e-2, local_steps=4, batch_size=8, device="cpu")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_model(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(CFG)


def make_data(n: int = 40, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, CFG.vocab_size, (n, CFG.block_size + 1), generator=torch.Generator().manual_seed(seed))


def opacus_epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    """Epsilon recomputed independently with a fresh Opacus RDP accountant."""
    accountant = RDPAccountant()
    accountant.history = [(noise_multiplier, sample_rate, steps)]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Optimal order is the")
        return float(accountant.get_epsilon(delta=delta))


def dp_gradients(model: GPT, x: torch.Tensor, y: torch.Tensor, dp: RecordDP, seed: int = 0) -> torch.Tensor:
    """The flattened gradient DP-SGD would apply for the batch (x, y), without stepping."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    with dp.private(model, optimizer, noise=DPRandom.derived("test", seed)) as dp_opt:
        dp_opt.zero_grad()
        logits, _ = model(x)
        per_example = F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(dim=1)  # (B,)
        per_example.sum().backward()
        dp_opt.pre_step()  # clip, noise, scale, account
        return torch.cat([p.grad.reshape(-1).clone() for p in model.parameters()])


def plain_gradients(model: GPT, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    model.zero_grad()
    logits, _ = model(x)
    F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(dim=1).mean().backward()
    g = torch.cat([p.grad.reshape(-1).clone() for p in model.parameters()])
    model.zero_grad(set_to_none=True)
    return g


def batch(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    rows = make_data(n=n, seed=5)
    return rows[:, :-1], rows[:, 1:]


@pytest.mark.parametrize(
    ("target", "dataset_size", "batch_size", "steps", "rounds"),
    [(8.0, 300, 16, 20, 5), (3.0, 300, 16, 20, 5), (1.0, 1000, 16, 10, 3), (8.0, 50, 50, 5, 2)],
)
def test_noise_multiplier_matches_opacus_accountant(
    target: float, dataset_size: int, batch_size: int, steps: int, rounds: int
) -> None:
    dp = RecordDP(RecordDPConfig(target_epsilon=target), dataset_size, batch_size, steps, rounds)

    q, total = batch_size / dataset_size, steps * rounds
    eps = opacus_epsilon(dp.noise_multiplier, q, total, 1e-5)
    eps_less_noise = opacus_epsilon(dp.noise_multiplier * 0.97, q, total, 1e-5)

    assert dp.sample_rate == pytest.approx(q)
    assert dp.planned_steps == total
    assert target - 0.05 <= eps <= target
    assert eps_less_noise > target


def test_epsilon_grows_per_round_and_stays_within_target() -> None:
    data, model = make_data(), make_model()
    rounds = 3
    dp = RecordDP(RecordDPConfig(target_epsilon=8.0), len(data), TRAIN.batch_size, TRAIN.local_steps, rounds)
    assert dp.epsilon() == 0.0

    eps = []
    for r in range(rounds):
        stats = train_local(model, data, TRAIN, seed=r, dp=dp)
        assert stats.epsilon == dp.epsilon()
        eps.append(dp.epsilon())

    assert 0 < eps[0] < eps[1] < eps[2]
    assert eps[-1] <= 8.0 + 1e-9
    assert eps[-1] >= 7.9
    assert dp.steps == rounds * TRAIN.local_steps
    assert eps[-1] == pytest.approx(opacus_epsilon(dp.noise_multiplier, dp.sample_rate, dp.steps, 1e-5), rel=1e-12)


def _batches_drawn(dp: RecordDP, seed: int) -> list[list[int]]:
    """The Poisson batches train_local draws with ``seed``."""
    drawn: list[list[int]] = []
    sample = dp.sample

    def recording(n: int, source: DPRandom) -> torch.Tensor:
        idx = sample(n, source)
        drawn.append(idx.tolist())
        return idx

    dp.sample = recording  # type: ignore[method-assign]
    try:
        train_local(make_model(), make_data(), TRAIN, seed=seed, dp=dp)
    finally:
        del dp.sample  # the class's method again
    return drawn


def test_poisson_batches_cannot_be_replayed_from_the_public_seed() -> None:
    """Amplification by subsampling assumes secret sampling: the run's seed (in the shared config) must not fix it."""
    dp = RecordDP(RecordDPConfig(), 40, TRAIN.batch_size, TRAIN.local_steps, 2, noise_multiplier=1.0)
    first, second = _batches_drawn(dp, seed=7), _batches_drawn(dp, seed=7)
    assert len(first) == len(second) == TRAIN.local_steps
    assert first != second  # 4 steps of 40 coin flips each: equal with probability about 2^-100
    # A noise_seed (tests only) makes the batches reproducible again.
    seeded = RecordDPConfig(noise_seed=3)
    dp_a = RecordDP(seeded, 40, TRAIN.batch_size, TRAIN.local_steps, 2, noise_multiplier=1.0)
    dp_b = RecordDP(seeded, 40, TRAIN.batch_size, TRAIN.local_steps, 2, noise_multiplier=1.0)
    assert _batches_drawn(dp_a, seed=7) == _batches_drawn(dp_b, seed=7)


def test_model_stays_plain_after_dp_rounds() -> None:
    model, data = make_model(), make_data()
    keys = list(model.state_dict())
    dp = RecordDP(RecordDPConfig(), len(data), TRAIN.batch_size, TRAIN.local_steps, 2, noise_multiplier=1.0)

    train_local(model, data, TRAIN, seed=0, dp=dp)
    train_local(model, data, TRAIN, seed=1)  # a plain round in between works
    train_local(model, data, TRAIN, seed=2, dp=dp)  # and the model can be made private again

    assert type(model) is GPT
    assert list(model.state_dict()) == keys
    for m in model.modules():
        assert not m._forward_hooks and not m._backward_hooks
        assert "activations" not in m.__dict__ and "max_batch_len" not in m.__dict__
        assert not hasattr(m, "autograd_grad_sample_hooks")
    for p in model.parameters():
        assert p.grad is None
        for attr in ("grad_sample", "_forward_counter", "_current_grad_sample", "summed_grad"):
            assert not hasattr(p, attr)


def test_without_noise_and_clipping_dp_gradient_equals_plain_gradient() -> None:
    model = make_model()
    x, y = batch(8)
    dp = RecordDP(RecordDPConfig(max_grad_norm=1e6), 80, 8, 1, 1, noise_multiplier=0.0)

    g_dp = dp_gradients(model, x, y, dp)
    g_plain = plain_gradients(model, x, y)

    torch.testing.assert_close(g_dp, g_plain, rtol=1e-4, atol=1e-6)
    assert dp.steps == 1


def test_clipping_bounds_the_gradient() -> None:
    model = make_model()
    x, y = batch(8)
    clip = 0.01
    dp = RecordDP(RecordDPConfig(max_grad_norm=clip), 80, 8, 1, 1, noise_multiplier=0.0)

    g_dp = dp_gradients(model, x, y, dp)
    g_plain = plain_gradients(model, x, y)

    assert float(g_plain.norm()) > 10 * clip  # clipping is active
    assert float(g_dp.norm()) <= clip * (1 + 1e-4)  # mean of 8 clipped examples, divided by 8
    assert not torch.allclose(g_dp, g_plain)


def test_noise_has_the_calibrated_standard_deviation() -> None:
    model = make_model()
    x, y = batch(8)
    clip, sigma, expected_batch = 0.5, 2.0, 8
    clean = RecordDP(RecordDPConfig(max_grad_norm=clip), 80, expected_batch, 1, 1, noise_multiplier=0.0)
    noisy = RecordDP(RecordDPConfig(max_grad_norm=clip), 80, expected_batch, 1, 1, noise_multiplier=sigma)

    noise = dp_gradients(model, x, y, noisy, seed=1) - dp_gradients(model, x, y, clean)

    assert noise.numel() > 4000
    assert float(noise.std()) == pytest.approx(sigma * clip / expected_batch, rel=0.05)
    assert abs(float(noise.mean())) < 0.06 * sigma * clip / expected_batch


def test_empty_poisson_batch_still_takes_a_noised_step() -> None:
    model = make_model()
    dp = RecordDP(RecordDPConfig(max_grad_norm=1.0), 1000, 1, 1, 1, noise_multiplier=1.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)

    with dp.private(model, optimizer, noise=DPRandom.derived("test", 0)) as dp_opt:
        dp.empty_step(dp_opt)
        grads = torch.cat([p.grad.reshape(-1) for p in model.parameters()])

    assert dp.steps == 1
    assert float(grads.std()) == pytest.approx(1.0, rel=0.05)  # sigma * C / expected batch of 1


def test_train_local_with_tiny_sample_rate_handles_empty_batches() -> None:
    model, data = make_model(), make_data(n=200)
    before = [p.detach().clone() for p in model.parameters()]
    dp = RecordDP(RecordDPConfig(), 200, 1, 6, 1, noise_multiplier=1.0)

    stats = train_local(model, data, TrainConfig(local_steps=6, batch_size=1, device="cpu"), seed=0, dp=dp)

    assert stats.steps == 6 and dp.steps == 6
    assert stats.examples < 6 * 3
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))


def test_noise_seed_makes_dp_training_reproducible() -> None:
    data = make_data()

    def run(noise_seed: int | None) -> list[torch.Tensor]:
        model = make_model()
        dp = RecordDP(
            RecordDPConfig(noise_seed=noise_seed),
            len(data),
            TRAIN.batch_size,
            TRAIN.local_steps,
            1,
            noise_multiplier=1.0,
        )
        train_local(model, data, TRAIN, seed=4, dp=dp)
        return [p.detach() for p in model.parameters()]

    a, b = run(11), run(11)
    c, d = run(None), run(None)

    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    assert not all(torch.equal(u, v) for u, v in zip(c, d, strict=True))


def test_state_dict_round_trip_resumes_accounting() -> None:
    dp = RecordDP(RecordDPConfig(), 40, 8, 4, 3)  # calibrated for 3 rounds of 4 steps
    train_local(make_model(), make_data(), TRAIN, seed=0, dp=dp)
    resumed = RecordDP(RecordDPConfig(), 40, 8, 4, 3)

    resumed.load_state_dict(dp.state_dict())

    assert resumed.noise_multiplier == dp.noise_multiplier
    assert resumed.steps == dp.steps == 4
    assert resumed.epsilon() == dp.epsilon() > 0
    with pytest.raises(ValueError, match="sample rate"):
        RecordDP(RecordDPConfig(), 80, 8, 4, 3).load_state_dict(dp.state_dict())
    # More rounds need more noise than the checkpoint's: keeping its noise would overspend the budget.
    with pytest.raises(ValueError, match="calibrated for another number of steps"):
        RecordDP(RecordDPConfig(), 40, 8, 4, 6).load_state_dict(dp.state_dict())
    with pytest.raises(ValueError, match="calibrated for another number of steps"):
        RecordDP(RecordDPConfig(), 40, 8, 4, 3, noise_multiplier=2.0).load_state_dict(dp.state_dict())


def test_dataset_of_another_size_is_rejected() -> None:
    dp = RecordDP(RecordDPConfig(), 50, 8, 4, 1, noise_multiplier=1.0)

    with pytest.raises(ValueError, match="calibrated for 50"):
        train_local(make_model(), make_data(n=40), TRAIN, seed=0, dp=dp)


@pytest.mark.parametrize("kwargs", [{"target_epsilon": 0.0}, {"delta": 0.0}, {"delta": 1.0}, {"max_grad_norm": -1.0}])
def test_config_rejects_bad_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RecordDPConfig(**kwargs)  # type: ignore[arg-type]


def test_bad_sizes_and_unreachable_budget_are_rejected() -> None:
    with pytest.raises(ValueError, match="dataset_size"):
        RecordDP(RecordDPConfig(), 0, 8, 4, 1)
    with pytest.raises(ValueError, match="total_rounds"):
        RecordDP(RecordDPConfig(), 10, 8, 4, 0)
    with pytest.raises(ValueError, match="budget"):
        RecordDP(RecordDPConfig(target_epsilon=0.01), 10, 10, 1000, 100)
