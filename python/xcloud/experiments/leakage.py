"""Data leakage, measured: real attacks on exactly what the server and an eavesdropper receive.

Each method of the paper's Figure 1 (centralized, fedavg, he, dp, xcloud)
trains on the synthetic ICU notes while every update message is recorded on
its way to the server (``FederatedRun``'s client hook) and every aggregate on
its way back. Two observers then attack what they hold:

- the honest-but-curious server: it verifies each update with the client's
  MAC key and parses it (``unpack_update``): plain values in the clear,
  encrypted values as ciphertext;
- an eavesdropper on the links, without any key: it parses the same bytes
  from the documented envelope layout without verifying them (messages are
  authenticated, not encrypted, at xcloud's layer; TLS is the transport's).

Meters (:mod:`xcloud.privacy.leakage`):

- token leakage: the bag-of-words attack of FILM / TAG on the rows of the
  token-embedding and output-head updates, scored against the tokens the
  client actually trained on that round (its batches replayed from the
  training seed); on ciphertext, the same attack on the c0 coefficients;
- the leakage rate of a method at a round: per client, the largest recall of
  a cut of the attack's row ranking with precision >= 0.9, the better of the
  two tensors, averaged over the clients; centralized is 1 by definition (the
  server holds the raw notes);
- uniformity: a chi-square test of the ciphertext residues (and bytes);
- reconstruction: DLG / iDLG gradient inversion on a one-layer model and a
  batch of one or two short notes (plain, DP-SGD-noised and encrypted);
- the final model: canary exposure (Secret Sharer) and loss-threshold
  membership inference (Yeom et al.), for whoever holds the model.

Two sweeps: the hybrid encryption knob (encrypted fraction 0 to 1, the
embedding first, then the output head, then the rest; no DP) against bytes
and time per round, and record-level DP epsilon against canary exposure.

Outputs: leakage.csv (per round, client and observer), leakage_knob.csv,
leakage_epsilon.csv, leakage_models.csv, leakage_inversion.csv,
leakage_uniformity.csv, leakage.png, leakage.json and a report.md section.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import struct
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from xcloud.crypto import CiphertextBlocks
from xcloud.experiments.report import RunDirectory, machine_info, machine_label, markdown_table, new_figure
from xcloud.fl.compression import decode
from xcloud.fl.config import PLAIN_FEDAVG, RunConfig
from xcloud.fl.messages import unpack_aggregate, unpack_update
from xcloud.fl.protection import selective_plan
from xcloud.fl.simulation import FederatedRun, derive_seed
from xcloud.models import GPT, SENSITIVE_PARAMETERS, GPTConfig, load_trainable_state
from xcloud.privacy.leakage import (
    Observation,
    assemble,
    bag_of_words,
    batch_gradient,
    batch_tokens,
    canary_exposure,
    dp_gradient,
    infer_bag,
    invert,
    loss_threshold_attack,
    per_example_losses,
    pseudo_values,
    replay_batches,
    residue_uniformity,
    score_reconstruction,
)
from xcloud.privacy.leakage.uniformity import bytes_uniformity

__all__ = [
    "COLUMNS",
    "HELP",
    "METHODS",
    "NAME",
    "Recorder",
    "add_arguments",
    "eavesdropper_view",
    "measure_method",
    "run",
    "server_view",
]

NAME = "leakage"
HELP = "data leakage rate per round (Figure 1), the encryption knob's leakage-cost curve, exposure vs DP epsilon"

METHODS = ("centralized", "fedavg", "he", "dp", "xcloud")
TOKEN_TENSORS = SENSITIVE_PARAMETERS  # ("wte.weight", "lm_head.weight")
MIN_PRECISION = 0.9
COLUMNS = (
    "method",
    "round",
    "client",
    "observer",
    "rate",
    "chance_rate",
    "recall",
    "precision",
    "auc",
    "tensor",
    "kind",
    "true_tokens",
    "vocab",
    "wte_rate",
    "lm_head_rate",
    "message_bytes",
)

# Sized so the whole experiment (about 25 short federated runs) takes a few minutes on a busy 2-core machine.
FULL: dict[str, Any] = {
    "clouds": 4,
    "rounds": 4,
    "local_steps": 8,
    "batch_size": 16,
    "notes_per_hospital": 100,
    "vocab_size": 2000,
    "block_size": 64,
    "n_layer": 2,
    "n_head": 4,
    "n_embd": 32,
    "threads": 2,
}
SHORT: dict[str, Any] = {
    "clouds": 3,
    "rounds": 2,
    "local_steps": 2,
    "batch_size": 8,
    "notes_per_hospital": 30,
    "vocab_size": 400,
    "block_size": 32,
    "n_layer": 1,
    "n_head": 2,
    "n_embd": 16,
    "threads": 1,
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The experiment's options (``--out``, ``--short`` and ``--quiet`` come from the command)."""
    p.add_argument("--rounds", type=int, default=None, help="rounds per method (default: 4; with --short: 2)")
    p.add_argument(
        "--fractions",
        default=None,
        help="encrypted fractions of the knob sweep, comma-separated (default: 0,0.25,0.5,1; --short: 0,0.5,1)",
    )
    p.add_argument(
        "--epsilons",
        default=None,
        help="record-level DP epsilons of the exposure sweep, comma-separated (default: 1,8,64; --short: 8)",
    )
    p.add_argument(
        "--candidates", type=int, default=None, help="random secrets each canary is ranked against (default: 1000)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed (default: 0)")


