"""The run configuration of a deployed run: Flower's run config <-> xcloud's :class:`RunConfig`.

A Flower run config holds scalars only (bool, int, float, str) under kebab-case
keys. Every scalar field of :class:`~xcloud.fl.config.RunConfig` is accepted
under its name with dashes (``local-steps``, ``key-mode``); the two list
fields (``links``, ``slowdowns``) as comma-separated strings. The keys in
:data:`DEPLOY_DEFAULTS` configure the deployment itself.

Every party builds the same pieces from the same configuration, as the
simulation does: the data partition (each node keeps its own shard), the
model's layout and initial weights, the protection plan and the strategy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from xcloud.fl.config import RunConfig, load_config

__all__ = ["DEPLOY_DEFAULTS", "DeployOptions", "build_run", "run_config_from_flower", "to_flower_config"]

# Deployment settings, beside the run's own (RunConfig) settings.
DEPLOY_DEFAULTS: dict[str, bool | int | float | str] = {
    "work-dir": "",  # where each party writes its shards and outputs ("" : a temporary directory)
    "metrics-file": "",  # JSON file the ServerApp writes the per-round metrics to ("" : none)
    "round-timeout": 300.0,  # seconds a round waits for updates before closing without the missing clients
    "join-timeout": 300.0,  # seconds the ServerApp waits for `clouds` SuperNodes to connect
    "save-model": False,  # each client writes its final global model to <work-dir>/<client>/final_model.npy
    "final-evaluate": True,  # after the last round, every client applies it and reports its validation loss
    "fault": "",  # fault injection for tests: "CLIENT:ROUND:SECONDS" stalls CLIENT that long in ROUND ("": none)
}

_LIST_FIELDS = {"links": str, "slowdowns": float}


class DeployOptions:
    """The deployment keys of a run config, typed.

    Raises
    ------
    ValueError
        For a timeout that is not positive.
    """

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.work_dir = str(raw.get("work-dir", DEPLOY_DEFAULTS["work-dir"]))
        self.metrics_file = str(raw.get("metrics-file", DEPLOY_DEFAULTS["metrics-file"]))
        self.round_timeout = float(raw.get("round-timeout", DEPLOY_DEFAULTS["round-timeout"]))
        self.join_timeout = float(raw.get("join-timeout", DEPLOY_DEFAULTS["join-timeout"]))
        self.save_model = bool(raw.get("save-model", DEPLOY_DEFAULTS["save-model"]))
        self.final_evaluate = bool(raw.get("final-evaluate", DEPLOY_DEFAULTS["final-evaluate"]))
        self.fault: tuple[str, int, float] | None = None
        if fault := str(raw.get("fault", "")):
            try:
                cid, r, sec = fault.split(":")
                self.fault = (cid, int(r), float(sec))
            except ValueError:
                raise ValueError(f"fault must be CLIENT:ROUND:SECONDS, got {fault!r}") from None
        if not self.round_timeout > 0 or not self.join_timeout > 0:
            raise ValueError("round-timeout and join-timeout must be positive")


def run_config_from_flower(raw: Mapping[str, Any]) -> RunConfig:
    """The :class:`RunConfig` a Flower run config describes (deployment keys are skipped).

    Raises
    ------
    ValueError
        Unknown keys, wrong types or an invalid configuration.
    """
    overrides: dict[str, Any] = {}
    for key, value in raw.items():
        if key in DEPLOY_DEFAULTS:
            continue
        name = key.replace("-", "_")
        if name in _LIST_FIELDS:
            item = _LIST_FIELDS[name]
            if not isinstance(value, str):
                raise ValueError(f"{key} must be a comma-separated string, got {value!r}")
            value = [item(v.strip()) for v in value.split(",") if v.strip()]
        overrides[name] = value
    return load_config(None, overrides)


def to_flower_config(cfg: RunConfig, **deploy: bool | int | float | str) -> dict[str, bool | int | float | str]:
    """The Flower run config of ``cfg`` plus every deployment key (defaults unless given; underscores or dashes)."""
    out: dict[str, bool | int | float | str] = dict(DEPLOY_DEFAULTS)
    for f in fields(RunConfig):
        v = getattr(cfg, f.name)
        key = f.name.replace("_", "-")
        out[key] = ",".join(str(x) for x in v) if isinstance(v, list) else v
    for k, v in deploy.items():
        key = k.replace("_", "-")
        if key not in DEPLOY_DEFAULTS:
            raise ValueError(f"unknown deployment key {k!r}")
        out[key] = v
    return out


def build_run(cfg: RunConfig, work_dir: str | Path) -> Any:
    """The simulation's setup for ``cfg`` (data shards, model, plan, strategy), built under ``work_dir``.

    Each party of a deployment builds it from the same configuration, so all
    agree on the layout, the initial model and the protection plan, and each
    client trains on exactly the shard and with exactly the trainer the
    simulation gives it. Keys made by this setup are never used: the
    deployment replaces them with the keys of its own key setup.
    """
    from xcloud.fl.simulation import FederatedRun  # imports torch and the training stack

    Path(work_dir).mkdir(parents=True, exist_ok=True)
    return FederatedRun(cfg, Path(work_dir))
