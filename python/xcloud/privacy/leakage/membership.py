"""Membership inference by a loss threshold (Yeom et al. 2018).

Yeom, Giacomelli, Fredrikson and Jha, "Privacy Risk in Machine Learning:
Analyzing the Connection to Overfitting" (CSF 2018): guess that a record was
in the training set when the model's loss on it is at most the model's
expected training loss. The membership advantage is the attack's true
positive rate minus its false positive rate (0 for a model that does not
overfit, up to 1). The threshold-free counterpart is the ROC AUC of the
negated loss as a membership score (0.5 = chance).

Here a record is one note and its loss is the mean token cross-entropy of the
note under the model; members are a client's training notes, non-members
held-out notes of the same distribution.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from xcloud.models.tiny_gpt import IGNORE_INDEX
from xcloud.privacy.leakage.tokens import roc_auc

__all__ = ["MembershipResult", "loss_threshold_attack", "per_example_losses"]


@dataclass(frozen=True)
class MembershipResult:
    """The loss-threshold attack on one model.

    Attributes
    ----------
    auc : float
        ROC AUC of ``-loss`` as a membership score.
    advantage : float
        TPR - FPR at ``threshold``.
    threshold : float
        Loss at or below which a record is called a member.
    tpr, fpr : float
    members, non_members : int
    """

    auc: float
    advantage: float
    threshold: float
    tpr: float
    fpr: float
    members: int
    non_members: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@torch.no_grad()
def per_example_losses(model: torch.nn.Module, dataset: Any, batch_size: int = 128) -> np.ndarray:
    """Mean token cross-entropy (nats) of every example of ``dataset`` under ``model``, shape (N,).

    Raises
    ------
    ValueError
        If the dataset is empty or an example has no target that counts.
    """
    from xcloud.models.training import collate

    n = len(dataset)
    if n == 0:
        raise ValueError("cannot compute losses of an empty dataset")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = np.empty(n, dtype=np.float64)
    try:
        for a in range(0, n, batch_size):
            x, y = (t.to(device) for t in collate(dataset, range(a, min(a + batch_size, n))))
            logits, _ = model(x)  # (B, T, V)
            B, T, V = logits.shape
            tok = torch.nn.functional.cross_entropy(
                logits.reshape(B * T, V).float(), y.reshape(B * T), ignore_index=IGNORE_INDEX, reduction="none"
            ).view(B, T)
            counts = (y != IGNORE_INDEX).sum(1)
            if bool((counts == 0).any()):
                raise ValueError("an example has no target that counts")
            out[a : a + B] = (tok.sum(1) / counts).double().cpu().numpy()
    finally:
        model.train(was_training)
    return out


def loss_threshold_attack(
    member_losses: np.ndarray, non_member_losses: np.ndarray, threshold: float | None = None
) -> MembershipResult:
    """Yeom et al.'s attack: member iff loss <= ``threshold`` (default: the members' mean loss).

    The default threshold is the expected training loss, which Yeom et al.'s
    adversary is assumed to know (the training loss is reported anyway).

    Raises
    ------
    ValueError
        If either set is empty or holds non-finite losses.
    """
    m = np.asarray(member_losses, dtype=np.float64).ravel()
    o = np.asarray(non_member_losses, dtype=np.float64).ravel()
    if m.size == 0 or o.size == 0:
        raise ValueError("membership inference needs members and non-members")
    if not (np.all(np.isfinite(m)) and np.all(np.isfinite(o))):
        raise ValueError("losses must be finite")
    t = float(m.mean()) if threshold is None else float(threshold)
    tpr = float((m <= t).mean())
    fpr = float((o <= t).mean())
    scores = -np.concatenate([m, o])
    labels = np.r_[np.ones(m.size, bool), np.zeros(o.size, bool)]
    return MembershipResult(roc_auc(scores, labels), tpr - fpr, t, tpr, fpr, int(m.size), int(o.size))