def _floats(text: str | None, default: Sequence[float], name: str, lo: float, hi: float) -> list[float]:
    if text is None:
        return list(default)
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--{name} must be comma-separated numbers, got {text!r}") from None
    if not vals or any(not (math.isfinite(v) and lo <= v <= hi) for v in vals):
        raise ValueError(f"--{name} must list numbers in [{lo}, {hi}], got {text!r}")
    return vals


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    short = bool(getattr(args, "short", False))
    rounds = args.rounds if args.rounds is not None else (2 if short else 4)
    if rounds < 1:
        raise ValueError(f"--rounds must be at least 1, got {rounds}")
    candidates = args.candidates if args.candidates is not None else (200 if short else 1000)
    if candidates < 1:
        raise ValueError(f"--candidates must be at least 1, got {candidates}")
    # weight_alpha 0.5: xcloud's dynamic weights as the experiment was first measured (xcloud run's default
    # is 0.1 since 2026-12-03).
    base = RunConfig(seed=int(args.seed), min_clients=2, weight_alpha=0.5, **PLAIN_FEDAVG, **(SHORT if short else FULL))
    base = replace(base, rounds=rounds)
    base.validate()
    return {
        "short": short,
        "base": base,
        "fractions": _floats(args.fractions, (0.0, 0.5, 1.0) if short else (0.0, 0.25, 0.5, 1.0), "fractions", 0, 1),
        "epsilons": _floats(args.epsilons, (8.0,) if short else (1.0, 8.0, 64.0), "epsilons", 1e-3, 1e6),
        "candidates": candidates,
        "inversion": {
            "length": 8 if short else 12,
            "steps": 60 if short else 200,
            "restarts": 1,
            "time_limit_s": 5.0 if short else 12.0,
            "n_embd": 16 if short else 32,
        },
    }


# -- observers --------------------------------------------------------------------------------------------------
class Recorder:
    """Records every update message on its way to the server, and every aggregate on its way back.

    ``hook`` is ``FederatedRun``'s ``client_hook`` (it returns the message
    unchanged); :meth:`attach` wraps the server's ``finish_round`` so the
    aggregate bytes are kept too. Nothing in the run is changed.
    """

    def __init__(self) -> None:
        self.uplink: list[tuple[int, str, bytes]] = []
        self.downlink: list[tuple[int, bytes]] = []

    def hook(self, round_id: int, client_id: str, message: bytes) -> bytes:
        self.uplink.append((round_id, client_id, bytes(message)))
        return message

    def attach(self, run: FederatedRun) -> None:
        server = run.server
        original = server.finish_round

        def finish_round() -> Any:
            msg, summary = original()
            self.downlink.append((summary.round_id, bytes(msg)))
            return msg, summary

        server.finish_round = finish_round  # type: ignore[method-assign]

    def clear(self) -> None:
        self.uplink.clear()
        self.downlink.clear()


def _read_envelope(data: bytes) -> tuple[dict[str, Any], list[bytes]]:
    """Parses an update envelope without its MAC key, as an eavesdropper can.

    Layout (``xcloud.fl.envelope``): magic (4) | u16 version | u32 header
    length | JSON header | u32 blob count | (u64 length | bytes) per blob | tag.

    Raises
    ------
    ValueError
        If the bytes do not follow the layout.
    """
    if len(data) < 14:
        raise ValueError("message too short to be an envelope")
    _version, head_len = struct.unpack_from("<HI", data, 4)
    pos = 10
    header = json.loads(bytes(data[pos : pos + head_len]).decode())
    pos += head_len
    (count,) = struct.unpack_from("<I", data, pos)
    pos += 4
    blobs = []
    for _ in range(count):
        (n,) = struct.unpack_from("<Q", data, pos)
        pos += 8
        if pos + n > len(data):
            raise ValueError("blob extends past the message")
        blobs.append(bytes(data[pos : pos + n]))
        pos += n
    return header, blobs


