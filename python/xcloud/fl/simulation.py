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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from xcloud.fl.client import FederatedClient, flood, open_aggregate
from xcloud.fl.config import RunConfig
from xcloud.fl.drift import ControlVariate, control_plan, split_update, update_federation
from xcloud.fl.errors import ClientFailure, RoundFailed, UpdateRejected
from xcloud.fl.global_step import GlobalOptimizer, global_step_config
from xcloud.fl.layout import ParameterLayout
from xcloud.fl.protection import ProtectionPlan
from xcloud.fl.schedule import lr_factor
from xcloud.fl.strategies import DynamicWeighting, FedAvg, HybridEncryption, Strategy, UniformWeights
from xcloud.fl.sync import ArrivalQueue, InFlight, fedbuff_buffer, split_compute, sync_deadline
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
from xcloud.net import (
    EmulatedLink,
    LinkProfile,
    SimClock,
    load_profiles,
    parse_link,
    predict_round_time,
    probe_emulated,
)
from xcloud.privacy import client_level_epsilon_of, clip_update, effective_multiplier, noise_share

if TYPE_CHECKING:
    from xcloud.privacy.record_dp import RecordDP

__all__ = ["FederatedRun", "RoundMetrics", "derive_seed", "make_strategy"]

log = logging.getLogger("xcloud.run")

# Standard deviation of the noise a key holder adds before releasing a
# decrypted aggregate to parties without the secret key (public-key mode).
# It is 2^8 times the fresh encryption noise (~2^-28): a heuristic margin, not
# the 2^(s/2) statistical flooding a proof for s-bit security needs, which
# would cost the update far more precision. See the README's known limits.
FLOOD_SIGMA = 2.0**-20


