"""``xcloud run``: federated training of a small language model across simulated clouds.

Writes a run directory with the resolved config, metrics (JSON and CSV), a PNG
plot, a Markdown report and a checkpoint after every round (``--resume DIR``
continues from it).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import shutil
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from xcloud.data.tokenizer import WordTokenizer
from xcloud.fl.config import METHODS, PLAIN_FEDAVG, RunConfig, load_config
from xcloud.fl.simulation import FederatedRun, RoundMetrics

__all__ = ["add_arguments", "run_from_args", "run_training"]

CHECKPOINT = "checkpoint.pt"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML file with any of the options below (CLI flags override it)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    for f in fields(RunConfig):
        flag = "--" + f.name.replace("_", "-")
        helptext = f.metadata.get("help", "")
        default = RunConfig().__dict__[f.name]
        if f.name == "method":
            p.add_argument(flag, choices=METHODS, default=None, help=f"{helptext} (default: {default})")
        elif isinstance(default, bool):
            p.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=f"{helptext} (default: {default})"
            )
        elif isinstance(default, list):
            item = type(default[0])
            shown = " ".join(str(x) for x in default)
            p.add_argument(flag, type=item, nargs="+", default=None, help=f"{helptext} (default: {shown})")
        else:
            p.add_argument(flag, type=type(default), default=None, help=f"{helptext} (default: {default!r})")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {f.name: getattr(args, f.name) for f in fields(RunConfig) if getattr(args, f.name, None) is not None}


def _table_header() -> str:
    return (
        f"{'round':>5} {'train':>7} {'val':>7} {'ppl':>8} {'up MB':>8} {'down MB':>8} "
        f"{'enc s':>6} {'agg s':>6} {'dec s':>6} {'round s':>7} {'sim s':>7} {'eps':>6} {'ok':>3}"
    )


def _table_row(m: RoundMetrics) -> str:
    eps = f"{m.epsilon:6.2f}" if m.epsilon is not None else f"{'-':>6}"
    return (
        f"{m.round:>5} {m.train_loss:7.3f} {m.val_loss:7.3f} {m.val_ppl:8.2f} {m.bytes_up / 1e6:8.2f} "
        f"{m.bytes_down / 1e6:8.2f} {m.encrypt_s:6.2f} {m.aggregate_s:6.2f} {m.decrypt_s:6.2f} {m.round_s:7.2f} "
        f"{m.sim_round_s:7.2f} "
        f"{eps} {m.accepted:>3}"
    )


def _write_outputs(run: FederatedRun, run_dir: Path, wall_s: float) -> None:
    rows = [m.__dict__ for m in run.metrics]
    (run_dir / "metrics.json").write_text(json.dumps({"config": run.cfg.to_dict(), "rounds": rows}, indent=2))
    with open(run_dir / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()) if rows else ["round"])
        w.writeheader()
        for r in rows:
            w.writerow({k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in r.items()})
    _plot(run, run_dir / "loss.png")
    _report(run, run_dir, wall_s)


def _plot(run: FederatedRun, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = [m.round for m in run.metrics]
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    ax[0].plot(rounds, [m.train_loss for m in run.metrics], "o-", label="train loss")
    ax[0].plot(rounds, [m.val_loss for m in run.metrics], "s-", label="validation loss")
    ax[0].set_xlabel("round")
    ax[0].set_ylabel("cross-entropy (nats)")
    ax[0].legend()
    ax[0].set_title(f"{run.cfg.method}: loss")
    parts = {
        "train": [m.train_s for m in run.metrics],
        "encrypt": [m.encrypt_s for m in run.metrics],
        "aggregate": [m.aggregate_s for m in run.metrics],
        "decrypt": [m.decrypt_s for m in run.metrics],
    }
    bottom = [0.0] * len(rounds)
    for name, vals in parts.items():
        ax[1].bar(rounds, vals, bottom=bottom, label=name)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax[1].set_xlabel("round")
    ax[1].set_ylabel("seconds")
    ax[1].legend()
    ax[1].set_title("time per round")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def crypto_share(metrics: list[RoundMetrics]) -> float:
    """Fraction of the rounds' wall time spent on encryption, aggregation and decryption."""
    total = sum(m.round_s for m in metrics)
    crypto = sum(m.encrypt_s + m.aggregate_s + m.decrypt_s for m in metrics)
    return crypto / total if total > 0 else 0.0


