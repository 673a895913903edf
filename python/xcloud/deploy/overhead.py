"""Measures the Flower path's overhead against the in-process simulation for the same run.

The same configuration runs three ways, one after the other: the in-process
simulation (:class:`~xcloud.fl.simulation.FederatedRun`), the deployed
protocol in one process (:class:`~xcloud.deploy.loopback.LoopbackTransport`)
and on Flower (a SuperLink and one SuperNode per cloud as separate
processes, TLS and node authentication, :class:`~xcloud.deploy.launcher.LocalFederation`).
Each reports its wall time per round; the machine's load average is
recorded before and after each, since other work on the machine changes
the figures. ``xcloud deploy overhead`` prints the result as JSON.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from xcloud.fl.config import RunConfig

__all__ = ["measure_overhead"]


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _summary(per_round: list[float]) -> dict[str, Any]:
    later = per_round[1:]
    return {
        "round_s": [round(x, 3) for x in per_round],
        "round0_s": round(per_round[0], 3),
        "later_mean_s": round(sum(later) / len(later), 3) if later else None,
    }


def measure_overhead(cfg: RunConfig, root: str | Path | None = None, flower: bool = True) -> dict[str, Any]:
    """Runs ``cfg`` in process, over the loopback transport and (``flower``) on a local Flower federation.

    Returns
    -------
    dict
        Per path: the seconds of every round, round 0 apart (it holds the
        key setup on the deployed paths), the mean of the later rounds, the
        wall time and the load averages (1, 5, 15 min) before and after.
    """
    from xcloud.deploy.config import to_flower_config
    from xcloud.deploy.loopback import LoopbackTransport
    from xcloud.deploy.server import DeployServer
    from xcloud.fl.simulation import FederatedRun

    base = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="xcloud-overhead-"))
    out: dict[str, Any] = {"config": cfg.to_dict(), "cpus": os.cpu_count()}

    load0, t0 = _load(), time.perf_counter()
    sim = FederatedRun(cfg, base / "sim")
    setup_s = time.perf_counter() - t0
    rows = [sim.run_round(r) for r in range(cfg.rounds)]
    out["simulation"] = {
        **_summary([m.round_s for m in rows]),
        "setup_s": round(setup_s, 3),
        "wall_s": round(time.perf_counter() - t0, 3),
        "load_before": load0,
        "load_after": _load(),
    }

    rc = to_flower_config(cfg, work_dir=str(base / "loopback"), final_evaluate=False)
    load0, t0 = _load(), time.perf_counter()
    transport = LoopbackTransport(rc, [{"partition-id": k} for k in range(cfg.clouds)])
    result = DeployServer(transport, rc, sleep=lambda s: None).run_all()
    out["loopback"] = {
        **_summary([r["round_s"] for r in result["rounds"]]),
        "wall_s": round(time.perf_counter() - t0, 3),
        "load_before": load0,
        "load_after": _load(),
    }

    if flower:
        from xcloud.deploy.launcher import LocalFederation

        load0, t0 = _load(), time.perf_counter()
        with LocalFederation(base / "flower", cfg.clouds, node_auth=True) as fed:
            up_s = time.perf_counter() - t0
            result = fed.run_app(cfg, final_evaluate=False)
        out["flower"] = {
            **_summary([r["round_s"] for r in result["rounds"]]),
            "federation_start_s": round(up_s, 3),
            "server_wall_s": round(result["wall_s"], 3),
            "wall_s": round(time.perf_counter() - t0, 3),
            "load_before": load0,
            "load_after": _load(),
        }
    return out
