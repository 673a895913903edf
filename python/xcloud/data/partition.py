"""Partitioners: which notes go to which client (cloud).

Each partitioner returns one sorted int64 index array per client; the arrays
are disjoint, cover ``range(n)`` and are never empty. Each is a pure function
of its arguments (the seed feeds numpy's Generator; synthetic splits, not key
material).

- :func:`natural`: client ``i`` holds hospital ``i``'s notes (the realistic,
  non-IID split of the paper's setting).
- :func:`iid`: a uniformly random split into near-equal parts.
- :func:`dirichlet`: label skew over hospitals (Hsu, Qi and Brown 2019,
  "Measuring the Effects of Non-Identical Data Distribution for Federated
  Visual Classification"): for each hospital, its notes are divided among the
  clients in proportions drawn from Dirichlet(alpha); small alpha gives each
  client few hospitals, large alpha approaches IID.
- :func:`quantity_skew`: unequal sizes, proportions from Dirichlet(alpha)
  (Li et al. 2022, "Federated Learning on Non-IID Data Silos: An Experimental
  Study"), every client at least one note.

:func:`partition` dispatches by name; :func:`label_skew` measures how
non-IID a partition is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["SCHEMES", "dirichlet", "iid", "label_skew", "natural", "partition", "quantity_skew"]

SCHEMES: tuple[str, ...] = ("natural", "iid", "dirichlet", "quantity")
"""Names :func:`partition` accepts (``"quantity_skew"`` is an alias of ``"quantity"``)."""


def _labels(hospital_labels: ArrayLike) -> np.ndarray:
    labels = np.asarray(hospital_labels)
    if labels.ndim != 1:
        raise ValueError(f"hospital labels must be one-dimensional, got shape {labels.shape}")
    if labels.size == 0:
        raise ValueError("cannot partition zero notes")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"hospital labels must be integers, got dtype {labels.dtype}")
    if labels.min() < 0:
        raise ValueError(f"hospital labels must be non-negative, got {int(labels.min())}")
    return labels.astype(np.int64, copy=False)


def _check_counts(n: int, clients: int) -> None:
    if int(n) != n or n < 1:
        raise ValueError(f"cannot partition {n!r} notes: need at least one")
    if int(clients) != clients or clients < 1:
        raise ValueError(f"clients must be a positive int, got {clients!r}")
    if clients > n:
        raise ValueError(f"cannot give {clients} clients at least one note each from {n} notes")


def _check_alpha(alpha: float) -> None:
    if not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a positive finite number, got {alpha!r}")


def _check_seed(seed: int) -> None:
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")


def natural(hospital_labels: ArrayLike) -> list[np.ndarray]:
    """Client ``i`` gets the notes of hospital ``i``.

    Parameters
    ----------
    hospital_labels : ArrayLike
        Hospital of each note, integers ``0..H-1``.

    Returns
    -------
    list[np.ndarray]
        ``H`` sorted index arrays.

    Raises
    ------
    ValueError
        If the labels are empty, not non-negative integers, or some hospital
        below the largest label has no notes (its client would be empty).
    """
    labels = _labels(hospital_labels)
    counts = np.bincount(labels)
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        raise ValueError(f"hospitals {empty.tolist()} have no notes, so their clients would be empty")
    return [np.flatnonzero(labels == h).astype(np.int64) for h in range(counts.size)]


def iid(n: int, clients: int, seed: int = 0) -> list[np.ndarray]:
    """A uniformly random split of ``range(n)`` into ``clients`` parts whose sizes differ by at most one.

    Raises
    ------
    ValueError
        If ``n < clients``, ``clients < 1`` or ``seed < 0``.
    """
    _check_counts(n, clients)
    _check_seed(seed)
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(part).astype(np.int64) for part in np.array_split(order, clients)]


def dirichlet(hospital_labels: ArrayLike, clients: int, alpha: float = 0.5, seed: int = 0) -> list[np.ndarray]:
    """Label skew over hospitals: each hospital's notes split by Dirichlet(alpha) proportions.

    For every hospital (in label order) the client proportions ``p ~
    Dirichlet(alpha * ones(clients))`` are drawn, the hospital's notes are
    shuffled and cut at ``cumsum(p) * count``. A client left empty then takes
    one random note from the currently largest client, in client order, so
    every client is non-empty whatever alpha (a deterministic repair rather than
    redrawing, which may never end for tiny alpha).

    Parameters
    ----------
    hospital_labels : ArrayLike
        Hospital of each note (non-negative integers).
    clients : int
        Number of clients, at most the number of notes.
    alpha : float
        Concentration; 0.1 is strongly skewed, 100 nearly IID.
    seed : int
        Non-negative seed.

    Raises
    ------
    ValueError
        If the labels are invalid, ``clients`` is out of range, or ``alpha`` is not positive and finite.
    """
    labels = _labels(hospital_labels)
    _check_counts(labels.size, clients)
    _check_alpha(alpha)
    _check_seed(seed)
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in range(clients)]
    for h in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == h))
        p = rng.dirichlet(np.full(clients, alpha))
        cuts = np.round(np.cumsum(p)[:-1] * idx.size).astype(np.int64)
        for c, piece in enumerate(np.split(idx, cuts)):
            parts[c].extend(piece.tolist())
    for c in range(clients):
        if not parts[c]:
            donor = max(range(clients), key=lambda k: (len(parts[k]), -k))
            parts[c].append(parts[donor].pop(int(rng.integers(len(parts[donor])))))
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]


def quantity_skew(n: int, clients: int, alpha: float = 0.5, seed: int = 0) -> list[np.ndarray]:
    """A random split of ``range(n)`` with sizes skewed by Dirichlet(alpha) proportions.

    Each client first gets one note; the other ``n - clients`` are assigned
    by a multinomial draw with proportions ``p ~ Dirichlet(alpha *
    ones(clients))``; the notes themselves are a random permutation. Small
    alpha gives very unequal sizes, large alpha nearly equal ones.

    Raises
    ------
    ValueError
        If ``n < clients``, ``clients < 1``, ``alpha`` is not positive and finite, or ``seed < 0``.
    """
    _check_counts(n, clients)
    _check_alpha(alpha)
    _check_seed(seed)
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(clients, alpha))
    sizes = 1 + rng.multinomial(n - clients, p)
    order = rng.permutation(n)
    return [np.sort(part).astype(np.int64) for part in np.split(order, np.cumsum(sizes)[:-1])]


def partition(
    scheme: str,
    hospital_labels: ArrayLike,
    clients: int | None = None,
    *,
    alpha: float = 0.5,
    seed: int = 0,
) -> list[np.ndarray]:
    """Partition notes among clients by the named scheme.

    Parameters
    ----------
    scheme : str
        One of :data:`SCHEMES` (``"quantity_skew"`` also names ``"quantity"``).
    hospital_labels : ArrayLike
        Hospital of each note; ``iid`` and ``quantity`` use only its length.
    clients : int or None
        Number of clients; ``None`` means one per hospital. For ``natural`` it
        must be ``None`` or the number of hospitals.
    alpha : float
        Dirichlet concentration for ``dirichlet`` and ``quantity``.
    seed : int
        Non-negative seed (``natural`` ignores it).

    Raises
    ------
    ValueError
        If the scheme is unknown, or the request is impossible (more clients
        than notes, no notes, an empty hospital for ``natural``, a bad alpha).
    """
    labels = _labels(hospital_labels)
    name = "quantity" if scheme == "quantity_skew" else scheme
    if name not in SCHEMES:
        raise ValueError(f"unknown partition scheme {scheme!r}; choose one of {list(SCHEMES)}")
    hospitals = int(labels.max()) + 1
    if clients is None:
        clients = hospitals
    if name == "natural":
        if clients != hospitals:
            raise ValueError(f"the natural partition has one client per hospital ({hospitals}), not {clients}")
        return natural(labels)
    if name == "iid":
        return iid(labels.size, clients, seed)
    if name == "dirichlet":
        return dirichlet(labels, clients, alpha, seed)
    return quantity_skew(labels.size, clients, alpha, seed)


def label_skew(parts: Sequence[ArrayLike], hospital_labels: ArrayLike) -> float:
    """Mean total-variation distance between each client's hospital mix and the overall mix.

    0 when every client has the overall mix; ``1 - 1/H`` when each client
    holds exactly one of ``H`` equally large hospitals.

    Raises
    ------
    ValueError
        If ``parts`` is empty or a part is empty.
    """
    labels = _labels(hospital_labels)
    if len(parts) == 0:
        raise ValueError("no parts")
    k = int(labels.max()) + 1
    overall = np.bincount(labels, minlength=k) / labels.size
    distances = []
    for c, part in enumerate(parts):
        idx = np.asarray(part, dtype=np.int64)
        if idx.size == 0:
            raise ValueError(f"part {c} is empty")
        mix = np.bincount(labels[idx], minlength=k) / idx.size
        distances.append(0.5 * float(np.abs(mix - overall).sum()))
    return float(np.mean(distances))
