"""Configuration of a federated run: one dataclass, loadable from TOML, overridable from the CLI."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import tomllib

__all__ = ["METHODS", "RunConfig", "load_config"]

METHODS = ("centralized", "fedavg", "he", "dp", "xcloud")


@dataclass
class RunConfig:
    """Everything that defines a run. ``help`` metadata feeds ``xcloud run --help``."""

    method: str = field(
        default="xcloud",
        metadata={
            "help": "centralized (one model on the pooled data; per round the same steps and examples as the "
            "clouds together), fedavg (plain updates), he (everything encrypted), "
            "dp (record-level DP-SGD, plain updates), xcloud (hybrid encryption + dynamic weights + DP)"
        },
    )
    clouds: int = field(default=4, metadata={"help": "number of clouds (federated clients)"})
    rounds: int = field(default=10, metadata={"help": "federated rounds"})
    local_steps: int = field(default=10, metadata={"help": "local optimizer steps per client and round"})
    batch_size: int = field(default=16, metadata={"help": "sequences per local step"})
    lr: float = field(default=3e-3, metadata={"help": "AdamW learning rate of local training"})
    seed: int = field(default=0, metadata={"help": "seed of data generation, partitioning, model init and sampling"})
    notes_per_hospital: int = field(default=300, metadata={"help": "synthetic ICU notes per hospital"})
    data: str = field(default="", metadata={"help": "directory of your own .txt/.jsonl files (default: synthetic)"})
    partition: str = field(
        default="natural", metadata={"help": "natural (by hospital), iid, dirichlet, quantity (size skew)"}
    )
    dirichlet_alpha: float = field(default=0.5, metadata={"help": "concentration of the dirichlet/quantity splits"})
    val_fraction: float = field(default=0.15, metadata={"help": "fraction of each client's notes held out"})
    vocab_size: int = field(default=2000, metadata={"help": "largest word vocabulary"})
    block_size: int = field(
        default=128, metadata={"help": "tokens per training example (one note each; notes are cut beyond it)"}
    )
    n_layer: int = field(default=2, metadata={"help": "transformer blocks"})
    n_head: int = field(default=4, metadata={"help": "attention heads"})
    n_embd: int = field(default=64, metadata={"help": "model width"})
    hf_model: str = field(
        default="",
        metadata={
            "help": "local Hugging Face causal-LM directory (with its tokenizer) to fine-tune with LoRA; only the "
            "adapters are federated, and all of them are encrypted (needs the [hf] extra)"
        },
    )
    lora_r: int = field(default=8, metadata={"help": "LoRA rank with --hf-model"})
    key_mode: str = field(
        default="shared",
        metadata={"help": "shared (clients share the secret key) or public (clients hold the public key only)"},
    )
    encrypt_fraction: float = field(
        default=0.0,
        metadata={"help": "xcloud method: fraction of the update encrypted beyond the embedding and output head"},
    )
    dp_epsilon: float = field(default=8.0, metadata={"help": "record-level DP budget per client (dp, xcloud)"})
    dp_delta: float = field(default=1e-5, metadata={"help": "record-level DP delta"})
    dp_max_grad_norm: float = field(default=1.0, metadata={"help": "per-example gradient clip of DP-SGD"})
    client_dp_noise: float = field(
        default=0.0,
        metadata={
            "help": "client-level DP noise multiplier z (0: off): each update is clipped to client_clip and gets "
            "a 1/sqrt(K) share of N(0, (z*client_clip)^2) noise; weights become uniform"
        },
    )
    client_clip: float = field(default=1.0, metadata={"help": "client-level DP: L2 clip norm of each update"})
    weight_alpha: float = field(default=0.5, metadata={"help": "dynamic weights: exponent of relative bandwidth"})
    weight_beta: float = field(default=1.0, metadata={"help": "dynamic weights: exponent of inverse relative loss"})
    max_share: float = field(default=0.5, metadata={"help": "dynamic weights: largest share of one client"})
    bandwidths_mbps: list[float] = field(
        default_factory=lambda: [1000.0, 500.0, 100.0, 50.0],
        metadata={"help": "uplink bandwidth of each cloud in Mbit/s (cycled when there are more clouds)"},
    )
    server_lr: float = field(
        default=1.0, metadata={"help": "global step size applied to the decrypted aggregate (FedAvgM's eta)"}
    )
    server_momentum: float = field(
        default=0.0,
        metadata={
            "help": "momentum of the global update (FedAvgM's beta; 0: plain FedAvg); applied identically by every "
            "cloud after decryption, so the server never needs the plaintext"
        },
    )
    min_clients: int = field(default=2, metadata={"help": "a round needs at least this many valid updates"})
    threads: int = field(default=0, metadata={"help": "CKKS worker threads (0: all cores)"})
    device: str = field(default="auto", metadata={"help": "training device: auto, cpu, cuda"})
    out: str = field(default="runs", metadata={"help": "directory under which the run directory is created"})

    def validate(self) -> None:
        """Raises ValueError for an inconsistent configuration."""
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        for name in ("clouds", "rounds", "local_steps", "batch_size", "notes_per_hospital", "block_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.key_mode not in ("shared", "public"):
            raise ValueError("key_mode must be 'shared' or 'public'")
        if not 0.0 <= self.encrypt_fraction <= 1.0:
            raise ValueError("encrypt_fraction must be in [0, 1]")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError("val_fraction must be in (0, 1)")
        if not 1 <= self.min_clients <= self.clouds:
            raise ValueError(f"min_clients must be in [1, clouds={self.clouds}]")
        if not self.bandwidths_mbps or any(b <= 0 for b in self.bandwidths_mbps):
            raise ValueError("bandwidths_mbps must list positive numbers")
        if self.client_dp_noise < 0 or self.client_clip <= 0:
            raise ValueError("client_dp_noise must be >= 0 and client_clip > 0")
        if not self.server_lr > 0 or not 0.0 <= self.server_momentum < 1.0:
            raise ValueError("server_lr must be > 0 and server_momentum in [0, 1)")
        if self.threads < 0:
            raise ValueError("threads must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_toml(self) -> str:
        lines = []
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, str):
                lines.append(f'{f.name} = "{v}"')
            elif isinstance(v, bool):
                lines.append(f"{f.name} = {'true' if v else 'false'}")
            elif isinstance(v, list):
                lines.append(f"{f.name} = [{', '.join(repr(float(x)) for x in v)}]")
            else:
                lines.append(f"{f.name} = {v!r}")
        return "\n".join(lines) + "\n"


def load_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Reads a TOML file (top-level keys or an ``[xcloud]`` table) and applies overrides.

    Raises
    ------
    ValueError
        Unknown keys, wrong types, or an invalid configuration.
    """
    data: dict[str, Any] = {}
    if path:
        try:
            with open(path, "rb") as f:
                raw = tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{path}: not valid TOML: {e}") from None
        data = raw.get("xcloud", raw)
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    known = {f.name: f for f in fields(RunConfig)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"unknown configuration keys: {', '.join(unknown)}")
    kwargs: dict[str, Any] = {}
    defaults = RunConfig()
    for k, v in data.items():
        want = type(getattr(defaults, k))
        if want is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if want is list:
            if not isinstance(v, list):
                raise ValueError(f"{k} must be a list")
            v = [float(x) for x in v]
        elif not isinstance(v, want) or (want is int and isinstance(v, bool)):
            raise ValueError(f"{k} must be of type {want.__name__}, got {v!r}")
        kwargs[k] = v
    cfg = RunConfig(**kwargs)
    cfg.validate()
    return cfg
