"""Record-level differential privacy: DP-SGD inside one cloud's local training.

Each client (cloud) protects each of its training records (a patient note)
with DP-SGD (Abadi et al., "Deep Learning with Differential Privacy", CCS
2016): every optimizer step draws a Poisson sample of the client's records,
clips each record's gradient to L2 norm ``max_grad_norm``, sums, adds Gaussian
noise of standard deviation ``noise_multiplier * max_grad_norm`` and divides by
the expected batch size. Per-example gradients, clipping and noise come from
Opacus (``GradSampleModule`` + ``DPOptimizer``); the privacy spent comes from
Opacus's RDP accountant (Mironov, "Renyi Differential Privacy", CSF 2017;
Mironov, Talwar and Zhang, "Renyi Differential Privacy of the Sampled Gaussian
Mechanism", 2019). Nothing here computes epsilon by a formula of its own.

One :class:`RecordDP` lives as long as its client: it is calibrated once for
the whole planned training (steps per round x rounds) and accounts every step
of every round. The model is wrapped for Opacus only for the duration of one
:meth:`RecordDP.private` block and handed back as the same plain module, with
its hooks and Opacus's attributes removed, so the client can load new global
weights between rounds and the federated layer can flatten its ``state_dict``.

The server sees the result of the clipped, noised steps only; by
post-processing the update a client sends is as private as the steps that made
it. Not covered: anything a client reports beside the update (such as its
training loss used for dynamic weighting) is not privatised here.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
from opacus.accountants import RDPAccountant
from opacus.accountants.utils import get_noise_multiplier
from opacus.grad_sample import GradSampleModule
from opacus.optimizers import DPOptimizer
from opacus.optimizers.optimizer import _check_processed_flag, _mark_as_processed

from xcloud.privacy.randomness import DPRandom

__all__ = ["RecordDP", "RecordDPConfig", "quiet_rdp_conversion"]

# Opacus warns when the best RDP order lies at the edge of its default grid
# (large noise over few steps, or tiny noise). The bound it returns is still a
# valid (epsilon, delta) guarantee, only possibly looser than a wider grid would
# give; the warning is not actionable for a caller, so it is silenced for the
# accountant's calls in this package only.
_RDP_EDGE_WARNING = r"Optimal order is the (largest|smallest) alpha"

# Opacus hooks every trainable module with a full backward hook. For the first
# layer (the token embedding, whose integer input cannot require gradients)
# PyTorch warns that the hook sees gradients of the module's outputs only;
# those are exactly what Opacus's embedding grad sampler needs.
_EMBEDDING_HOOK_WARNING = r"Full backward hook is firing when gradients are computed with respect to module outputs"


@contextmanager
def quiet_rdp_conversion() -> Iterator[None]:
    """Silences Opacus's "optimal order is the largest/smallest alpha" warning, and only it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_RDP_EDGE_WARNING, category=UserWarning)
        yield


_KEEP_DRAWN = 64  # seeds whose batches RecordDP keeps (drawn_batches)


@dataclass
class RecordDPConfig:
    """Record-level DP-SGD settings of one client."""

    target_epsilon: float = 8.0  # budget for the whole planned training, per client
    delta: float = 1e-5  # target delta; keep it well below 1 / records per client
    max_grad_norm: float = 1.0  # per-example gradient clip C (L2)
    noise_seed: int | None = None  # None: noise and batches keyed from os.urandom; int: reproducible (tests only)

    def __post_init__(self) -> None:
        if not self.target_epsilon > 0:
            raise ValueError(f"target_epsilon must be positive, got {self.target_epsilon}")
        if not 0 < self.delta < 1:
            raise ValueError(f"delta must be in (0, 1), got {self.delta}")
        if not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be positive, got {self.max_grad_norm}")