# The options a resumed run may change: more rounds (not under record-level DP:
# RecordDP.load_state_dict refuses noise calibrated for another plan), where
# and how fast it runs, and where the tokenizer's file lies (the vocabulary's
# hash in the checkpoint must still match). Any other difference from the
# checkpoint's configuration (the method, the CKKS preset, the data, a
# learning rate...) would continue the run as another experiment, so
# load_state_dict refuses it.
RESUMABLE = frozenset({"rounds", "threads", "device", "out", "tokenizer"})


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
    # Record-level DP: each cloud's epsilon after the round, from its own accountant
    # (also the clouds left out of the round: their training still spent budget).
    # ``epsilon`` is the largest of them.
    cloud_epsilon: dict[str, float] = field(default_factory=dict)
    # The simulated clock (links applied to every message, see xcloud.fl.sync):
    sim_time_s: float = 0.0  # simulated time at the end of the round
    sim_round_s: float = 0.0  # simulated duration of the round
    sim_train_s: float = 0.0  # critical path: the last included update's training ...
    sim_encrypt_s: float = 0.0  # ... its encryption ...
    sim_upload_s: float = 0.0  # ... and its upload
    sim_aggregate_s: float = 0.0  # server aggregation (0 on a modelled clock)
    sim_download_s: float = 0.0  # slowest download of the aggregate
    sim_decrypt_s: float = 0.0  # decryption (0 on a modelled clock)
    sim_wait_s: float = 0.0  # the rest: idle time (deadline, buffer filling)
    predicted_s: float = 0.0  # equation 7's prediction from the probed links
    stragglers: list[str] = field(default_factory=list)  # late: dropped or carried
    staleness: list[int] = field(default_factory=list)  # per accepted update, aligned with weights
    clients: list[str] = field(default_factory=list)  # the accepted updates' clients, aligned with weights
    # Values of the accepted updates beyond the context's max_value, clipped to
    # it before encryption (so the aggregate differs from the plain one there).
    clipped: int = 0


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
        # own with --hf-model, a word vocabulary from a file (--tokenizer), else
        # one built here from the whole corpus (every cloud's notes: README, known limits).
        self.tokenizer: Any
        if cfg.hf_model:
            self.tokenizer = HFTokenizer(cfg.hf_model)
        elif cfg.tokenizer:
            self.tokenizer = WordTokenizer.load(cfg.tokenizer)
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
        self.global_opt = GlobalOptimizer(global_step_config(cfg), self.layout.total)
        self.train_cfg = TrainConfig(
            lr=cfg.lr, local_steps=cfg.local_steps, batch_size=cfg.batch_size, device=cfg.device
        )
        self.strategy = make_strategy(cfg)
        self.strategy.staleness_exponent = cfg.staleness_exponent
        # With drift correction the update carries the client's control variate after the delta.
        self.scaffold = cfg.scaffold
        model_plan = self.strategy.plan(self.layout)
        self.plan: ProtectionPlan = control_plan(model_plan) if self.scaffold else model_plan
        self.controls: dict[str, ControlVariate] = {}  # each cloud's c_i (SCAFFOLD)
        self.federation_control: np.ndarray | None = None  # the released aggregate of the c_i
        self.ctx = CkksContext.preset(cfg.ckks)
        self.client_ids = [f"cloud-{k}" for k in range(cfg.clouds)]
        self._setup_links()
        self.dp: dict[str, RecordDP] = {}
        if cfg.method in ("dp", "xcloud"):
            for cid, ds in zip(self.client_ids, self.train_sets, strict=True):
                self.dp[cid] = self.record_dp_for(len(ds))
        if cfg.method != "centralized":
            self._setup_federation()

    def record_dp_for(self, dataset_size: int) -> RecordDP:
        """A cloud's DP-SGD accountant: this run's budget, batch and steps over ``dataset_size`` records."""
        from xcloud.privacy.record_dp import RecordDP, RecordDPConfig  # loads Opacus, only when needed

        cfg = self.cfg
        return RecordDP(
            RecordDPConfig(target_epsilon=cfg.dp_epsilon, delta=cfg.dp_delta, max_grad_norm=cfg.dp_max_grad_norm),
            dataset_size=dataset_size,
            batch_size=cfg.record_dp_batch_size,
            steps_per_round=cfg.local_steps,
            total_rounds=cfg.rounds,
        )

    def _setup_links(self) -> None:
        """Each cloud's emulated link, its probed measurement, and the simulated clock."""
        cfg = self.cfg
        named = load_profiles(cfg.link_file) if cfg.link_file else {}
        self.clock = SimClock()
        self.link_profiles: dict[str, LinkProfile] = {}
        self.links: dict[str, EmulatedLink] = {}
        self.measured_links: dict[str, LinkProfile] = {}
        self.slowdown: dict[str, float] = {}
        probe_s = 0.0
        for k, cid in enumerate(self.client_ids):
            profile = parse_link(cfg.links[k % len(cfg.links)], named)
            self.link_profiles[cid] = profile
            self.links[cid] = EmulatedLink(profile, seed=derive_seed(cfg.seed, "link", cid))
            self.slowdown[cid] = cfg.slowdowns[k % len(cfg.slowdowns)]
            if cfg.probe_links and cfg.method != "centralized":
                # Measured like iperf on a link of its own (same profile, own draws),
                # so probing does not change the run's transfer draws.
                probe_link = EmulatedLink(profile, seed=derive_seed(cfg.seed, "probe", cid))
                up = probe_emulated(probe_link, payload_bytes=1_000_000, rounds=20, direction="up")
                down = probe_emulated(probe_link, payload_bytes=1_000_000, rounds=20, direction="down")
                probe_s = max(probe_s, probe_link.clock.now)
                self.measured_links[cid] = LinkProfile(
                    f"{cid} (probed)", up.throughput_mbps, down.throughput_mbps, up.rtt_ms / 2, up.jitter_ms
                )
                log.info(
                    "%s link %s: probed up %.1f Mbit/s, down %.1f Mbit/s, RTT %.2f ms, jitter %.2f ms",
                    cid,
                    profile.name,
                    up.throughput_mbps,
                    down.throughput_mbps,
                    up.rtt_ms,
                    up.jitter_ms,
                )
            else:
                self.measured_links[cid] = profile
        # The clouds probe in parallel at setup; the training clock starts after it.
        self.probe_s = probe_s
        # Synchronisation state: stragglers carried into the next round, or the
        # asynchronous updates in flight and what each cloud has seen.
        self.carried: list[InFlight] = []
        self.in_flight = ArrivalQueue()
        self.waiting: list[str] = []  # async: clouds idle until the next global model
        self.local_rounds = dict.fromkeys(self.client_ids, 0)
        self.last_upload: dict[str, int] = {}
        self.last_compute: dict[str, float] = {}
        self.last_download = 0
        self._agg_sizes: list[int] = []  # async: size of every aggregate so far, by version
        self._seen_version: dict[str, int] = {}  # async: the latest version each cloud holds
        self._last_decrypt_s = 0.0

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
        from xcloud.fl.compression import Codec, make_compression

        cfg = self.cfg
        encrypted = bool(self.plan.encrypted)
        # Codecs of the plain parts: the uplink one (or the auto policy, which each
        # client applies to its measured bandwidth) and the server's downlink one.
        codec_args: dict[str, Any] = {
            "topk_fraction": cfg.topk_fraction,
            "chunk": cfg.compression_chunk,
            "none_mbps": cfg.auto_none_mbps,
            "q8_mbps": cfg.auto_q8_mbps,
        }
        uplink = make_compression(cfg.compression, **codec_args)
        downlink = make_compression(cfg.downlink_compression, **codec_args)
        assert isinstance(downlink, Codec)  # validate() refuses auto for the downlink
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
            bw = self.measured_links[cid].up_mbps  # what the cloud measured, for dynamic weights
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
                    compression=uplink,
                    control=self.controls.setdefault(cid, ControlVariate(self.layout)) if self.scaffold else None,
                )
            )
            self.clients[-1].federation_control = self.federation_control
        self.server = Aggregator(
            self.ctx,
            self.plan,
            self.strategy,
            mac_keys,
            self.server_signing_key,
            self.keys.key_id if self.keys is not None else b"",
            min_clients=cfg.min_clients,
            threads=cfg.threads or None,
            downlink=downlink,
        )

    def _client_dp_transform(self) -> Callable[[np.ndarray], np.ndarray]:
        """Clips an update to ``client_clip`` and adds this client's share of the noise (a fresh DPRandom)."""
        cfg = self.cfg

        def transform(delta: np.ndarray) -> np.ndarray:
            clipped, _ = clip_update(torch.from_numpy(delta), cfg.client_clip)
            noise = noise_share(clipped.shape, cfg.client_clip, cfg.client_dp_noise, cfg.clouds, dtype=clipped.dtype)
            return (clipped + noise).numpy()

        return transform

    def _trainer(self, cid: str) -> Callable[[torch.nn.Module, Any, int], Any]:
        dp = self.dp.get(cid)

        def train(model: torch.nn.Module, dataset: Any, seed: int, *, round_id: int, correction: Any = None) -> Any:
            # DP-SGD has its own step size (its gradients are mostly noise); both follow the schedule.
            lr = self.train_cfg.lr if dp is None else self._dp_lr()
            cfg = replace(self.train_cfg, lr=lr * self._lr_factor(round_id, dp=dp is not None))
            return train_local(model, dataset, cfg, seed=seed, dp=dp, correction=correction)

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
        cfg.lr = self.train_cfg.lr * self._lr_factor(r)
        load_trainable_state(self.model, self.global_state)
        t0 = time.perf_counter()
        stats = train_local(self.model, union, cfg, seed=derive_seed(self.cfg.seed, "central", r))
        train_s = time.perf_counter() - t0
        self.global_state = trainable_state(self.model)
        val = self._validate()
        return RoundMetrics(r, stats.mean_loss, val, math.exp(val), 0, 0, train_s, 0.0, 0.0, 0.0, 0.0, None, 1)

    def _federated_round(self, r: int, on_client: Callable[[str], None] | None) -> RoundMetrics:
        """A synchronous round on the simulated clock (or an asynchronous buffer flush)."""
        if self.cfg.sync == "async":
            return self._async_round(r, on_client)
        cfg = self.cfg
        self.server.start_round(r, max_staleness=1 if cfg.stragglers == "carry" else 0)
        t0 = self.clock.now
        deadline = sync_deadline(
            cfg.deadline_s,
            cfg.deadline_factor,
            self.measured_links,
            self.last_upload,
            self.last_download,
            self.last_compute,
        )
        # Updates carried from the last round are there at the start at the earliest.
        arrivals = [replace(a, arrival_s=max(a.arrival_s, t0)) for a in self.carried]
        busy = {a.client_id for a in self.carried}
        self.carried = []
        dropped: list[str] = []
        for client in self.clients:
            if client.client_id not in busy:
                item = self._launch(client, r, t0)
                if item is None:
                    dropped.append(client.client_id)
                else:
                    arrivals.append(item)
            if on_client is not None:
                on_client(client.client_id)
        arrivals.sort(key=lambda a: (a.arrival_s, a.order))
        close = t0
        included: list[InFlight] = []
        stragglers: list[str] = []
        for a in arrivals:
            if deadline is not None and a.arrival_s > t0 + deadline:
                stragglers.append(a.client_id)
                if cfg.stragglers == "carry" and a.base_round == r:
                    self.carried.append(a)
                    log.info(
                        "round %s: %s misses the %.2f s deadline; carried to the next round", r, a.client_id, deadline
                    )
                else:
                    self.server.reject(a.client_id, f"missed the round's {deadline:.2f} s deadline")
                    dropped.append(a.client_id)
                continue
            try:
                self.server.receive(a.client_id, a.message)
            except UpdateRejected:
                dropped.append(a.client_id)
                continue
            included.append(a)
            close = max(close, a.arrival_s)
        if stragglers:
            assert deadline is not None
            close = t0 + deadline  # the server waited until the deadline
        m, agg_msg = self._aggregate_and_apply(r, included, dropped)
        agg_clock = self._on_clock(m.aggregate_s)
        dec_clock = self._on_clock(m.decrypt_s)
        downloads = {c.client_id: self.links[c.client_id].transfer(len(agg_msg), "down") for c in self.clients}
        end = close + agg_clock + max(downloads.values()) + dec_clock
        self.clock.advance(end - t0)
        # What the next round's deadline and this round's prediction rest on.
        self.last_upload = {a.client_id: len(a.message) for a in arrivals}
        self.last_compute = {a.client_id: a.train_s + a.encrypt_s for a in arrivals}
        self.last_download = len(agg_msg)
        predicted = 0.0
        if arrivals:
            predicted = (
                predict_round_time(
                    {cid: self.measured_links[cid] for cid in self.last_upload},
                    self.last_upload,
                    self.last_download,
                    self.last_compute,
                ).total_s
                + agg_clock
                + dec_clock
            )
        crit = max(included, key=lambda a: (a.arrival_s, a.order))
        self._timeline(m, t0, crit, agg_clock, max(downloads.values()), dec_clock)
        m.predicted_s = predicted
        m.stragglers = stragglers
        return m

    def _async_round(self, r: int, on_client: Callable[[str], None] | None) -> RoundMetrics:
        """One FedBuff aggregation: wait for ``buffer_size`` updates of any recent version, aggregate, broadcast."""
        cfg = self.cfg
        t0 = self.clock.now
        self.server.start_round(r, max_staleness=cfg.max_staleness)
        if r == 0 and not self.in_flight and not self.waiting:
            self.waiting = list(self.client_ids)  # everyone holds the initial model
        # Clouds waiting for a model start now from version r (the one they hold);
        # one whose training fails is left out of this version and tries again at the next.
        dropped = [cid for cid in self.waiting if not self._start_async(cid, r, t0, on_client)]
        self.waiting = list(dropped)
        need = fedbuff_buffer(cfg.buffer_size, cfg.clouds, cfg.min_clients)
        included: list[InFlight] = []
        close = t0
        while len(included) < need and self.in_flight:
            a = self.in_flight.pop()
            close = max(close, a.arrival_s)
            self.waiting.append(a.client_id)  # it idles until the next global model
            try:
                self.server.receive(a.client_id, a.message)
            except UpdateRejected:
                dropped.append(a.client_id)
                continue
            included.append(a)
        if not included:
            raise RoundFailed(f"version {r}: no update in flight (every cloud failed or spent its rounds)")
        m, agg_msg = self._aggregate_and_apply(r, included, dropped)
        agg_clock = self._on_clock(m.aggregate_s)
        # The waiting clouds download the new aggregate and start from version r + 1
        # at the next call; the clouds still training fetch it when they finish.
        flush = close + agg_clock
        self.clock.advance(flush - t0)
        self.last_download = len(agg_msg)
        self._agg_sizes.append(len(agg_msg))
        crit = max(included, key=lambda a: (a.arrival_s, a.order))
        self._timeline(m, t0, crit, agg_clock, 0.0, 0.0)
        return m

    def _start_async(self, cid: str, version: int, now: float, on_client: Callable[[str], None] | None) -> bool:
        """Downloads the aggregates ``cid`` lacks, then trains from ``version`` and puts its update in flight.

        Returns False if its training failed (it should try again at the next version).
        """
        k = self.client_ids.index(cid)
        if cid in self.dp and self.local_rounds[cid] >= self.cfg.rounds:
            return True  # done: its record-level DP budget was calibrated for `rounds` local rounds
        seen = self._seen_version.get(cid, 0)
        fetch = sum(self.links[cid].transfer(n, "down") for n in self._agg_sizes[seen:version])
        if version > seen:
            fetch += self._on_clock(self._last_decrypt_s)
        self._seen_version[cid] = version
        item = self._launch(self.clients[k], version, now + fetch)
        if on_client is not None:
            on_client(cid)
        if item is None:
            return False
        self.in_flight.push(item)
        return True

    def _launch(self, client: FederatedClient, base_round: int, start_s: float) -> InFlight | None:
        """Trains ``client`` from the current global model; its update, timed on the simulated clock."""
        cid = client.client_id
        self.local_rounds[cid] += 1
        try:
            msg, st = client.fit(
                self.global_state, base_round, seed=derive_seed(self.cfg.seed, "train", base_round, cid)
            )
            if self.client_hook is not None:
                msg = self.client_hook(base_round, cid, msg)
        except ClientFailure as e:
            self.server.reject(cid, str(e))
            return None
        except Exception as e:  # any other crash of the client's training or encryption: it misses the round
            log.warning("%s crashed in round %d", cid, base_round, exc_info=True)
            self.server.reject(cid, f"crashed: {type(e).__name__}: {e}")
            return None
        train_s, encrypt_s = split_compute(
            st.train_seconds, st.encrypt_seconds, self.slowdown[cid], self.cfg.sim_compute_s
        )
        upload_s = self.links[cid].transfer(len(msg), "up")
        return InFlight(
            arrival_s=start_s + train_s + encrypt_s + upload_s,
            order=self.client_ids.index(cid),
            client_id=cid,
            base_round=base_round,
            message=msg,
            stats=st.__dict__.copy(),
            train_s=train_s,
            encrypt_s=encrypt_s,
            upload_s=upload_s,
        )

    def _on_clock(self, measured_s: float) -> float:
        """Server and decryption time as the simulated clock counts it (0 when compute is modelled)."""
        return 0.0 if self.cfg.sim_compute_s > 0 else measured_s

    def _timeline(
        self, m: RoundMetrics, t0: float, crit: InFlight, agg_s: float, download_s: float, decrypt_s: float
    ) -> None:
        """Fills the simulated-time columns along the critical path: the last included update.

        Only the part of that update's training, encryption and upload that
        falls inside this round counts (a carried or asynchronous update may
        have started earlier); the rest of the round is waiting.
        """
        m.sim_time_s = self.clock.now
        m.sim_round_s = self.clock.now - t0
        upload_start = crit.arrival_s - crit.upload_s
        encrypt_start = upload_start - crit.encrypt_s
        train_start = encrypt_start - crit.train_s

        def inside(a: float, b: float) -> float:
            return max(0.0, min(b, crit.arrival_s) - max(a, t0))

        m.sim_train_s = inside(train_start, encrypt_start)
        m.sim_encrypt_s = inside(encrypt_start, upload_start)
        m.sim_upload_s = inside(upload_start, crit.arrival_s)
        m.sim_aggregate_s, m.sim_download_s, m.sim_decrypt_s = agg_s, download_s, decrypt_s
        busy = m.sim_train_s + m.sim_encrypt_s + m.sim_upload_s + agg_s + download_s + decrypt_s
        m.sim_wait_s = max(0.0, m.sim_round_s - busy)

    def _aggregate_and_apply(self, r: int, included: list[InFlight], dropped: list[str]) -> tuple[RoundMetrics, bytes]:
        """Aggregates what the server accepted, decrypts, applies the global step; the round's metrics."""
        try:
            agg_msg, summary = self.server.finish_round()
        except RoundFailed as e:
            log.error("%s; the global model is unchanged", e)
            raise
        delta, decrypt_s = self._release(agg_msg, r)
        self._last_decrypt_s = decrypt_s
        if self.scaffold:
            delta, increment = split_update(delta, self.layout.total)
            self.federation_control = update_federation(
                self.federation_control, increment, len(summary.accepted), self.cfg.clouds
            )
            for cid, cv in self.controls.items():
                cv.settle(cid in summary.accepted)
            for c in self.clients:
                c.federation_control = self.federation_control
        # The global step (xcloud.fl.global_step): every cloud holds the same
        # decrypted delta and applies the same rule, so they stay in sync.
        new_vec = self.global_opt.step(self.layout.flatten(self.global_state), delta)
        self.global_state.update(self.layout.unflatten(new_vec, self.global_state))
        val = self._validate()
        fits = [a.stats for a in included]
        n = sum(f["examples"] for f in fits)
        train_loss = sum(f["loss"] * f["examples"] for f in fits) / n
        cloud_eps = {cid: float(dp.epsilon()) for cid, dp in sorted(self.dp.items())}  # every cloud's, not the fits'
        m = RoundMetrics(
            round=r,
            train_loss=train_loss,
            val_loss=val,
            val_ppl=math.exp(val),
            bytes_up=summary.bytes_in,
            bytes_down=summary.bytes_out * len(self.clients),
            train_s=sum(f["train_seconds"] for f in fits),
            encrypt_s=sum(f["encrypt_seconds"] for f in fits),
            aggregate_s=summary.aggregate_seconds,
            decrypt_s=decrypt_s,
            round_s=0.0,
            epsilon=max(cloud_eps.values()) if cloud_eps else None,
            accepted=len(summary.accepted),
            dropped=dropped,
            weights=summary.weights,
            cloud_epsilon=cloud_eps,
            client_epsilon=self._client_epsilon(summary.weights),
            # In the aggregator's canonical order (client, staleness), aligned with `weights`.
            staleness=[s for _, s in sorted((a.client_id, r - a.base_round) for a in included)],
            clients=list(summary.accepted),
            clipped=sum(int(f.get("clipped", 0)) for f in fits),
        )
        if m.clipped:
            log.warning(
                "round %d: %d encrypted values beyond max_value %g were clipped before encryption",
                r,
                m.clipped,
                self.ctx.max_value,
            )
        return m, agg_msg

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
            "format": 2,
            "next_round": self.next_round,
            "global_state": self.global_state,
            "global_opt": {k: torch.from_numpy(v) for k, v in self.global_opt.state().items()},
            "metrics": [m.__dict__ for m in self.metrics],
            "dp": {cid: dp.state_dict() for cid, dp in self.dp.items()},
            # The simulation plays every cloud, so its checkpoint holds their shared
            # secret key; run_training writes it readable by the owner only.
            "keys": keys.secret_bytes() if (keys := getattr(self, "keys", None)) is not None else None,
            "layout_digest": self.layout.digest().hex(),
            "vocab_hash": self.tokenizer.vocab_hash(),
            "config": self.cfg.to_dict(),  # what --resume must keep (see RESUMABLE)
            "local_lr": self._local_lrs(),
            # SCAFFOLD: the federation's control variate and each cloud's own.
            "control": None
            if not self.scaffold
            else {
                "federation": None if self.federation_control is None else torch.from_numpy(self.federation_control),
                "clients": {
                    cid: None if cv.own is None else torch.from_numpy(cv.own.copy())
                    for cid, cv in self.controls.items()
                },
                "pending": {
                    cid: None if cv.pending is None else torch.from_numpy(cv.pending.copy())
                    for cid, cv in self.controls.items()
                },
            },
            "timeline": self._timeline_state(),
            # Error-feedback residuals of lossy compression (what each sender has yet to
            # deliver): the uplink of every cloud, and the server's downlink.
            "error_feedback": {
                name: None if fb.residual is None else torch.from_numpy(fb.residual.copy())
                for name, fb in [(c.client_id, c.feedback) for c in getattr(self, "clients", [])]
                + ([("server", self.server.downlink_feedback)] if hasattr(self, "server") else [])
            },
        }

    def _client_epsilon(self, weights: list[float]) -> float | None:
        """Client-level epsilon after this aggregation (with ``weights``) and every earlier one.

        Each aggregation is accounted with the multiplier it actually ran with
        (:func:`~xcloud.privacy.effective_multiplier`): fewer updates than
        clouds, or unequal weights (staleness discounts in asynchronous runs),
        give less noise relative to the largest weight than the configured
        ``client_dp_noise``.
        """
        z = self.cfg.client_dp_noise
        if z <= 0:
            return None
        rows = [m.weights for m in self.metrics] + [weights]
        zs = [effective_multiplier(z, w, self.cfg.clouds) for w in rows if w]  # a row without weights released nothing
        return client_level_epsilon_of(zs, self.cfg.dp_delta)

    def _dp_lr(self) -> float:
        """The learning rate of local DP-SGD training: ``dp_lr``, or ``lr`` where it is 0."""
        return float(self.cfg.dp_lr or self.cfg.lr)

    def _lr_factor(self, round_id: int, *, dp: bool = False) -> float:
        """The schedule's factor on the local learning rates in ``round_id`` (xcloud.fl.schedule).

        DP-SGD (``dp``) follows its own final factor and decaying share (``RunConfig.decay_of``).
        """
        final, decay = self.cfg.decay_of(dp=dp)
        return lr_factor(self.cfg.lr_schedule, round_id, self.cfg.rounds, final, decay)

    def _local_lrs(self) -> dict[str, float]:
        """The local learning rates in effect (a resumed run must keep them)."""
        lrs = {"lr": float(self.cfg.lr)}
        if self.dp:
            lrs["dp_lr"] = self._dp_lr()
        return lrs

    def _timeline_state(self) -> dict[str, Any]:
        """The simulated clock, link draws and synchronisation state: a resumed run continues the same timeline."""
        state: dict[str, Any] = {
            "clock": self.clock.now,
            "links": {cid: link.rng_state() for cid, link in self.links.items()},
            "carried": [a.state() for a in self.carried],
            "in_flight": self.in_flight.state(),
            "waiting": list(self.waiting),
            "local_rounds": dict(self.local_rounds),
            "last_upload": dict(self.last_upload),
            "last_compute": dict(self.last_compute),
            "last_download": self.last_download,
            "agg_sizes": list(self._agg_sizes),
            "seen_version": dict(self._seen_version),
            "last_decrypt_s": self._last_decrypt_s,
        }
        if self.cfg.method != "centralized":
            # Updates still in flight were authenticated under these keys.
            state["mac_keys"] = {
                c.client_id: torch.frombuffer(bytearray(c.mac_key), dtype=torch.uint8) for c in self.clients
            }
            state["seen"] = [[cid, r] for cid, r in sorted(self.server.seen_updates)]
        return state

    def _load_timeline(self, state: dict[str, Any]) -> None:
        self.clock = SimClock(state["clock"])
        for cid, rng in state["links"].items():
            self.links[cid].set_rng_state(rng)
        self.carried = [InFlight.from_state(a) for a in state["carried"]]
        self.in_flight = ArrivalQueue.from_state(state["in_flight"])
        self.waiting = list(state["waiting"])
        self.local_rounds = dict(state["local_rounds"])
        self.last_upload = dict(state["last_upload"])
        self.last_compute = dict(state["last_compute"])
        self.last_download = int(state["last_download"])
        self._agg_sizes = list(state["agg_sizes"])
        self._seen_version = dict(state["seen_version"])
        self._last_decrypt_s = float(state["last_decrypt_s"])
        if "mac_keys" in state:
            for c in self.clients:
                key = bytes(state["mac_keys"][c.client_id].numpy().tobytes())
                c.mac_key = key
                self.server.mac_keys[c.client_id] = key
            self.server.seen_updates = {(cid, int(r)) for cid, r in state["seen"]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores a checkpoint made by :meth:`state_dict` for the same configuration.

        Raises
        ------
        ValueError
            If the checkpoint does not match this run's model, vocabulary or
            learning rates, or lacks a field or holds one of the wrong type or
            shape (a damaged or foreign file that unpickled nonetheless).
        """
        try:
            self._load_state(state)
        except (KeyError, TypeError, AttributeError, IndexError, RuntimeError) as e:
            raise ValueError(f"checkpoint is malformed: {type(e).__name__}: {e}") from None

    def _load_state(self, state: dict[str, Any]) -> None:
        # The configuration first: a changed option is named, not reported as another model.
        saved_cfg = state.get("config")  # absent in older checkpoints
        if saved_cfg is not None:
            now = self.cfg.to_dict()
            changed = sorted(k for k, v in saved_cfg.items() if k in now and k not in RESUMABLE and now[k] != v)
            if changed:
                was = ", ".join(f"{k}={saved_cfg[k]!r}" for k in changed[:6])
                has = ", ".join(f"{k}={now[k]!r}" for k in changed[:6])
                raise ValueError(
                    f"the checkpoint was made with {was}; this run has {has} (only "
                    f"{', '.join(sorted(RESUMABLE))} may change on --resume)"
                )
            if saved_cfg.get("lr_schedule", "constant") != "constant" and saved_cfg.get("rounds") != self.cfg.rounds:
                raise ValueError(
                    f"the checkpoint's {saved_cfg['lr_schedule']} learning-rate schedule spans "
                    f"{saved_cfg.get('rounds')} rounds; with rounds={self.cfg.rounds} its remaining rounds would "
                    "follow another schedule than an uninterrupted run (resume with the same rounds)"
                )
        if state.get("format") != 2 or state.get("layout_digest") != self.layout.digest().hex():
            raise ValueError("checkpoint does not match this run's model or format")
        saved_vocab = state.get("vocab_hash")  # absent in older checkpoints
        if saved_vocab is not None and saved_vocab != self.tokenizer.vocab_hash():
            raise ValueError(
                "checkpoint was trained with another vocabulary (its token ids would mean other words); "
                "resume with the tokenizer of the interrupted run"
            )
        saved_lr = state.get("local_lr")
        if saved_lr is None and self.dp and self.cfg.dp_lr > 0 and self.cfg.dp_lr != self.cfg.lr:
            raise ValueError(
                "the checkpoint predates dp_lr (its DP-SGD trained at lr); resume with dp_lr = 0 in config.toml"
            )
        if (
            saved_cfg is not None
            and "dp_batch_size" not in saved_cfg
            and self.dp
            and self.cfg.record_dp_batch_size != self.cfg.batch_size
        ):
            raise ValueError(
                "the checkpoint predates dp_batch_size (its DP-SGD sampled batches of batch_size); "
                "resume with dp_batch_size = 0 in config.toml"
            )
        if saved_lr is not None and saved_lr != self._local_lrs():
            raise ValueError(f"checkpoint trained with learning rates {saved_lr}, this run with {self._local_lrs()}")
        saved = state["global_state"]
        if not isinstance(saved, dict) or {k: tuple(v.shape) for k, v in saved.items()} != {
            k: tuple(v.shape) for k, v in self.global_state.items()
        }:
            raise ValueError("checkpoint's global model does not match this run's parameters")
        self.next_round = int(state["next_round"])
        self.global_state = saved
        self.global_opt.load_state({k: v.numpy() for k, v in state["global_opt"].items()})
        self.metrics = [RoundMetrics(**m) for m in state["metrics"]]
        for cid, s in state["dp"].items():
            self.dp[cid].load_state_dict(s)
        if state.get("keys") is not None and self.cfg.method != "centralized":
            self.keys = KeySet.from_bytes(self.ctx, state["keys"])
            self._rekey()
        if "timeline" in state:
            self._load_timeline(state["timeline"])
        if self.scaffold:
            control = state.get("control")
            if control is None:
                raise ValueError("checkpoint has no SCAFFOLD control variates but the run corrects drift")
            fed = control["federation"]
            self.federation_control = None if fed is None else fed.numpy().copy()
            for cid, own in control["clients"].items():
                cv = self.controls.setdefault(cid, ControlVariate(self.layout))
                cv.own = None if own is None else own.numpy().copy()
                pending = control["pending"].get(cid)
                cv.pending = None if pending is None else pending.numpy().copy()
            for c in getattr(self, "clients", []):
                c.federation_control = self.federation_control
        # After _rekey, which rebuilds the clients and the server.
        feedbacks = {c.client_id: c.feedback for c in getattr(self, "clients", [])}
        if hasattr(self, "server"):
            feedbacks["server"] = self.server.downlink_feedback
        for name, residual in state.get("error_feedback", {}).items():
            if name in feedbacks:
                feedbacks[name].load_state_dict({"residual": residual})

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
