"""Client-level differential privacy for many-client deployments (distributed DP).

With many clients, the unit to protect is a whole client's contribution
(DP-FedAvg: McMahan, Ramage, Talwar and Zhang, "Learning Differentially Private
Recurrent Language Models", ICLR 2018). Each round every client

1. clips its model update to L2 norm ``clip_norm`` (:func:`clip_update`), so
   adding or removing one client changes the SUM of updates by at most
   ``clip_norm`` (its L2 sensitivity), and
2. adds its own share of Gaussian noise (:func:`noise_share`) with standard
   deviation ``noise_multiplier * clip_norm / sqrt(K)``.

The K independent shares add up to Gaussian noise of standard deviation
``noise_multiplier * clip_norm`` in the aggregate (variances add:
K * (z C / sqrt K)^2 = (z C)^2), which is exactly the Gaussian mechanism on the
sum, while no single update carries the full noise. Because the updates travel
encrypted and the server only ever decrypts (or releases) the sum, the
individual, less-noisy updates are never seen; this is distributed DP on top
of secure aggregation (as in Kairouz, Liu and Steinke, "The Distributed
Discrete Gaussian Mechanism for Federated Learning with Secure Aggregation",
ICML 2021, here with continuous noise).

Assumptions, stated where they bite:

- All K clients report. If only m < K shares reach the sum, its noise
  standard deviation is ``z C sqrt(m / K)`` and the privacy guarantee is that
  of the smaller multiplier ``z sqrt(m / K)``; pass the number of clients that
  will certainly report as ``num_clients`` (or re-account with the smaller
  multiplier) when dropouts are possible.
- Clients are honest about their share. Anyone who knows some shares (a
  client knows its own; colluding clients know theirs) can subtract them: to
  a coalition of c clients the remaining noise has standard deviation
  ``z C sqrt((K - c) / K)``.
- The calibration is for the unweighted sum. For a weighted sum
  ``sum_k w_k u_k`` the sensitivity is ``max_k w_k * clip_norm``; scale
  ``clip_norm`` by the largest weight, or weight before clipping.
- Noise must be unpredictable: it comes from a
  :class:`~xcloud.privacy.randomness.DPRandom` stream (AES-256-CTR in the
  kernel under a key from ``os.urandom``) unless a test passes a derived one.
  A known key lets the server regenerate and remove the noise.

Privacy spent is computed by dp-accounting's RDP accountant (Google's
``dp_accounting`` package), never by a formula of xcloud's own.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

from xcloud.privacy.randomness import DPRandom

__all__ = [
    "client_level_epsilon",
    "client_level_epsilon_of",
    "clip_update",
    "effective_multiplier",
    "noise_multiplier_for",
    "noise_share",
]

_MAX_NOISE_MULTIPLIER = 1e6


def clip_update(vec: torch.Tensor, clip_norm: float) -> tuple[torch.Tensor, float]:
    """Scales ``vec`` down to L2 norm at most ``clip_norm``.

    Parameters
    ----------
    vec : torch.Tensor
        A client's flattened update (any shape; the norm is over all entries).
    clip_norm : float
        Bound C > 0.

    Returns
    -------
    clipped : torch.Tensor
        ``vec * min(1, C / ||vec||)``, same shape and dtype.
    original_norm : float
        ``||vec||``, computed in float64.

    Raises
    ------
    ValueError
        If ``clip_norm`` is not positive or ``vec`` has a NaN or infinite entry.
    """
    if not clip_norm > 0:
        raise ValueError(f"clip_norm must be positive, got {clip_norm}")
    norm = float(torch.linalg.vector_norm(vec.detach().to(torch.float64)))
    if not math.isfinite(norm):
        raise ValueError("update has a NaN or infinite entry; refusing to clip it")
    if norm <= clip_norm:
        return vec.clone(), norm
    return vec * (clip_norm / norm), norm


def noise_share(
    shape: Sequence[int] | torch.Size,
    clip_norm: float,
    noise_multiplier: float,
    num_clients: int,
    source: DPRandom | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Draws one client's share of the aggregate's Gaussian noise.

    Parameters
    ----------
    shape : sequence of int
        Shape of the update.
    clip_norm : float
        The clip bound C used by :func:`clip_update`.
    noise_multiplier : float
        z: the SUM of all K shares has standard deviation ``z * C`` per entry.
    num_clients : int
        K, the number of clients whose shares are summed (see the module
        docstring for what happens when fewer report).
    source : DPRandom, optional
        Source of the noise; None takes a fresh one keyed from ``os.urandom``.
        Pass a derived one (:meth:`DPRandom.derived`) in tests only.
    dtype : torch.dtype
    device : torch.device or str

    Returns
    -------
    torch.Tensor
        Gaussian noise of mean 0 and standard deviation ``z * C / sqrt(K)``.

    Raises
    ------
    ValueError
        If ``clip_norm`` or ``num_clients`` is not positive, or
        ``noise_multiplier`` is negative.
    """
    if not clip_norm > 0:
        raise ValueError(f"clip_norm must be positive, got {clip_norm}")
    if not noise_multiplier >= 0:
        raise ValueError(f"noise_multiplier must be non-negative, got {noise_multiplier}")
    if not isinstance(num_clients, int) or num_clients <= 0:
        raise ValueError(f"num_clients must be a positive integer, got {num_clients!r}")
    if source is None:
        source = DPRandom()
    std = noise_multiplier * clip_norm / math.sqrt(num_clients)
    return source.gaussian(shape, std, dtype=dtype, device=device)