def _observation(
    run: FederatedRun,
    observer: str,
    round_id: int,
    source: str,
    plain: np.ndarray,
    ct: CiphertextBlocks | None,
    size: int,
) -> Observation:
    mask = run.plan.mask()
    residues = None
    stand_in = None
    if ct is not None:
        residues = np.array(ct.c0_view(), copy=True)
        stand_in = pseudo_values(residues, run.ctx.primes[0], ct.size)
    tensors = assemble(run.layout.names, run.layout.shapes, mask, np.asarray(plain, dtype=np.float32), stand_in)
    return Observation(
        observer=observer,
        round=round_id,
        source=source,
        tensors=tensors,
        encrypted=tuple(run.plan.encrypted),
        plain_bytes=int(plain.size) * 4,
        ciphertext_bytes=ct.nbytes if ct is not None else 0,
        message_bytes=size,
        residues=residues,
    )


def server_view(run: FederatedRun, round_id: int, client_id: str, message: bytes) -> Observation:
    """What the honest-but-curious server holds of one update: it verifies and parses it with the client's MAC key."""
    _, plain, ct = unpack_update(message, run.server.mac_keys[client_id], run.ctx)
    return _observation(run, "server", round_id, client_id, plain, ct, len(message))


def eavesdropper_view(run: FederatedRun, round_id: int, client_id: str, message: bytes) -> Observation:
    """What an eavesdropper without keys holds of one update: the envelope parsed, the MAC left unchecked.

    The ciphertext is parsed with the public CKKS parameters (its header
    names their fingerprint); no secret is used.
    """
    header, blobs = _read_envelope(message)
    plain = decode(blobs[0], int(header["n_plain"]), str(header.get("codec", "none")))
    ct = CiphertextBlocks.from_bytes(run.ctx, blobs[1]) if len(blobs[1]) else None
    return _observation(run, "eavesdropper", round_id, client_id, plain, ct, len(message))


def aggregate_view(run: FederatedRun, round_id: int, message: bytes) -> Observation:
    """What the server (and an eavesdropper on the downlink) holds of a round's aggregate."""
    n_plain = int((~run.plan.mask()).sum())
    _, plain, ct = unpack_aggregate(message, run.server_signing_key.public_key(), run.ctx, n_plain=n_plain)
    return _observation(run, "server", round_id, "aggregate", plain, ct, len(message))


def client_truth(run: FederatedRun, round_id: int, client_id: str) -> np.ndarray:
    """Distinct token ids ``client_id`` trained on in ``round_id``, its batches replayed from the training seed."""
    k = run.client_ids.index(client_id)
    ds = run.train_sets[k]
    cfg = run.cfg
    batches = replay_batches(
        len(ds),
        cfg.batch_size,
        cfg.local_steps,
        derive_seed(cfg.seed, "train", round_id, client_id),
        dp=run.dp.get(client_id),
    )
    return batch_tokens(ds, batches)


def token_meter(obs: Observation, truth: np.ndarray) -> dict[str, Any]:
    """The bag-of-words attack on both token-indexed tensors of an observation; the better one leads the row."""
    per: dict[str, Any] = {}
    for name in TOKEN_TENSORS:
        per[name] = bag_of_words(obs.tensors[name], truth, min_precision=MIN_PRECISION, chance_draws=100)
    lead = max(TOKEN_TENSORS, key=lambda n: (per[n].rate, per[n].auc))
    best = per[lead]
    return {
        "observer": obs.observer,
        "rate": best.rate,
        "chance_rate": max(per[n].chance_rate for n in TOKEN_TENSORS),
        "recall": best.recall,
        "precision": best.precision,
        "auc": best.auc,
        "tensor": lead,
        "kind": obs.kind(lead),
        "true_tokens": best.true,
        "vocab": best.vocab,
        "wte_rate": per["wte.weight"].rate,
        "lm_head_rate": per["lm_head.weight"].rate,
        "message_bytes": obs.message_bytes,
    }


