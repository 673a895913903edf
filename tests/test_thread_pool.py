"""The persistent thread pool behind block-parallel encryption (cpp/src/parallel).

Its contract (parallel_for.h): every block runs exactly once on some worker,
the results do not depend on the number of threads, and when blocks fail the
exception of the smallest failing block reaches the caller unchanged. The pool
is reused across calls, falls back to threads of its own when busy (calls from
several Python threads), and a forked child gets a fresh pool.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import xcloud

SEED = bytes(32 * [5])


@pytest.mark.parametrize("threads", [2, 3, 8])
def test_smallest_failing_block_is_reported(small_ctx, small_keys, threads):
    # Prepare: bad values in blocks 3, 7 and 12 (of 16); block 3 holds the first.
    n = small_ctx.n
    x = np.zeros(16 * n)
    x[12 * n + 5] = np.nan
    x[7 * n + 1] = 2.0
    x[3 * n + 9] = -3.0
    for _ in range(10):  # the blocks race to fail first; the answer must not
        # Execute / Assert
        with pytest.raises(ValueError, match=rf"at flat index {3 * n + 9} "):
            xcloud.encrypt_blocks(small_keys, x, threads=threads)


def test_many_small_calls_reuse_the_pool(small_keys, small_ctx):
    # Prepare: two blocks per call, so each call is mostly pool overhead.
    x = np.linspace(-1, 1, 2 * small_ctx.n)
    reference = xcloud.encrypt_blocks_derand(small_keys, x, SEED, threads=1).to_bytes()
    # Execute / Assert
    for _ in range(200):
        assert xcloud.encrypt_blocks_derand(small_keys, x, SEED, threads=2).to_bytes() == reference


def test_busy_pool_falls_back_to_own_threads(small_keys, small_ctx):
    # Prepare: several Python threads call the kernel at once (GIL released),
    # so most calls find the pool taken.
    x = np.linspace(-1, 1, 9 * small_ctx.n + 3)
    expected = xcloud.encrypt_blocks_derand(small_keys, x, SEED, threads=1).to_bytes()

    def run(_: int) -> bytes:
        return xcloud.encrypt_blocks_derand(small_keys, x, SEED, threads=2).to_bytes()

    # Execute
    with ThreadPoolExecutor(max_workers=4) as ex:
        results = list(ex.map(run, range(24)))
    # Assert
    assert all(r == expected for r in results)


_FORK_CHILD = """
import os, sys
import numpy as np
import xcloud
ctx = xcloud.CkksContext.insecure(log_n=10)
keys = ctx.keygen_derand(bytes(32))
x = np.linspace(-1, 1, 6 * ctx.n)
parent = xcloud.encrypt_blocks_derand(keys, x, bytes(32), threads=2).to_bytes()  # starts the pool
pid = os.fork()
if pid == 0:
    child = xcloud.encrypt_blocks_derand(keys, x, bytes(32), threads=2).to_bytes()
    os._exit(0 if child == parent else 3)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="fork semantics checked on Linux only")
def test_forked_child_gets_a_working_pool():
    # A child inherits no pool threads: it must start its own, not wait forever.
    done = subprocess.run([sys.executable, "-c", _FORK_CHILD], check=False, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
