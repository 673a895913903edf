"""Federated training across simulated clouds on one machine, with real cryptography.

Every method of the experiments runs through here: ``centralized`` (one model
on the union of the data), ``fedavg``, ``he`` (every value encrypted), ``dp``
(record-level DP-SGD, plain updates) and ``xcloud`` (hybrid selective
encryption + dynamic weights + record-level DP). Clients, server and messages
are the transport-agnostic core; only the loop that moves the bytes is here.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from xcloud.crypto import CkksContext, KeySet
from xcloud.data import (
    Corpus,
    WordTokenizer,
    generate_corpus,
    load_shard,
    load_text_dir,
    partition,
    split_train_val,
    write_shards,
)
from xcloud.data.dataset import NoteDataset
from xcloud.data.hf_tokenizer import HFTokenizer
from xcloud.fl.aggregator import Aggregator
from xcloud.fl.client import FederatedClient, FitStats, flood, open_aggregate
from xcloud.fl.config import RunConfig
from xcloud.fl.errors import ClientFailure, RoundFailed, UpdateRejected
from xcloud.fl.layout import ParameterLayout
from xcloud.fl.protection import ProtectionPlan
from xcloud.fl.strategies import DynamicWeighting, FedAvg, HybridEncryption, Strategy, UniformWeights
from xcloud.models import (
    GPT,
    SENSITIVE_PARAMETERS,
    GPTConfig,
    TrainConfig,
    evaluate,
    load_causal_lm_with_lora,
    load_trainable_state,
    train_local,
    trainable_state,
)
from xcloud.privacy import RecordDP, RecordDPConfig, client_level_epsilon, clip_update, make_generator, noise_share

__all__ = ["FederatedRun", "RoundMetrics", "derive_seed", "make_strategy"]

log = logging.getLogger("xcloud.run")

# Standard deviation of the noise a key holder adds before releasing a
# decrypted aggregate to parties without the secret key (public-key mode).
# It is 2^8 times the fresh encryption noise (~2^-28): a heuristic margin, not
# the 2^(s/2) statistical flooding a proof for s-bit security needs, which
# would cost the update far more precision. See the README's known limits.
FLOOD_SIGMA = 2.0**-20


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed from the run seed and a path of labels (round, client, ...)."""
    h = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "little") >> 1


def make_strategy(cfg: RunConfig) -> Strategy:
    """The strategy of a method: weights and protection plan.

    Client-level DP is calibrated for uniform weights, so it replaces the
    method's weighting rule with :class:`UniformWeights`.
    """
    uniform = cfg.client_dp_noise > 0
    if cfg.method == "he":
        return UniformWeights(encrypt=True) if uniform else FedAvg(encrypt=True)
    if cfg.method == "xcloud":
        base: Strategy = (
            UniformWeights()
            if uniform
            else DynamicWeighting(alpha=cfg.weight_alpha, beta=cfg.weight_beta, max_share=cfg.max_share)
        )
        if cfg.hf_model:
            # LoRA adapters are small: encrypt all of them.
            return HybridEncryption(base, fraction=1.0, always=())
        return HybridEncryption(base, fraction=cfg.encrypt_fraction, always=SENSITIVE_PARAMETERS)
    return UniformWeights() if uniform else FedAvg(encrypt=False)


@dataclass
class RoundMetrics:
    """One row of the per-round table."""

    round: int
    train_loss: float
    val_loss: float
    val_ppl: float
    bytes_up: int
    bytes_down: int
    train_s: float
    encrypt_s: float
    aggregate_s: float
    decrypt_s: float
    round_s: float
    epsilon: float | None
    accepted: int
    dropped: list[str] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    client_epsilon: float | None = None  # client-level DP, from dp-accounting