# -- one method ------------------------------------------------------------------------------------------------
class _KnobRun(FederatedRun):
    """A federated run whose protection plan encrypts ``fraction`` of the update: embedding, head, then the rest.

    Only the plan differs from ``fedavg``'s (no DP, sample-count weights): the
    knob is measured on its own.
    """

    def __init__(self, cfg: RunConfig, run_dir: Path, fraction: float, **kw: Any) -> None:
        self._fraction = fraction
        super().__init__(cfg, run_dir, **kw)

    def _setup_federation(self) -> None:
        self.plan = selective_plan(self.layout, self._fraction, priority=TOKEN_TENSORS)
        super()._setup_federation()


def model_meters(run: FederatedRun, candidates: int, seed: int) -> dict[str, Any]:
    """Canary exposure and membership inference on the run's final global model."""
    load_trainable_state(run.model, run.global_state)
    model = run.model
    tok = run.tokenizer
    bos = tok.token_to_id("<bos>")
    digits = list(tok.digit_ids)
    exposures = []
    for i, c in enumerate(run.corpus.canaries):
        e = canary_exposure(
            model,
            [bos, *tok.encode(c.prefix)],
            tok.encode(c.secret),
            digits,
            prefix=c.prefix,
            secret_text=c.secret,
            candidates=candidates,
            seed=derive_seed(seed, "canary", i) % (2**32),
        )
        exposures.append((c.repetitions, e))
    members = np.concatenate([per_example_losses(model, ds) for ds in run.train_sets])
    mia = loss_threshold_attack(members, per_example_losses(model, run.val_set))
    by_reps: dict[int, list[float]] = {}
    for reps, e in exposures:
        by_reps.setdefault(reps, []).append(e.exposure)
    out: dict[str, Any] = {
        "exposure_mean": float(np.mean([e.exposure for _, e in exposures])) if exposures else None,
        "exposure_max": float(max(e.exposure for _, e in exposures)) if exposures else None,
        "max_exposure": exposures[0][1].max_exposure if exposures else None,
        "canaries": len(exposures),
        "mia_auc": mia.auc,
        "mia_advantage": mia.advantage,
        "val_ppl": math.exp(run.metrics[-1].val_loss) if run.metrics else None,
    }
    for reps, vals in sorted(by_reps.items()):
        out[f"exposure_rep{reps}"] = float(np.mean(vals))
    return out


