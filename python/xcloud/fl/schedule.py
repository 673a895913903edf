"""Round-wise schedule of the local learning rates.

Each round every cloud starts a fresh AdamW from the global model, so the
learning rate is a per-round quantity: a schedule here is a factor on
``lr`` (and on ``dp_lr`` for DP-SGD) that depends only on the round and the
run's number of rounds. Every cloud computes the same factor from the round
it trains in, so nothing about it travels.

- ``constant``: factor 1 in every round (the historical behaviour).
- ``cosine``: the rates stay constant, then follow half a cosine from 1
  down towards ``final`` over the last ``k = max(1, round(decay * rounds))``
  rounds: ``final + (1 - final) * (1 + cos(pi * (r - s) / k)) / 2`` in
  round ``r >= s = rounds - k``. With ``decay = 1`` (the default) the whole
  run decays, ``final + (1 - final) * (1 + cos(pi * r / rounds)) / 2``; the
  last round trains just above ``final`` times the rate. DP-SGD's rate may
  decay towards its own final factor over its own share of the rounds
  (``RunConfig.dp_lr_final``, ``RunConfig.dp_lr_decay``).

Measured effect (README, "Learning-rate schedule"): on non-IID clouds with
ten times the default records a cosine decay over the whole run lets FedAvg
keep improving where a constant rate stalls, and DP-SGD, which still gains
from full steps late in the run, loses by it; a decay over the last rounds
only keeps most of DP-SGD's progress.
"""

from __future__ import annotations

import math

__all__ = ["LR_SCHEDULES", "check_schedule", "lr_factor"]

#: The schedules ``--lr-schedule`` accepts.
LR_SCHEDULES = ("constant", "cosine")


def check_schedule(schedule: str, final: float, decay: float) -> None:
    """Raises ValueError for an unknown schedule, ``final`` outside [0, 1] or ``decay`` outside (0, 1]."""
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {schedule!r}")
    if not 0.0 <= final <= 1.0:
        raise ValueError(f"lr_final must be in [0, 1], got {final}")
    if not 0.0 < decay <= 1.0:
        raise ValueError(f"lr_decay must be in (0, 1], got {decay}")


def lr_factor(schedule: str, round_id: int, rounds: int, final: float, decay: float = 1.0) -> float:
    """The factor on the local learning rates in round ``round_id`` of ``rounds``.

    Parameters
    ----------
    schedule : str
        One of :data:`LR_SCHEDULES`.
    round_id : int
        The round (or, in asynchronous runs, the global-model version) the
        cloud trains from; rounds beyond ``rounds`` keep the last factor.
    rounds : int
        The run's number of rounds (at least 1).
    final : float
        ``cosine``: the factor the decay approaches at the end, in [0, 1].
    decay : float
        ``cosine``: the share of the rounds, at the end of the run, over
        which the rates decay, in (0, 1]; before them they stay constant.

    Raises
    ------
    ValueError
        For an unknown schedule, ``rounds < 1``, a negative round,
        ``final`` outside [0, 1] or ``decay`` outside (0, 1].
    """
    check_schedule(schedule, final, decay)
    if rounds < 1 or round_id < 0:
        raise ValueError(f"need rounds >= 1 and round_id >= 0, got round {round_id} of {rounds}")
    if schedule == "constant":
        return 1.0
    k = max(1, round(decay * rounds))  # the decaying rounds, at the end
    start = rounds - k
    r = min(round_id, rounds - 1)
    if r < start:
        return 1.0
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * (r - start) / k))