class FederatedRun:
    """A whole run: data, model, clients, server, and the round loop.

    Parameters
    ----------
    cfg : RunConfig
    run_dir : Path
        Where shards and outputs go.
    client_hook : callable, optional
        ``hook(round, client_id, message) -> message``: lets tests inject
        faults (crash, tamper, NaN) between a client and the server.
    """

    def __init__(
        self, cfg: RunConfig, run_dir: Path, client_hook: Callable[[int, str, bytes], bytes] | None = None
    ) -> None:
        cfg.validate()
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.client_hook = client_hook
        self.device = cfg.device
        self.metrics: list[RoundMetrics] = []
        self.next_round = 0
        self._setup()

    # -- setup ----------------------------------------------------------------
    def _corpus(self) -> Corpus:
        if self.cfg.data:
            return load_text_dir(self.cfg.data)
        return generate_corpus(
            hospitals=self.cfg.clouds, notes_per_hospital=self.cfg.notes_per_hospital, seed=self.cfg.seed
        )

    def _setup(self) -> None:
        cfg = self.cfg
        corpus = self._corpus()
        self.corpus = corpus
        scheme = cfg.partition
        if cfg.data and scheme == "natural":
            scheme = "iid"  # the user's files carry no hospital labels
            log.info("--data has no hospital labels: partitioning iid")
        parts = partition(
            scheme,
            corpus.hospital_labels(),
            None if scheme == "natural" else cfg.clouds,
            alpha=cfg.dirichlet_alpha,
            seed=cfg.seed,
        )
        if len(parts) != cfg.clouds:
            raise ValueError(f"partition gave {len(parts)} clients, expected {cfg.clouds}")
        # The vocabulary is agreed in advance (a shared tokenizer): the model's
        # own with --hf-model, else a word vocabulary built here from the corpus.
        self.tokenizer: Any
        if cfg.hf_model:
            self.tokenizer = HFTokenizer(cfg.hf_model)
        else:
            self.tokenizer = WordTokenizer.build(corpus.texts(), max_vocab=cfg.vocab_size)
        shard_dirs = write_shards(self.run_dir / "shards", corpus.notes, parts)
        self.train_sets: list[NoteDataset] = []
        val_ids: list[list[int]] = []
        for k, d in enumerate(shard_dirs):
            shard = load_shard(d)  # checks the notes against the manifest's hash
            ids = self.tokenizer.encode_batch(n.text for n in shard.notes)
            tr, va = split_train_val(np.arange(len(ids)), cfg.val_fraction, seed=derive_seed(cfg.seed, "split", k))
            self.train_sets.append(self._dataset([ids[i] for i in tr]))
            val_ids.extend(ids[i] for i in va)
        self.val_set = self._dataset(val_ids)

        torch.manual_seed(derive_seed(cfg.seed, "init") % (2**31))
        self.gpt_config = GPTConfig(
            vocab_size=self.tokenizer.vocab_size,
            block_size=cfg.block_size,
            n_layer=cfg.n_layer,
            n_head=cfg.n_head,
            n_embd=cfg.n_embd,
        )
        self.model = self._new_model()
        self.global_state = trainable_state(self.model)
        self.layout = ParameterLayout.from_state(self.global_state)
        self.velocity = np.zeros(self.layout.total, dtype=np.float32)  # FedAvgM momentum buffer
        self.train_cfg = TrainConfig(
            lr=cfg.lr, local_steps=cfg.local_steps, batch_size=cfg.batch_size, device=cfg.device
        )
        self.strategy = make_strategy(cfg)
        self.plan: ProtectionPlan = self.strategy.plan(self.layout)
        self.ctx = CkksContext()
        self.client_ids = [f"cloud-{k}" for k in range(cfg.clouds)]
        self.dp: dict[str, RecordDP] = {}
        if cfg.method in ("dp", "xcloud"):
            for cid, ds in zip(self.client_ids, self.train_sets, strict=True):
                self.dp[cid] = RecordDP(
                    RecordDPConfig(
                        target_epsilon=cfg.dp_epsilon, delta=cfg.dp_delta, max_grad_norm=cfg.dp_max_grad_norm
                    ),
                    dataset_size=len(ds),
                    batch_size=cfg.batch_size,
                    steps_per_round=cfg.local_steps,
                    total_rounds=cfg.rounds,
                )
        if cfg.method != "centralized":
            self._setup_federation()

    def _dataset(self, ids: list[list[int]]) -> NoteDataset:
        if self.cfg.hf_model:
            tok = self.tokenizer
            return NoteDataset(
                ids,
                self.cfg.block_size,
                bos_id=tok.bos_id,
                eos_id=tok.eos_id,
                pad_id=tok.pad_id,
                vocab_size=tok.vocab_size,
            )
        return NoteDataset(ids, self.cfg.block_size, vocab_size=self.tokenizer.vocab_size)

    def _new_model(self) -> torch.nn.Module:
        """A fresh model: the tiny GPT, or the local HF model with LoRA adapters (torch's seed fixes their init)."""
        torch.manual_seed(derive_seed(self.cfg.seed, "init") % (2**31))
        if self.cfg.hf_model:
            return load_causal_lm_with_lora(self.cfg.hf_model, r=self.cfg.lora_r)
        return GPT(self.gpt_config)

    def _setup_federation(self) -> None:
        cfg = self.cfg
        encrypted = bool(self.plan.encrypted)
        # Shared-key mode: every client holds the key set, the server none.
        # Public-key mode: clients hold the public key; cloud-0 is the key holder.
        self.keys: KeySet | None = self.ctx.keygen() if encrypted else None
        self.server_signing_key = Ed25519PrivateKey.generate()  # clients hold only its public key
        mac_keys = {cid: os.urandom(32) for cid in self.client_ids}
        self.clients: list[FederatedClient] = []
        for k, cid in enumerate(self.client_ids):
            client_keys = self.keys
            if self.keys is not None and cfg.key_mode == "public":
                client_keys = self.keys.public_only()
            bw = cfg.bandwidths_mbps[k % len(cfg.bandwidths_mbps)]
            self.clients.append(
                FederatedClient(
                    cid,
                    self._new_model(),
                    self.train_sets[k],
                    self._trainer(cid),
                    self.ctx,
                    client_keys,
                    mac_keys[cid],
                    self.layout,
                    self.plan,
                    bandwidth_mbps=bw,
                    threads=cfg.threads or None,
                    update_transform=self._client_dp_transform() if cfg.client_dp_noise > 0 else None,
                )
            )
        self.server = Aggregator(
            self.ctx,
            self.plan,
            self.strategy,
            mac_keys,
            self.server_signing_key,
            self.keys.key_id if self.keys is not None else b"",
            min_clients=cfg.min_clients,
            threads=cfg.threads or None,
        )

    def _client_dp_transform(self) -> Callable[[np.ndarray], np.ndarray]:
        """Clips an update to ``client_clip`` and adds this client's share of the noise (OS-seeded)."""
        cfg = self.cfg

        def transform(delta: np.ndarray) -> np.ndarray:
            clipped, _ = clip_update(torch.from_numpy(delta), cfg.client_clip)
            noise = noise_share(delta.shape, cfg.client_clip, cfg.client_dp_noise, cfg.clouds, make_generator())
            return (clipped + noise).numpy()

        return transform

    def _trainer(self, cid: str) -> Callable[[torch.nn.Module, Any, int], Any]:
        dp = self.dp.get(cid)

        def train(model: torch.nn.Module, dataset: Any, seed: int) -> Any:
            return train_local(model, dataset, self.train_cfg, seed=seed, dp=dp)

        return train

    # -- rounds ---------------------------------------------------------------
    def run_round(self, r: int, on_client: Callable[[str], None] | None = None) -> RoundMetrics:
        """Runs round ``r`` and appends its metrics."""
        t_round = time.perf_counter()
        if self.cfg.method == "centralized":
            m = self._centralized_round(r)
        else:
            m = self._federated_round(r, on_client)
        m.round_s = time.perf_counter() - t_round
        self.metrics.append(m)
        self.next_round = r + 1
        return m

    def _centralized_round(self, r: int) -> RoundMetrics:
        union: torch.utils.data.ConcatDataset[Any] = torch.utils.data.ConcatDataset(self.train_sets)
        # The same examples and the same number of sequential steps as one
        # federated round: local_steps steps of clouds x batch_size sequences.
        cfg = copy.copy(self.train_cfg)
        cfg.batch_size = self.train_cfg.batch_size * self.cfg.clouds
        load_trainable_state(self.model, self.global_state)
        t0 = time.perf_counter()
        stats = train_local(self.model, union, cfg, seed=derive_seed(self.cfg.seed, "central", r))
        train_s = time.perf_counter() - t0
        self.global_state = trainable_state(self.model)
        val = self._validate()
        return RoundMetrics(r, stats.mean_loss, val, math.exp(val), 0, 0, train_s, 0.0, 0.0, 0.0, 0.0, None, 1)

    def _federated_round(self, r: int, on_client: Callable[[str], None] | None) -> RoundMetrics:
        self.server.start_round(r)
        fits: list[FitStats] = []
        dropped: list[str] = []
        for client in self.clients:
            try:
                msg, st = client.fit(
                    self.global_state, r, seed=derive_seed(self.cfg.seed, "train", r, client.client_id)
                )
                if self.client_hook is not None:
                    msg = self.client_hook(r, client.client_id, msg)
                self.server.receive(client.client_id, msg)
                fits.append(st)
            except (ClientFailure, UpdateRejected) as e:
                if isinstance(e, ClientFailure):
                    self.server.reject(client.client_id, str(e))
                dropped.append(client.client_id)
            if on_client is not None:
                on_client(client.client_id)
        try:
            agg_msg, summary = self.server.finish_round()
        except RoundFailed as e:
            log.error("%s; the global model is unchanged", e)
            raise
        delta, decrypt_s = self._release(agg_msg, r)
        # The global step (FedAvgM, Hsu et al. 2019): every cloud holds the same
        # decrypted delta and applies the same rule, so they stay in sync.
        self.velocity = self.cfg.server_momentum * self.velocity + delta
        new_vec = self.layout.flatten(self.global_state) + self.cfg.server_lr * self.velocity
        self.global_state.update(self.layout.unflatten(new_vec, self.global_state))
        val = self._validate()
        accepted = [f for f in fits if f.client_id in summary.accepted]
        n = sum(f.examples for f in accepted)
        train_loss = sum(f.loss * f.examples for f in accepted) / n
        eps = [f.epsilon for f in accepted if f.epsilon is not None]
        receivers = len(self.clients)
        return RoundMetrics(
            round=r,
            train_loss=train_loss,
            val_loss=val,
            val_ppl=math.exp(val),
            bytes_up=summary.bytes_in,
            bytes_down=summary.bytes_out * receivers,
            train_s=sum(f.train_seconds for f in fits),
            encrypt_s=sum(f.encrypt_seconds for f in fits),
            aggregate_s=summary.aggregate_seconds,
            decrypt_s=decrypt_s,
            round_s=0.0,
            epsilon=max(eps) if eps else None,
            accepted=len(summary.accepted),
            dropped=dropped,
            weights=summary.weights,
            client_epsilon=(
                client_level_epsilon(self.cfg.client_dp_noise, r + 1, self.cfg.dp_delta)
                if self.cfg.client_dp_noise > 0
                else None
            ),
        )

    def _release(self, agg_msg: bytes, r: int) -> tuple[np.ndarray, float]:
        """Decrypts the aggregate as the clients would; every client obtains the same delta."""
        holder = self.keys  # shared-key mode: any client; public-key mode: the key holder (cloud-0)
        _, delta, seconds = open_aggregate(
            agg_msg,
            ctx=self.ctx,
            keys=holder,
            plan=self.plan,
            server_key=self.server_signing_key.public_key(),
            round_id=r,
            threads=self.cfg.threads or None,
        )
        if self.cfg.key_mode == "public" and self.plan.encrypted:
            # The key holder releases the decrypted part to clients without the key.
            mask = self.plan.mask()
            delta[mask] = flood(delta[mask], FLOOD_SIGMA)
        return delta, seconds

    def _validate(self) -> float:
        load_trainable_state(self.model, self.global_state)
        return float(evaluate(self.model, self.val_set, batch_size=128))

    # -- checkpoints ------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint holds: the next round, the global model, metrics and DP accountants."""
        return {
            "format": 1,
            "next_round": self.next_round,
            "global_state": self.global_state,
            "velocity": torch.from_numpy(self.velocity.copy()),
            "metrics": [m.__dict__ for m in self.metrics],
            "dp": {cid: dp.state_dict() for cid, dp in self.dp.items()},
            # The simulation plays every cloud, so its checkpoint holds their shared
            # secret key; run_training writes it readable by the owner only.
            "keys": keys.secret_bytes() if (keys := getattr(self, "keys", None)) is not None else None,
            "layout_digest": self.layout.digest().hex(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores a checkpoint made by :meth:`state_dict` for the same configuration.

        Raises
        ------
        ValueError
            If the checkpoint does not match this run's model.
        """
        if state.get("format") != 1 or state.get("layout_digest") != self.layout.digest().hex():
            raise ValueError("checkpoint does not match this run's model or format")
        self.next_round = int(state["next_round"])
        self.global_state = state["global_state"]
        self.velocity = state["velocity"].numpy().astype(np.float32)
        self.metrics = [RoundMetrics(**m) for m in state["metrics"]]
        for cid, s in state["dp"].items():
            self.dp[cid].load_state_dict(s)
        if state.get("keys") is not None and self.cfg.method != "centralized":
            self.keys = KeySet.from_bytes(self.ctx, state["keys"])
            self._rekey()

    def _rekey(self) -> None:
        """Rebuilds clients and server around restored keys (the MAC keys are fresh)."""
        dp_state = {cid: dp.state_dict() for cid, dp in self.dp.items()}
        keys = self.keys
        if keys is None:
            return
        self._setup_federation()
        self.keys = keys
        for c in self.clients:
            if c.keys is not None:
                c.keys = keys if self.cfg.key_mode == "shared" else keys.public_only()
        self.server.key_id = keys.key_id
        for cid, s in dp_state.items():
            self.dp[cid].load_state_dict(s)