class RecordDP:
    """DP-SGD state of one client: calibrated noise, Poisson sampling and the accountant.

    Parameters
    ----------
    config : RecordDPConfig
    dataset_size : int
        Number of records the client trains on (fixed for the whole training).
    batch_size : int
        Expected batch size; the Poisson sampling rate is
        ``min(1, batch_size / dataset_size)``.
    steps_per_round : int
        Optimizer steps in one round (``TrainConfig.local_steps``).
    total_rounds : int
        Planned rounds. The noise multiplier is the smallest one (found by
        Opacus's ``get_noise_multiplier`` with its RDP accountant) for which
        ``steps_per_round * total_rounds`` steps spend at most
        ``config.target_epsilon`` at ``config.delta``.
    noise_multiplier : float, optional
        Use this noise multiplier instead of calibrating one (epsilon is still
        accounted by Opacus and may then exceed the target).

    Raises
    ------
    ValueError
        If a size or count is not positive, or the budget cannot be reached
        with any noise Opacus accepts.

    Notes
    -----
    The noise and the Poisson batches come from two
    :class:`~xcloud.privacy.randomness.DPRandom` streams (AES-256-CTR in the
    kernel, keys from ``os.urandom``; each noise value a sum of four
    Gaussian samples, as Opacus's ``secure_mode`` against the floating-point
    attack of Jin et al., 2021), never from the run's public seed or from
    PyTorch's generator. A ``config.noise_seed`` derives their keys
    instead, which makes both reproducible for tests and resume checks, and
    removable by anyone who knows the seed.

    Not thread-safe: one client trains at a time.
    """

    def __init__(
        self,
        config: RecordDPConfig,
        dataset_size: int,
        batch_size: int,
        steps_per_round: int,
        total_rounds: int,
        *,
        noise_multiplier: float | None = None,
    ) -> None:
        for name, value in (
            ("dataset_size", dataset_size),
            ("batch_size", batch_size),
            ("steps_per_round", steps_per_round),
            ("total_rounds", total_rounds),
        ):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.config = config
        self.dataset_size = dataset_size
        self.expected_batch_size = min(batch_size, dataset_size)
        self.sample_rate = self.expected_batch_size / dataset_size
        self.steps_per_round = steps_per_round
        self.total_rounds = total_rounds
        self.planned_steps = steps_per_round * total_rounds
        if noise_multiplier is None:
            with quiet_rdp_conversion():
                noise_multiplier = get_noise_multiplier(
                    target_epsilon=config.target_epsilon,
                    target_delta=config.delta,
                    sample_rate=self.sample_rate,
                    steps=self.planned_steps,
                    accountant="rdp",
                    epsilon_tolerance=0.01,
                )
        elif not noise_multiplier >= 0:
            raise ValueError(f"noise_multiplier must be non-negative, got {noise_multiplier}")
        self.noise_multiplier = float(noise_multiplier)
        self.accountant = RDPAccountant()
        # The batches drawn from each recent sampling_source(seed): the cloud's own
        # record of what it trained on, for experiments that need the ground truth
        # (the batches cannot be replayed from the seed; see sampling_source).
        self._drawn: dict[int, list[torch.Tensor]] = {}
        self._drawing: list[torch.Tensor] | None = None

    @property
    def steps(self) -> int:
        """Number of noised steps accounted so far."""
        return sum(n for _, _, n in self.accountant.history)

    def epsilon(self, delta: float | None = None) -> float:
        """Returns the epsilon spent so far, from Opacus's RDP accountant.

        Parameters
        ----------
        delta : float, optional
            Defaults to ``config.delta``.

        Returns
        -------
        float
            0.0 before the first step.
        """
        if not self.accountant.history:
            return 0.0
        with quiet_rdp_conversion():
            return float(self.accountant.get_epsilon(delta=self.config.delta if delta is None else delta))

    def noise_source(self, seed: int) -> DPRandom:
        """Returns the stream of one round's noise.

        Keyed from ``os.urandom`` unless ``config.noise_seed`` is set; then from
        a hash of (noise_seed, seed), so each round and client gets its own stream.
        """
        return self._source("xcloud-record-dp", seed)

    def sampling_source(self, seed: int) -> DPRandom:
        """Returns the stream of one round's Poisson batches (:meth:`sample`).

        Like the noise, keyed from ``os.urandom`` unless ``config.noise_seed``
        is set (then from its own hash of (noise_seed, seed)). The accountant's
        amplification by subsampling assumes that no adversary knows which
        steps used a record; batches drawn from the run's seed, which is in the
        shared run config, could be replayed by anyone (at the default, a
        record's steps known, epsilon 8 would become about 18 to 25).
        """
        self._drawing = self._drawn[int(seed)] = []
        while len(self._drawn) > _KEEP_DRAWN:
            del self._drawn[next(iter(self._drawn))]
        return self._source("xcloud-record-dp-sampling", seed)

    def drawn_batches(self, seed: int) -> list[torch.Tensor] | None:
        """The Poisson batches drawn since ``sampling_source(seed)``, or None if it was not among the last 64 seeds.

        In process only: this is the cloud's own knowledge of its training, never sent anywhere.
        """
        got = self._drawn.get(int(seed))
        return None if got is None else list(got)

    def _source(self, label: str, seed: int) -> DPRandom:
        if self.config.noise_seed is None:
            return DPRandom()
        return DPRandom.derived(label, int(self.config.noise_seed), int(seed))

    def sample(self, dataset_size: int, source: DPRandom) -> torch.Tensor:
        """Draws one Poisson batch: each record is included independently with ``sample_rate``.

        Parameters
        ----------
        dataset_size : int
            Must equal the size this object was calibrated for.
        source : DPRandom
            :meth:`sampling_source` in ``train_local``.

        Returns
        -------
        torch.Tensor
            int64 indices of the chosen records, possibly empty.
        """
        if dataset_size != self.dataset_size:
            raise ValueError(f"RecordDP was calibrated for {self.dataset_size} records, the dataset has {dataset_size}")
        mask = source.bernoulli(dataset_size, self.sample_rate)  # (N,)
        idx = mask.nonzero().squeeze(1)  # (b,)
        if self._drawing is not None:
            self._drawing.append(idx)
        return idx

    @contextmanager
    def private(self, model: nn.Module, optimizer: torch.optim.Optimizer, *, noise: DPRandom) -> Iterator[DPOptimizer]:
        """Makes ``model`` and ``optimizer`` private for the duration of the block.

        Inside the block, compute a loss that is the SUM over the batch of
        per-example losses, call ``backward()`` and then the yielded optimizer's
        ``step()``: it clips each example's gradient, adds noise, divides by the
        expected batch size, steps the wrapped optimizer and records the step
        with the accountant. For an empty Poisson batch call
        :meth:`empty_step` instead of a forward pass.

        Parameters
        ----------
        model : nn.Module
            The plain model; Opacus hooks are attached to its submodules.
        optimizer : torch.optim.Optimizer
            An optimizer over ``model``'s parameters.
        noise : DPRandom
            From :meth:`noise_source`; the noise is moved to each parameter's device.

        Yields
        ------
        opacus.optimizers.DPOptimizer

        Notes
        -----
        On exit the hooks and every attribute Opacus attached are removed and
        gradients are cleared: ``model`` is again the same plain module with
        the same ``state_dict`` keys.
        """
        gsm = GradSampleModule(model, batch_first=True, loss_reduction="sum", strict=True)
        dp_optimizer = _KernelNoiseDPOptimizer(
            optimizer,
            noise=noise,
            noise_multiplier=self.noise_multiplier,
            max_grad_norm=self.config.max_grad_norm,
            expected_batch_size=self.expected_batch_size,
            loss_reduction="mean",
        )

        def account(_: Any) -> None:
            self.accountant.step(noise_multiplier=self.noise_multiplier, sample_rate=self.sample_rate)

        dp_optimizer.attach_step_hook(account)
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=_EMBEDDING_HOOK_WARNING, category=UserWarning)
                yield dp_optimizer
        finally:
            gsm.to_standard_module()
            for p in model.parameters():
                p.grad = None
                if hasattr(p, "summed_grad"):
                    delattr(p, "summed_grad")
            for m in model.modules():
                for attr in ("activations", "max_batch_len"):
                    if attr in m.__dict__:
                        delattr(m, attr)

    @staticmethod
    def empty_step(dp_optimizer: DPOptimizer) -> None:
        """Takes a step for an empty Poisson batch: the update is noise alone.

        Skipping the step instead would break the sampled-Gaussian analysis the
        accountant relies on, so an empty batch still costs privacy.
        """
        for p in dp_optimizer.params:
            p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype, device=p.device)
        dp_optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        """Returns what a checkpoint needs to resume accounting (noise and history)."""
        return {
            "noise_multiplier": self.noise_multiplier,
            "sample_rate": self.sample_rate,
            "history": [list(h) for h in self.accountant.history],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores :meth:`state_dict` output.

        Raises
        ------
        ValueError
            If the checkpoint was made with another sample rate, or its noise
            was calibrated for another number of steps (a resume with more
            rounds would keep the smaller noise and overspend the budget).
        """
        if abs(float(state["sample_rate"]) - self.sample_rate) > 1e-12:
            raise ValueError(
                f"checkpoint sample rate {state['sample_rate']} differs from this client's {self.sample_rate}"
            )
        saved = float(state["noise_multiplier"])
        if abs(saved - self.noise_multiplier) > 1e-9 * max(1.0, abs(saved)):
            raise ValueError(
                f"the checkpoint's DP-SGD noise (multiplier {saved:.4f}) was calibrated for another number of "
                f"steps than this run's (which needs {self.noise_multiplier:.4f} for epsilon "
                f"{self.config.target_epsilon:g}): continuing with it would spend more than the budget; "
                "resume with the checkpoint's rounds and local steps"
            )
        self.noise_multiplier = saved
        self.accountant.history = [(float(s), float(q), int(n)) for s, q, n in state["history"]]


class _KernelNoiseDPOptimizer(DPOptimizer):
    """Opacus's DPOptimizer with the Gaussian noise drawn from a :class:`DPRandom`.

    Only :meth:`add_noise` differs: clipping, accumulation, scaling and the
    step hooks are Opacus's own. Each noise value is already the sum of four
    Gaussian samples (the kernel's), so Opacus's ``secure_mode``, which does
    the same with PyTorch's generator, stays off.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, *, noise: DPRandom, **kwargs: Any) -> None:
        super().__init__(optimizer, generator=None, secure_mode=False, **kwargs)
        self._noise = noise

    def add_noise(self) -> None:
        std = self.noise_multiplier * self.max_grad_norm
        for p in self.params:
            _check_processed_flag(p.summed_grad)
            g = p.summed_grad
            p.grad = (g + self._noise.gaussian(g.shape, std, dtype=g.dtype, device=g.device)).view_as(p)
            _mark_as_processed(p.summed_grad)