def _dp_batches(run: FederatedRun) -> str:
    """DP-SGD's expected batch per cloud (``dp_batch_size``, capped at a cloud's records), one value if all agree."""
    sizes = sorted({dp.expected_batch_size for dp in run.dp.values()})
    return ", ".join(map(str, sizes))


def _report(run: FederatedRun, run_dir: Path, wall_s: float) -> None:
    cfg = run.cfg
    last = run.metrics[-1]
    lines = [
        f"# xcloud run: {cfg.method}",
        "",
        f"{cfg.clouds} clouds, {len(run.metrics)} rounds of {cfg.local_steps} local steps (batch {cfg.batch_size}"
        f"{f'; DP-SGD: Poisson batches of {_dp_batches(run)} expected' if run.dp else ''}), "
        f"{'synthetic ICU notes' if not cfg.data else cfg.data}, partition `{cfg.partition}`, seed {cfg.seed}.",
        f"Model: {sum(v.numel() for v in run.global_state.values()):,} parameters; "
        f"strategy: {run.strategy.describe()}; encrypted fraction of each update: {run.plan.fraction:.3f}.",
        f"CKKS: {run.ctx!r}.",
        "",
        f"Final validation loss {last.val_loss:.4f} (perplexity {last.val_ppl:.2f}); wall time {wall_s:.1f} s, "
        f"of which {100 * crypto_share(run.metrics):.1f}% cryptography (encrypt + aggregate + decrypt).",
        "",
        _links_line(run),
        "",
        "| round | train loss | val loss | val ppl | bytes up | bytes down | encrypt s | aggregate s | decrypt s "
        "| round s | simulated s | predicted s | epsilon | clients | dropped |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in run.metrics:
        eps = f"{m.epsilon:.2f}" if m.epsilon is not None else "-"
        lines.append(
            f"| {m.round} | {m.train_loss:.4f} | {m.val_loss:.4f} | {m.val_ppl:.2f} | {m.bytes_up:,} | "
            f"{m.bytes_down:,} | {m.encrypt_s:.3f} | {m.aggregate_s:.3f} | {m.decrypt_s:.3f} | {m.round_s:.2f} | "
            f"{m.sim_round_s:.2f} | {m.predicted_s:.2f} | {eps} | {m.accepted} | {', '.join(m.dropped) or '-'} |"
        )
    lines += ["", "![loss and time per round](loss.png)", ""]
    (run_dir / "report.md").write_text("\n".join(lines))


def _links_line(run: FederatedRun) -> str:
    """One sentence on the links, the synchronisation and the simulated time."""
    parts = []
    for cid, prof in run.link_profiles.items():
        got = run.measured_links[cid]
        parts.append(
            f"{cid} `{prof.name}` ({prof.up_mbps:g}/{prof.down_mbps:g} Mbit/s, {prof.latency_ms:g} ms; "
            f"probed {got.up_mbps:.1f}/{got.down_mbps:.1f} Mbit/s)"
        )
    sim = run.metrics[-1].sim_time_s if run.metrics else 0.0
    return (
        f"Links: {'; '.join(parts)}. Synchronisation: {run.cfg.sync}. Simulated time across these links: "
        f"{sim:.1f} s, after {run.probe_s:.1f} s of probing at setup."
    )


def _new_run_dir(cfg: RunConfig) -> Path:
    root = Path(cfg.out)
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        d = root / (f"{stamp}-{cfg.method}" + (f"-{i}" if i else ""))
        try:
            d.mkdir()
            return d
        except FileExistsError:
            continue
    raise RuntimeError(f"cannot create a run directory under {root}")


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Writes a checkpoint atomically, readable by its owner only (it holds the simulated clouds' secret key)."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as f:
        torch.save(state, f)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Reads a checkpoint, raising ValueError with a clear message if it is missing or corrupt."""
    if not path.is_file():
        raise ValueError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for corrupt files
        raise ValueError(f"checkpoint {path} is corrupt or unreadable: {e}") from None
    if not isinstance(state, dict) or "next_round" not in state:
        raise ValueError(f"checkpoint {path} is not an xcloud checkpoint")
    return state


def run_training(
    cfg: RunConfig, run_dir: Path | None = None, resume: bool = False, quiet: bool = False
) -> FederatedRun:
    """Runs (or resumes) a whole training run and writes its outputs.

    A run directory this call creates is removed again when the setup fails
    (a missing data directory or tokenizer file, say), so a failed start
    leaves nothing behind.
    """
    created = run_dir is None
    if run_dir is None:
        run_dir = _new_run_dir(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        (run_dir / "config.toml").write_text(cfg.to_toml(), encoding="utf-8")
    log_path = run_dir / "run.log"
    handler = logging.FileHandler(log_path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("xcloud")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    started = False
    try:
        t0 = time.perf_counter()
        run = FederatedRun(cfg, run_dir)
        started = True
        if resume:
            run.load_state_dict(load_checkpoint(run_dir / CHECKPOINT))
            # Only now: a resume the checkpoint refuses keeps the run's own config.toml.
            (run_dir / "config.toml").write_text(cfg.to_toml(), encoding="utf-8")
        if isinstance(run.tokenizer, WordTokenizer):
            run.tokenizer.save(run_dir / "tokenizer.json")  # the vocabulary it used, reusable as --tokenizer
        say = (lambda s: None) if quiet else tqdm.write
        say(f"run directory: {run_dir}")
        say(_table_header())
        for m in run.metrics:
            say(_table_row(m))
        rounds = range(run.next_round, cfg.rounds)
        with tqdm(total=cfg.rounds, initial=run.next_round, desc=f"{cfg.method} rounds", disable=quiet) as bar:
            for r in rounds:
                with tqdm(
                    total=len(getattr(run, "clients", [])) or 1, desc=f"round {r}", leave=False, disable=quiet
                ) as inner:
                    m = run.run_round(r, on_client=lambda cid: inner.update(1))
                say(_table_row(m))
                save_checkpoint(run.state_dict(), run_dir / CHECKPOINT)
                bar.update(1)
        wall = time.perf_counter() - t0
        _write_outputs(run, run_dir, wall)
        if not quiet:
            last = run.metrics[-1]
            say(
                f"done: validation perplexity {last.val_ppl:.2f} after {len(run.metrics)} rounds; "
                f"{100 * crypto_share(run.metrics):.1f}% of the time in cryptography; "
                f"report: {run_dir / 'report.md'}"
            )
        return run
    finally:
        root.removeHandler(handler)
        handler.close()
        if created and not started:
            shutil.rmtree(run_dir, ignore_errors=True)


def run_from_args(args: argparse.Namespace) -> int:
    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / "config.toml").is_file():
            raise ValueError(f"{run_dir} is not a run directory (it has no config.toml)")
        # A config.toml without drift_correction (or server_momentum) was written
        # before the key existed or before scaffold and 0.5 became the defaults
        # (2026-12-02), by a run of plain FedAvg: those keys resume as it. One
        # without dp_batch_size (2026-12-03) ran DP-SGD on batch_size: 0; one
        # without lr_schedule (2026-12-04) trained at constant rates.
        # The options given apply; FederatedRun.load_state_dict refuses any that
        # may not change on a resume (RESUMABLE), naming them.
        cfg = load_config(run_dir / "config.toml", _overrides(args), defaults=PLAIN_FEDAVG)
        run_training(cfg, run_dir, resume=True)
    else:
        cfg = load_config(args.config, _overrides(args))
        run_training(cfg)
    return 0
