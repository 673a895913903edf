"""End-to-end kernel benchmarks: xcloud against AES-256-GCM, TenSEAL and OpenFHE on the same float32 payload.

One pytest-benchmark group per operation and size ("encrypt-1M", "decrypt-10M",
"aggregate-10x1M", ...), so ``--benchmark-group-by=group`` (the default) puts
the implementations side by side. Each benchmark records in ``extra_info``:
values/s (best round), bytes per value of the ciphertext, and for xcloud the
max absolute error of a decryption (log2 and bits).

Benchmarks, not tests: nothing here asserts a time. See bench/conftest.py for
how to run them; bench/compare.py gives the same numbers as one table.
"""

from __future__ import annotations

import benchlib as bl
import pytest

ROUNDS = 3
WARMUP_ROUNDS = 1


def _params() -> list:
    params = []
    for n in bl.SIZES:  # size outermost: each implementation keeps one size's inputs at a time
        marks = [pytest.mark.bench_large] if n >= bl.LARGE_SIZE else []
        for case in bl.all_cases():
            params.append(pytest.param(case, n, id=case.ident(n), marks=marks))
    return params


@pytest.mark.parametrize(("case", "n"), _params())
def test_kernel(benchmark, case: bl.Case, n: int) -> None:
    # Prepare
    try:
        prep = case.prepare(n)
    except bl.Unavailable as e:
        pytest.skip(str(e))
    benchmark.group = case.group(n)
    benchmark.name = case.ident(n)

    # Execute
    share = bl.CpuShare()
    result = benchmark.pedantic(prep.run, rounds=ROUNDS, iterations=1, warmup_rounds=WARMUP_ROUNDS)
    other_cores = share.other_cores()

    # Record (no assertion on time)
    stats = getattr(benchmark, "stats", None)
    best = stats.stats.min if stats else None
    m = bl.metrics(case, prep, n, best if best else float("nan"), result)
    benchmark.extra_info.update(
        {
            "implementation": case.label,
            "threads": case.threads_used,
            "values": prep.values,
            "values_per_s": m["values_per_s"],
            "bytes_per_value": m["bytes_per_value"],
            "log2_max_abs_error": m["log2_max_abs_error"],
            "precision_bits": m["precision_bits"],
            "self_timed": m["self_timed"],  # True: values_per_s is the peer's own timing (out of process)
            "other_cpu_cores": other_cores,  # CPU used by other processes meanwhile (contention)
        }
    )
    if "consumed_GBps" in m:
        benchmark.extra_info["consumed_GBps"] = m["consumed_GBps"]
