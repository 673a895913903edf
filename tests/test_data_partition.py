"""Tests of the partitioners (xcloud.data.partition): validity, determinism and skew."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xcloud.data import SCHEMES, dirichlet, iid, label_skew, natural, partition, quantity_skew

# Four hospitals of unequal size, as in a real federation.
LABELS = np.repeat(np.arange(4), [300, 250, 200, 150])


def assert_valid_partition(parts: Sequence[np.ndarray], n: int, clients: int) -> None:
    assert len(parts) == clients
    for part in parts:
        assert part.dtype == np.int64
        assert part.size > 0
        assert np.all(np.diff(part) > 0)  # sorted, no duplicate within a client
    everything = np.concatenate(parts)
    assert everything.size == n  # disjoint ...
    assert np.array_equal(np.sort(everything), np.arange(n))  # ... and covering


@pytest.mark.parametrize("scheme", ["iid", "dirichlet", "quantity"])
@pytest.mark.parametrize("clients", [1, 3, 4, 10])
def test_partitions_are_disjoint_covering_and_non_empty(scheme: str, clients: int) -> None:
    # Execute
    parts = partition(scheme, LABELS, clients, alpha=0.3, seed=11)

    # Assert
    assert_valid_partition(parts, LABELS.size, clients)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=300),
    clients=st.integers(min_value=1, max_value=40),
    hospitals=st.integers(min_value=1, max_value=6),
    alpha=st.floats(min_value=1e-3, max_value=1e3),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    scheme=st.sampled_from(["iid", "dirichlet", "quantity"]),
)
def test_every_feasible_request_gives_a_valid_partition(
    n: int, clients: int, hospitals: int, alpha: float, seed: int, scheme: str
) -> None:
    # Prepare
    labels = np.arange(n) % hospitals
    clients = min(clients, n)

    # Execute
    parts = partition(scheme, labels, clients, alpha=alpha, seed=seed)

    # Assert
    assert_valid_partition(parts, n, clients)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_partitions_are_pure_functions_of_their_arguments(scheme: str) -> None:
    # Execute
    first = partition(scheme, LABELS, None, alpha=0.5, seed=3)
    second = partition(scheme, LABELS, None, alpha=0.5, seed=3)

    # Assert
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


@pytest.mark.parametrize("scheme", ["iid", "dirichlet", "quantity"])
def test_a_different_seed_gives_a_different_partition(scheme: str) -> None:
    # Execute
    a = partition(scheme, LABELS, 4, alpha=0.5, seed=1)
    b = partition(scheme, LABELS, 4, alpha=0.5, seed=2)

    # Assert
    assert any(not np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_natural_gives_client_i_the_notes_of_hospital_i() -> None:
    # Execute
    parts = natural(LABELS)

    # Assert
    assert_valid_partition(parts, LABELS.size, 4)
    for h, part in enumerate(parts):
        assert np.all(LABELS[part] == h)
        assert part.size == np.count_nonzero(h == LABELS)
    assert label_skew(parts, LABELS) > 0.7


def test_iid_sizes_differ_by_at_most_one_and_mixes_match() -> None:
    # Execute
    parts = iid(LABELS.size, 7, seed=0)

    # Assert
    sizes = [p.size for p in parts]
    assert max(sizes) - min(sizes) <= 1
    assert label_skew(parts, LABELS) < 0.1


def test_small_dirichlet_alpha_skews_hospital_mixes_more_than_large_alpha() -> None:
    # Execute: average over seeds, so the comparison is not one lucky draw.
    skew_small = np.mean([label_skew(dirichlet(LABELS, 4, 0.1, s), LABELS) for s in range(10)])
    skew_large = np.mean([label_skew(dirichlet(LABELS, 4, 100.0, s), LABELS) for s in range(10)])

    # Assert
    assert skew_small > 0.4
    assert skew_large < 0.1
    assert skew_small > 4 * skew_large


def test_small_quantity_alpha_gives_more_unequal_sizes() -> None:
    # Prepare
    def size_spread(alpha: float) -> float:
        spreads = []
        for seed in range(10):
            sizes = np.array([p.size for p in quantity_skew(LABELS.size, 8, alpha, seed)])
            spreads.append(sizes.std() / sizes.mean())
        return float(np.mean(spreads))

    # Execute
    spread_small, spread_large = size_spread(0.1), size_spread(100.0)

    # Assert
    assert spread_small > 1.0
    assert spread_large < 0.2


def test_quantity_skew_alias_names_the_same_scheme() -> None:
    # Execute
    a = partition("quantity_skew", LABELS, 5, alpha=0.2, seed=4)
    b = partition("quantity", LABELS, 5, alpha=0.2, seed=4)

    # Assert
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_dirichlet_with_tiny_alpha_still_fills_every_client() -> None:
    # Execute: with alpha 1e-4 nearly every hospital goes to a single client.
    parts = dirichlet(LABELS, 12, alpha=1e-4, seed=0)

    # Assert
    assert_valid_partition(parts, LABELS.size, 12)


# --- bad input ---


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: partition("round_robin", LABELS, 4), "unknown partition scheme"),
        (lambda: partition("iid", LABELS, LABELS.size + 1), "cannot give"),
        (lambda: partition("dirichlet", np.zeros(3, dtype=int), 4), "cannot give"),
        (lambda: partition("iid", LABELS, 0), "clients"),
        (lambda: partition("natural", LABELS, 3), "one client per hospital"),
        (lambda: partition("dirichlet", LABELS, 4, alpha=0.0), "alpha"),
        (lambda: partition("quantity", LABELS, 4, alpha=float("nan")), "alpha"),
        (lambda: partition("iid", LABELS, 4, seed=-1), "seed"),
        (lambda: partition("iid", np.array([], dtype=int), 1), "zero notes"),
        (lambda: partition("iid", np.array([0.5, 1.0]), 1), "integers"),
        (lambda: partition("iid", np.array([-1, 0]), 1), "non-negative"),
        (lambda: natural(np.array([0, 0, 2])), "no notes"),
        (lambda: iid(3, 4), "cannot give"),
        (lambda: quantity_skew(0, 1), "at least one"),
        (lambda: label_skew([], LABELS), "no parts"),
    ],
)
def test_impossible_requests_raise_value_error(call: object, message: str) -> None:
    # Execute / Assert
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]