def measure_method(
    cfg: RunConfig,
    work: Path,
    *,
    fraction: float | None = None,
    candidates: int = 1000,
    uniformity: list[dict[str, Any]] | None = None,
    progress: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
    """Runs one method, attacking what each observer holds after every round.

    Parameters
    ----------
    cfg : RunConfig
    work : Path
        Scratch directory of the run (removed afterwards).
    fraction : float, optional
        Run the encryption knob at this fraction instead of ``cfg.method``'s plan.
    candidates : int
        Canary exposure's random candidates.
    uniformity : list, optional
        Receives one uniformity row per round with ciphertext.
    progress : bool

    Returns
    -------
    (rows, model, rounds)
        Per round, client and observer rows (:data:`COLUMNS`); the final
        model's meters; per-round cost rows (bytes, times).
    """
    if cfg.scaffold:
        raise ValueError("the leakage experiment attacks updates without drift correction (no control-variate attack)")
    rec = Recorder()
    run: FederatedRun
    if fraction is not None:
        run = _KnobRun(cfg, work, fraction, client_hook=rec.hook)
    else:
        run = FederatedRun(cfg, work, client_hook=rec.hook)
    label = cfg.method if fraction is None else f"knob {fraction:g}"
    if cfg.method != "centralized":
        rec.attach(run)
    rows: list[dict[str, Any]] = []
    costs: list[dict[str, Any]] = []
    for r in tqdm(range(cfg.rounds), desc=label, disable=not progress, leave=False):
        m = run.run_round(r)
        costs.append(
            {
                "round": r,
                "bytes_up": m.bytes_up / max(m.accepted, 1),
                "encrypt_s": m.encrypt_s / max(m.accepted, 1),
                "round_s": m.round_s,
                "val_loss": m.val_loss,
            }
        )
        if cfg.method == "centralized":
            # The server trains on the pooled raw notes: it holds every token by definition.
            rows.append(
                {"method": label, "round": r, "client": "all", "observer": "server", "rate": 1.0, "recall": 1.0}
            )
            continue
        truths: dict[str, np.ndarray] = {}
        for rr, cid, msg in rec.uplink:
            truth = client_truth(run, rr, cid)
            truths[cid] = truth
            for view in (server_view, eavesdropper_view):
                obs = view(run, rr, cid, msg)
                rows.append({"method": label, "round": rr, "client": cid, **token_meter(obs, truth)})
                if (
                    uniformity is not None
                    and view is server_view
                    and obs.residues is not None
                    and cid == run.client_ids[0]
                ):
                    res = residue_uniformity(obs.residues, run.ctx.primes)
                    plain_bytes, ct_bytes = _read_envelope(msg)[1]
                    raw = bytes_uniformity(ct_bytes)
                    plain_test = bytes_uniformity(plain_bytes) if len(plain_bytes) >= 1280 else None
                    uniformity.append(
                        {
                            "method": label,
                            "round": rr,
                            "client": cid,
                            "residue_p": res.p_value,
                            "residue_uniform": res.uniform,
                            "residues": res.samples,
                            "ct_bytes_p": raw.p_value,
                            "ct_bytes_uniform": raw.uniform,
                            "plain_bytes_p": plain_test.p_value if plain_test else None,
                            "plain_bytes_uniform": plain_test.uniform if plain_test else None,
                        }
                    )
        for rr, msg in rec.downlink:
            union = np.unique(np.concatenate(list(truths.values())))
            obs = aggregate_view(run, rr, msg)
            rows.append({"method": label, "round": rr, "client": "aggregate", **token_meter(obs, union)})
        rec.clear()
    model = model_meters(run, candidates, cfg.seed) if fraction is None else {}
    model["encrypted_fraction"] = run.plan.fraction if cfg.method != "centralized" else 0.0
    shutil.rmtree(work, ignore_errors=True)
    return rows, model, costs


def _client_rate(rows: Sequence[dict[str, Any]], method: str, r: int, observer: str = "server") -> float:
    vals = [
        x["rate"]
        for x in rows
        if x["method"] == method and x["round"] == r and x["observer"] == observer and x["client"] != "aggregate"
    ]
    return float(np.mean(vals)) if vals else float("nan")


# -- reconstruction ------------------------------------------------------------------------------------------
def measure_inversion(base: RunConfig, settings: dict[str, Any], work: Path) -> list[dict[str, Any]]:
    """DLG / iDLG on a one-layer model at initialisation: plain, DP-SGD-noised and encrypted gradients."""
    from xcloud.crypto import CkksContext, encrypt_blocks

    run = FederatedRun(replace(base, method="fedavg", rounds=1), work)  # data and tokenizer only
    tok = run.tokenizer
    length = settings["length"]
    torch.manual_seed(derive_seed(base.seed, "inversion") % (2**31))
    model = GPT(
        GPTConfig(vocab_size=tok.vocab_size, block_size=max(length, 8), n_layer=1, n_head=2, n_embd=settings["n_embd"])
    )
    ds = run.train_sets[0]
    long = [i for i in range(len(ds)) if int((ds[i][1] != -100).sum()) >= length]
    rows: list[dict[str, Any]] = []
    ctx = CkksContext()
    keys = ctx.keygen()
    for b in (1, 2):
        x = torch.stack([ds[i][0][: length + 1] for i in long[:b]])  # (B, T+1): <bos> and the note's first tokens
        plain = batch_gradient(model, x)
        noisy = dp_gradient(
            model, x, 1.0, 1.0, torch.Generator().manual_seed(derive_seed(base.seed, "dpinv", b) % (2**63))
        )
        names = list(plain)
        flat = torch.cat([plain[n].reshape(-1) for n in names]).numpy()
        ct = encrypt_blocks(keys, np.clip(flat, -1, 1).astype(np.float32))
        stand = pseudo_values(np.asarray(ct.c0_view()), ctx.primes[0], ct.size)
        enc: dict[str, torch.Tensor] = {}
        pos = 0
        for n in names:
            k = plain[n].numel()
            enc[n] = torch.from_numpy(stand[pos : pos + k].copy()).reshape(plain[n].shape)
            pos += k
        for label, g in (
            ("plain gradient", plain),
            ("DP-SGD gradient (clip 1, noise 1.0)", noisy),
            ("ciphertext", enc),
        ):
            bag = infer_bag(g)
            t0 = time.perf_counter()
            recovered, dist, steps = invert(
                model,
                g,
                b,
                length,
                bag=bag,
                first_token=tok.token_to_id("<bos>"),
                steps=settings["steps"],
                restarts=settings["restarts"],
                seed=derive_seed(base.seed, "inv", b, label) % (2**63),
                time_limit_s=settings["time_limit_s"],
            )
            acc, r1, rl = score_reconstruction(recovered, x.numpy())
            true_bag = set(x.reshape(-1).tolist())
            rows.append(
                {
                    "gradient": label,
                    "batch": b,
                    "length": length,
                    "token_accuracy": acc,
                    "rouge1": r1,
                    "rougeL": rl,
                    "bag_size": len(bag),
                    "bag_recall": len(true_bag & set(bag)) / len(true_bag),
                    "chance_accuracy": 1.0 / tok.vocab_size,
                    "steps": steps,
                    "seconds": time.perf_counter() - t0,
                    "distance": dist,
                    "true_text": " | ".join(tok.decode(s.tolist()) for s in x),
                    "recovered_text": " | ".join(tok.decode(s.tolist()) for s in torch.as_tensor(recovered)),
                }
            )
    shutil.rmtree(work, ignore_errors=True)
    return rows


# -- figure and report -------------------------------------------------------------------------------------------
def _figure(
    rows: Sequence[dict[str, Any]],
    knob: Sequence[dict[str, Any]],
    eps: Sequence[dict[str, Any]],
    rounds: int,
    out: RunDirectory,
    where: str,
) -> None:
    fig, axes = new_figure(1, 3, size=(15.0, 4.4))
    ax = axes[0]
    for method in METHODS:
        ax.plot(range(rounds), [_client_rate(rows, method, r) for r in range(rounds)], "o-", ms=4, label=method)
    chance = [x["chance_rate"] for x in rows if x.get("chance_rate") is not None]
    if chance:
        ax.axhline(float(np.mean(chance)), color="grey", ls=":", lw=1, label="chance")
    ax.set_xlabel("round")
    ax.set_ylabel(f"data leakage rate (recall at precision >= {MIN_PRECISION})")
    ax.set_ylim(-0.03, 1.05)
    ax.set_title("Fig. 1: token leakage to the server", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(True, alpha=0.3)
    ax = axes[1]
    fr = [k["encrypted_fraction"] for k in knob]
    ax.plot(fr, [k["rate"] for k in knob], "o-", color="C3", label="leakage rate")
    ax.set_xlabel("encrypted fraction of the update (embedding first, then output head, then the rest)")
    ax.set_ylabel("leakage rate", color="C3")
    ax.set_ylim(-0.03, 1.05)
    ax2 = ax.twinx()
    ax2.plot(fr, [k["bytes_up"] / 1e6 for k in knob], "s--", color="C0", label="MB up per client-round")
    ax2.set_ylabel("MB up per client and round", color="C0")
    ax.set_title("Encryption knob (no DP): leakage vs cost", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax = axes[2]
    pos = list(range(len(eps)))
    ax.plot(pos, [e["exposure_mean"] for e in eps], "o-", label="canary exposure, mean (bits)")
    reps = sorted({k for e in eps for k in e if k.startswith("exposure_rep")}, key=lambda k: int(k[12:]))
    for k in reps:
        ax.plot(pos, [e.get(k) for e in eps], ".--", label=f"canaries planted {k[12:]}x")
    ax.axhline(1 / math.log(2), color="grey", ls=":", lw=1, label="chance (~1.44 bits)")
    ax.set_xticks(pos)
    ax.set_xticklabels([f"{e['epsilon']:g}" if math.isfinite(e["epsilon"]) else "no DP" for e in eps])
    ax.set_xlabel("record-level DP epsilon")
    ax.set_ylabel("exposure (bits)")
    ax.set_title("Canary exposure in the final model", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(True, alpha=0.3)
    fig.suptitle(where, fontsize=8)
    fig.tight_layout()
    out.write_figure(f"{NAME}.png", fig)


def run(args: argparse.Namespace) -> Path:
    """Runs the experiment and writes its outputs; returns the run directory.

    Raises
    ------
    ValueError
        For bad options.
    """
    s = _settings(args)
    base: RunConfig = s["base"]
    out = RunDirectory.create(args.out, NAME)
    progress = not getattr(args, "quiet", False)
    work = out.path / "work"
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    models: list[dict[str, Any]] = []
    uniformity: list[dict[str, Any]] = []
    for method in tqdm(METHODS, desc="methods", disable=not progress):
        r, model, _ = measure_method(
            replace(base, method=method), work / method, candidates=s["candidates"], uniformity=uniformity
        )
        rows.extend(r)
        models.append({"method": method, **model})
    knob: list[dict[str, Any]] = []
    knob_rounds = 1
    for f in tqdm(s["fractions"], desc="knob", disable=not progress):
        r, model, costs = measure_method(
            replace(base, method="fedavg", rounds=knob_rounds), work / f"knob-{f:g}", fraction=f
        )
        knob.append(
            {
                "fraction": f,
                "encrypted_fraction": model["encrypted_fraction"],
                "rate": float(np.mean([_client_rate(r, f"knob {f:g}", i) for i in range(knob_rounds)])),
                "bytes_up": float(np.mean([c["bytes_up"] for c in costs])),
                "encrypt_s": float(np.mean([c["encrypt_s"] for c in costs])),
                "round_s": float(np.mean([c["round_s"] for c in costs])),
            }
        )
    eps_rows: list[dict[str, Any]] = []
    fed = next(m for m in models if m["method"] == "fedavg")
    fed_rate = float(np.mean([_client_rate(rows, "fedavg", i) for i in range(base.rounds)]))
    eps_rows.append({"epsilon": math.inf, "rate": fed_rate, **{k: v for k, v in fed.items() if k != "method"}})
    for e in tqdm(s["epsilons"], desc="epsilon", disable=not progress):
        if any(m["method"] == "dp" for m in models) and e == base.dp_epsilon:
            m = next(m for m in models if m["method"] == "dp")
            rate = float(np.mean([_client_rate(rows, "dp", i) for i in range(base.rounds)]))
        else:
            r, m, _ = measure_method(
                replace(base, method="dp", dp_epsilon=e), work / f"dp-{e:g}", candidates=s["candidates"]
            )
            rate = float(np.mean([_client_rate(r, "dp", i) for i in range(base.rounds)]))
        eps_rows.append({"epsilon": e, "rate": rate, **{k: v for k, v in m.items() if k != "method"}})
    eps_rows.sort(key=lambda x: x["epsilon"])
    inversion = measure_inversion(base, s["inversion"], work / "inversion")
    shutil.rmtree(work, ignore_errors=True)
    wall = time.perf_counter() - started

    out.write_csv(f"{NAME}.csv", rows, COLUMNS)
    out.write_csv(f"{NAME}_knob.csv", knob, list(knob[0]) if knob else ["fraction"])
    eps_cols = sorted({k for e in eps_rows for k in e}, key=lambda k: (k != "epsilon", k))
    out.write_csv(f"{NAME}_epsilon.csv", eps_rows, eps_cols)
    model_cols = sorted({k for m in models for k in m}, key=lambda k: (k != "method", k))
    out.write_csv(f"{NAME}_models.csv", models, model_cols)
    out.write_csv(f"{NAME}_inversion.csv", inversion, list(inversion[0]))
    if uniformity:
        out.write_csv(f"{NAME}_uniformity.csv", uniformity, list(uniformity[0]))
    machine = machine_info()
    where = machine_label(machine) + ", CPU"
    _figure(rows, knob, eps_rows, base.rounds, out, where)

    summary = []
    for method in METHODS:
        per_round = [_client_rate(rows, method, r) for r in range(base.rounds)]
        eav = [_client_rate(rows, method, r, "eavesdropper") for r in range(base.rounds)]
        agg = [
            x["rate"]
            for x in rows
            if x["method"] == method and x["client"] == "aggregate" and x["observer"] == "server"
        ]
        chance = [x["chance_rate"] for x in rows if x["method"] == method and x.get("chance_rate") is not None]
        mm = next(m for m in models if m["method"] == method)
        summary.append(
            {
                "method": method,
                "rates": " / ".join(f"{v:.3f}" for v in per_round),
                "mean": float(np.mean(per_round)),
                "eavesdropper": float(np.mean(eav)) if method != "centralized" else 1.0,
                "aggregate": float(np.mean(agg)) if agg else None,
                "chance": float(np.mean(chance)) if chance else None,
                "exposure": mm.get("exposure_mean"),
                "mia_auc": mm.get("mia_auc"),
                "val_ppl": mm.get("val_ppl"),
            }
        )
    out.write_record(
        f"{NAME}.json",
        base.to_dict(),
        summary=summary,
        knob=knob,
        epsilon=eps_rows,
        inversion=inversion,
        uniformity=uniformity,
        wall_s=wall,
        settings={k: v for k, v in s.items() if k != "base"},
    )
    f3 = lambda v: f"{v:.3f}"  # noqa: E731
    table = markdown_table(
        summary,
        {
            "method": "method",
            "rates": "leakage rate per round (server)",
            "eavesdropper": "eavesdropper (mean)",
            "aggregate": "aggregate (mean)",
            "chance": "chance",
            "exposure": "canary exposure (bits)",
            "mia_auc": "MIA AUC",
            "val_ppl": "val ppl",
        },
        {
            "eavesdropper": f3,
            "aggregate": f3,
            "chance": f3,
            "exposure": lambda v: f"{v:.2f}",
            "mia_auc": f3,
            "val_ppl": lambda v: f"{v:.1f}",
        },
    )
    knob_table = markdown_table(
        knob,
        {
            "fraction": "knob",
            "encrypted_fraction": "encrypted fraction",
            "rate": "leakage rate",
            "bytes_up": "MB up per client-round",
            "encrypt_s": "encrypt s per client-round",
            "round_s": "round s",
        },
        {
            "encrypted_fraction": f3,
            "rate": f3,
            "bytes_up": lambda v: f"{v / 1e6:.3f}",
            "encrypt_s": lambda v: f"{v:.4f}",
            "round_s": lambda v: f"{v:.2f}",
        },
    )
    eps_table = markdown_table(
        eps_rows,
        {
            "epsilon": "DP epsilon",
            "rate": "leakage rate",
            "exposure_mean": "exposure mean (bits)",
            "exposure_max": "exposure max",
            "mia_auc": "MIA AUC",
            "val_ppl": "val ppl",
        },
        {
            "epsilon": lambda v: "no DP" if not math.isfinite(v) else f"{v:g}",
            "rate": f3,
            "exposure_mean": lambda v: f"{v:.2f}",
            "exposure_max": lambda v: f"{v:.2f}",
            "mia_auc": f3,
            "val_ppl": lambda v: f"{v:.1f}",
        },
    )
    inv_table = markdown_table(
        inversion,
        {
            "gradient": "observed",
            "batch": "batch",
            "token_accuracy": "token accuracy",
            "rouge1": "ROUGE-1",
            "rougeL": "ROUGE-L",
            "bag_recall": "bag recall",
            "steps": "steps",
        },
        {"token_accuracy": f3, "rouge1": f3, "rougeL": f3, "bag_recall": f3},
    )
    uni = ""
    if uniformity:
        ok = sum(1 for u in uniformity if u["residue_uniform"])
        plain_fail = sum(1 for u in uniformity if u["plain_bytes_uniform"] is False)
        plain_n = sum(1 for u in uniformity if u["plain_bytes_uniform"] is not None)
        uni = (
            f"Uniformity (chi-square, level 0.001): ciphertext residues pass in {ok} of {len(uniformity)} tested "
            f"updates (smallest p {min(u['residue_p'] for u in uniformity):.3g}); the plain float32 parts of the "
            f"same messages fail in {plain_fail} of {plain_n}.\n\n"
        )
    max_exp = models[1].get("max_exposure")
    body = (
        f"Data: synthetic ICU notes, {base.clouds} hospitals x {base.notes_per_hospital} notes, natural partition, "
        f"seed {base.seed}; model {base.n_layer} layers x width {base.n_embd}, block {base.block_size}; "
        f"{base.rounds} rounds x {base.local_steps} local steps x batch {base.batch_size}; record-level DP at "
        f"epsilon {base.dp_epsilon:g} for dp and xcloud. Leakage rate: per client and round, the largest recall of "
        f"the bag-of-words ranking (embedding or output-head rows, the better) at precision >= {MIN_PRECISION}, "
        f"against the tokens the client trained on; mean over clients; centralized = 1 by definition. Exposure: "
        f"rank among {s['candidates']} random secrets (at most {max_exp:.2f} bits measurable), mean over "
        f"{models[1].get('canaries', 0)} canaries. Wall time {wall:.0f} s on {where}.\n\n"
        f"{table}\n{uni}Encryption knob (fedavg weights, no DP, {knob_rounds} round(s) each):\n\n{knob_table}\n"
        f"Canary exposure against record-level DP epsilon:\n\n{eps_table}\n"
        f"Gradient inversion (DLG/iDLG, one-layer model at initialisation, one exact gradient, notes cut to "
        f"{s['inversion']['length']} tokens):\n\n{inv_table}\n![leakage]({NAME}.png)\n\n"
        f"Raw rows: `{NAME}*.csv`.\n"
    )
    report = out.append_markdown("Privacy, measured: `xcloud experiment leakage`", body)
    if progress:
        print(table, end="")
        print(f"run directory: {out.path} (report: {report})", file=sys.stderr)
    return out.path
