"""pytest configuration of xcloud's end-to-end benchmarks (not collected by the test run).

Run explicitly::

    python -m pytest bench -q -p no:cacheprovider --benchmark-only
    XCLOUD_BENCH_LARGE=1 python -m pytest bench ...   # also the 10M-value cases

The 10M-value cases carry the ``bench_large`` marker (so ``-m "not bench_large"``
deselects them) and are skipped unless ``XCLOUD_BENCH_LARGE=1``.
"""

from __future__ import annotations

import os
import sys

import pytest

# benchlib.py sits next to this file; make it importable under any --import-mode.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

LARGE_ENV = "XCLOUD_BENCH_LARGE"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"bench_large: 10M-value benchmarks (slow, ~GB of memory); run only with {LARGE_ENV}=1"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(LARGE_ENV) == "1":
        return
    skip = pytest.mark.skip(reason=f"10M-value benchmark: set {LARGE_ENV}=1 to run it")
    for item in items:
        if item.get_closest_marker("bench_large") is not None:
            item.add_marker(skip)