@contextmanager
def _quiet_absl() -> Iterator[None]:
    # dp-accounting logs (absl, level WARNING) when the subsampled-Gaussian
    # series for a fractional RDP order does not converge; it then drops that
    # order, which keeps the bound valid (only possibly looser). Silence just
    # that logger for the duration of the computation.
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def client_level_epsilon(noise_multiplier: float, rounds: int, delta: float, sampling_rate: float = 1.0) -> float:
    """Returns the client-level epsilon after ``rounds`` rounds, from dp-accounting's RDP accountant.

    Each round is one Gaussian mechanism with multiplier ``noise_multiplier``
    on the clipped sum, Poisson-subsampled at ``sampling_rate`` (the chance that
    a given client takes part in a round; 1.0 when all take part).

    Parameters
    ----------
    noise_multiplier : float
        z >= 0; 0 gives infinity.
    rounds : int
        Rounds composed; 0 gives 0.0.
    delta : float
        In (0, 1).
    sampling_rate : float
        In (0, 1].

    Raises
    ------
    ValueError
        On an argument out of range.
    """
    from dp_accounting import dp_event, rdp

    if not noise_multiplier >= 0:
        raise ValueError(f"noise_multiplier must be non-negative, got {noise_multiplier}")
    if not isinstance(rounds, int) or rounds < 0:
        raise ValueError(f"rounds must be a non-negative integer, got {rounds!r}")
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    if not 0 < sampling_rate <= 1:
        raise ValueError(f"sampling_rate must be in (0, 1], got {sampling_rate}")
    if rounds == 0:
        return 0.0
    event: dp_event.DpEvent = dp_event.GaussianDpEvent(noise_multiplier)
    if sampling_rate < 1:
        event = dp_event.PoissonSampledDpEvent(sampling_rate, event)
    accountant = rdp.RdpAccountant()
    with _quiet_absl():
        accountant.compose(event, rounds)
        return float(accountant.get_epsilon(delta))


def effective_multiplier(noise_multiplier: float, weights: Sequence[float], num_clients: int) -> float:
    """The multiplier of the Gaussian mechanism one aggregation actually ran.

    Each of the ``num_clients`` clients adds a share of standard deviation
    ``z C / sqrt(K)`` (:func:`noise_share`); an aggregate
    ``sum_k w_k (u_k + n_k)`` over the updates that arrived has noise standard
    deviation ``z C ||w||_2 / sqrt(K)`` and sensitivity ``max_k w_k C``, so
    its multiplier is ``z ||w||_2 / (sqrt(K) max_k w_k)``: ``z`` when all K
    report with uniform weights, ``z sqrt(m / K)`` when only m of them do,
    less still with unequal weights (staleness discounts, say).

    Raises
    ------
    ValueError
        If ``weights`` is empty or holds a negative or non-finite weight, or
        ``num_clients`` is not positive.
    """
    w = [float(x) for x in weights]
    if not w or any(not (math.isfinite(x) and x >= 0) for x in w) or max(w) == 0:
        raise ValueError(f"weights must be non-negative and finite with a positive one, got {w}")
    if num_clients < 1:
        raise ValueError(f"num_clients must be positive, got {num_clients}")
    norm = math.sqrt(sum(x * x for x in w))
    return noise_multiplier * norm / (math.sqrt(num_clients) * max(w))


def client_level_epsilon_of(multipliers: Sequence[float], delta: float) -> float:
    """Epsilon of aggregations that ran with these multipliers, one each, from dp-accounting's RDP accountant.

    :func:`client_level_epsilon` for rounds whose multipliers differ (see
    :func:`effective_multiplier`); no subsampling is assumed.

    Raises
    ------
    ValueError
        On a negative multiplier or ``delta`` outside (0, 1).
    """
    from dp_accounting import dp_event, rdp

    zs = [float(z) for z in multipliers]
    if any(not z >= 0 for z in zs):
        raise ValueError(f"multipliers must be non-negative, got {zs}")
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    if not zs:
        return 0.0
    if min(zs) == 0:
        return math.inf
    accountant = rdp.RdpAccountant()
    with _quiet_absl():
        accountant.compose(dp_event.ComposedDpEvent([dp_event.GaussianDpEvent(z) for z in zs]))
        return float(accountant.get_epsilon(delta))


def noise_multiplier_for(
    target_epsilon: float,
    rounds: int,
    delta: float,
    sampling_rate: float = 1.0,
    *,
    rtol: float = 1e-4,
) -> float:
    """Returns the smallest noise multiplier (to ``rtol``) whose :func:`client_level_epsilon` is <= the target.

    Bisection over the accountant: epsilon decreases monotonically in the
    noise multiplier. The returned value always satisfies the target.

    Parameters
    ----------
    target_epsilon : float
        Positive.
    rounds : int
        Positive.
    delta : float
    sampling_rate : float
    rtol : float
        Relative width of the final bracket.

    Raises
    ------
    ValueError
        If an argument is out of range, or no multiplier up to 1e6 reaches the target.
    """
    if not target_epsilon > 0:
        raise ValueError(f"target_epsilon must be positive, got {target_epsilon}")
    if not isinstance(rounds, int) or rounds <= 0:
        raise ValueError(f"rounds must be a positive integer, got {rounds!r}")

    def eps(z: float) -> float:
        return client_level_epsilon(z, rounds, delta, sampling_rate)

    lo, hi = 0.0, 1.0
    while eps(hi) > target_epsilon:
        lo, hi = hi, 2.0 * hi
        if hi > _MAX_NOISE_MULTIPLIER:
            raise ValueError(f"no noise multiplier up to {_MAX_NOISE_MULTIPLIER:g} reaches epsilon {target_epsilon}")
    while hi - lo > rtol * hi:
        mid = 0.5 * (lo + hi)
        if eps(mid) <= target_epsilon:
            hi = mid
        else:
            lo = mid
    return hi
