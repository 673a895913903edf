"""A federated client: trains locally, protects its update, and applies the aggregate.

One round, as data (DESIGN.md): model delta -> flatten -> (clip) -> split by the
protection plan -> encrypted part: encrypt_blocks -> ciphertext bytes; plain
part: float32 bytes, or compressed with error feedback
(:mod:`xcloud.fl.compression`) -> one authenticated message.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

import xcloud
from xcloud.crypto import CkksContext, KeySet
from xcloud.errors import IntegrityError
from xcloud.fl.compression import AutoPolicy, Codec, ErrorFeedback, compress, resolve
from xcloud.fl.drift import ControlVariate
from xcloud.fl.errors import ClientFailure
from xcloud.fl.layout import ParameterLayout
from xcloud.fl.messages import (
    MAX_BANDWIDTH_MBPS,
    MIN_BANDWIDTH_MBPS,
    AggregateHeader,
    UpdateHeader,
    pack_update,
    unpack_aggregate,
)
from xcloud.fl.protection import ProtectionPlan
from xcloud.models.hf_lora import load_trainable_state, trainable_state

__all__ = ["FederatedClient", "FitStats", "flood", "open_aggregate"]


@dataclass
class FitStats:
    """Measurements of one client's local round."""

    client_id: str
    loss: float
    examples: int
    train_seconds: float
    encrypt_seconds: float
    bytes_up: int
    epsilon: float | None
    clipped: int


def flood(values: np.ndarray, sigma: float) -> np.ndarray:
    """Adds Gaussian noise of standard deviation ``sigma`` drawn from the OS CSPRNG.

    Noise flooding against the Li-Micciancio key-recovery attack: a decrypted
    CKKS result that can reach a party who also sees the ciphertext must carry
    noise much larger than the encryption noise (here ~2^-28 by default).
    """
    if sigma <= 0:
        return values
    n = values.size
    raw = np.frombuffer(os.urandom(16 * n), dtype=np.uint64).reshape(2, n)
    u1 = ((raw[0] >> np.uint64(11)).astype(np.float64) + 1.0) * 2.0**-53  # (0, 1]
    u2 = (raw[1] >> np.uint64(11)).astype(np.float64) * 2.0**-53
    z = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
    return (values.reshape(-1) + sigma * z).astype(values.dtype).reshape(values.shape)


def open_aggregate(
    msg: bytes,
    *,
    ctx: CkksContext,
    keys: KeySet | None,
    plan: ProtectionPlan,
    server_key: Ed25519PublicKey,
    round_id: int,
    threads: int | None = None,
) -> tuple[AggregateHeader, np.ndarray, float]:
    """Verifies an aggregate, decrypts its encrypted part and returns (header, full delta, decrypt seconds).

    Raises
    ------
    IntegrityError
        Tampered or malformed message, or one for another round or plan.
    ValueError
        If an encrypted part is present and ``keys`` has no secret key.
    """
    mask = plan.mask()
    header, plain, ct = unpack_aggregate(msg, server_key, ctx, n_plain=int((~mask).sum()))
    if header.round_id != round_id:
        raise IntegrityError(f"aggregate is for round {header.round_id}, expected {round_id}")
    if header.plan != plan.digest().hex() or header.fingerprint != ctx.fingerprint.hex():
        raise IntegrityError("aggregate follows another protection plan or CKKS context")
    if header.n_plain != int((~mask).sum()) or header.n_encrypted != int(mask.sum()):
        raise IntegrityError("aggregate sizes do not match the protection plan")
    if not np.all(np.isfinite(plain)):  # signed, but a faulty server must not poison every model
        raise IntegrityError("aggregate's plain part holds NaN or Inf")
    delta = np.zeros(mask.size, dtype=np.float32)
    delta[~mask] = plain
    seconds = 0.0
    if mask.any():
        if ct is None or ct.size != int(mask.sum()):
            raise IntegrityError("aggregate's encrypted part is missing or of the wrong size")
        if keys is None or not keys.has_secret:
            raise ValueError("decrypting the aggregate needs the secret key")
        t0 = time.perf_counter()
        delta[mask] = xcloud.decrypt_blocks(keys, ct, threads=threads, dtype="float32")
        seconds = time.perf_counter() - t0
    return header, delta, seconds


class FederatedClient:
    """One cloud's participant.

    Parameters
    ----------
    client_id : str
    model : torch.nn.Module
        The client's working copy of the model.
    train_set : torch.utils.data.Dataset
    train : callable
        ``train(model, dataset, seed, *, round_id) -> stats`` with ``mean_loss``,
        ``examples`` and ``epsilon`` attributes (local training, possibly with
        record-level DP; ``round_id`` is the round trained in, for the
        learning-rate schedule).
    ctx : CkksContext
    keys : KeySet or None
        Full keys (shared-key mode) or public keys (public-key mode); None when
        nothing is encrypted.
    mac_key : bytes
        Authenticates this client's updates towards the server.
    layout, plan
        The agreed flattening and protection plan.
    bandwidth_mbps : float
        Measured uplink bandwidth, reported for dynamic weighting.
    threads : int, optional
        Encryption threads.
    update_transform : callable, optional
        Applied to the flat delta before protection (client-level DP: clip
        and add this client's noise share).
    compression : Codec or AutoPolicy, optional
        Codec of the plain part, or a policy choosing one each round from
        ``bandwidth_mbps``; None (default) sends float32, as before
        compression existed. Lossy codecs go through the client's
        error-feedback residual, :attr:`feedback`.
    control : ControlVariate, optional
        SCAFFOLD drift correction (:mod:`xcloud.fl.drift`): local training is
        shifted by ``federation_control - c_i``, and the update carries the
        increment of ``c_i`` after the delta, so ``plan`` must be the :func:`~xcloud.fl.drift.control_plan`
        of the model's plan. ``train`` is then called with a ``correction`` keyword.
    """

    def __init__(
        self,
        client_id: str,
        model: torch.nn.Module,
        train_set: Any,
        train: Any,
        ctx: CkksContext,
        keys: KeySet | None,
        mac_key: bytes,
        layout: ParameterLayout,
        plan: ProtectionPlan,
        bandwidth_mbps: float = 100.0,
        threads: int | None = None,
        update_transform: Any = None,
        compression: Codec | AutoPolicy | None = None,
        control: ControlVariate | None = None,
    ) -> None:
        self.client_id = client_id
        self.model = model
        self.train_set = train_set
        self.train = train
        self.ctx, self.keys, self.mac_key = ctx, keys, mac_key
        self.layout, self.plan = layout, plan
        self.bandwidth_mbps = bandwidth_mbps
        self.threads = threads
        self.update_transform = update_transform
        self.compression = compression
        self.feedback = ErrorFeedback()  # uplink residual of lossy codecs (checkpointed with the run)
        self.control = control
        self.federation_control: np.ndarray | None = None  # the released aggregate of the c_i (SCAFFOLD)
        self._mask = plan.mask()
        if control is not None and plan.layout.total != 2 * layout.total:
            raise ValueError("with a control variate the plan must cover the delta and the control variate")
        if self._mask.any() and keys is None:
            raise ValueError("the protection plan encrypts values but the client has no keys")

    def fit(self, global_state: dict[str, torch.Tensor], round_id: int, seed: int) -> tuple[bytes, FitStats]:
        """Trains from ``global_state`` and returns the protected update message.

        Raises
        ------
        ClientFailure
            If training diverges (non-finite update) or encryption fails.
        """
        load_trainable_state(self.model, global_state)
        t0 = time.perf_counter()
        if self.control is None:
            stats = self.train(self.model, self.train_set, seed, round_id=round_id)
        else:
            correction = self.control.correction(self.federation_control, global_state)
            stats = self.train(self.model, self.train_set, seed, round_id=round_id, correction=correction)
        train_s = time.perf_counter() - t0
        start = self.layout.flatten(global_state)
        delta = self.layout.flatten(trainable_state(self.model)) - start
        if not np.all(np.isfinite(delta)):
            raise ClientFailure(f"client {self.client_id}: local training produced a non-finite update")
        if self.update_transform is not None:
            delta = self.update_transform(delta)
        if self.control is not None:
            increment = self.control.collect()
            if not np.all(np.isfinite(increment)):
                raise ClientFailure(f"client {self.client_id}: local training produced a non-finite control variate")
            delta = np.concatenate([delta, increment])
        return self._protect(delta, round_id, float(stats.mean_loss), len(self.train_set), train_s, stats.epsilon)

    def _protect(
        self, delta: np.ndarray, round_id: int, loss: float, num_samples: int, train_s: float, epsilon: float | None
    ) -> tuple[bytes, FitStats]:
        enc_values = delta[self._mask]
        limit = self.ctx.max_value
        clipped = int(np.count_nonzero(np.abs(enc_values) > limit))
        ct = None
        t0 = time.perf_counter()
        if enc_values.size:
            assert self.keys is not None
            try:
                ct = xcloud.encrypt_blocks(self.keys, np.clip(enc_values, -limit, limit), threads=self.threads)
            except ValueError as e:
                raise ClientFailure(f"client {self.client_id}: encryption failed: {e}") from e
        enc_s = time.perf_counter() - t0
        plain_values = delta[~self._mask]
        codec = resolve(self.compression, self.bandwidth_mbps) if plain_values.size else Codec("none")
        plain: np.ndarray | bytes
        if codec.name == "none":
            # Lossless: also delivers whatever a lossy codec of an earlier round (auto) still owes.
            plain = self.feedback.compensate(plain_values)
            self.feedback.reset()
        else:
            try:
                plain = compress(plain_values, codec, self.feedback)
            except ValueError as e:
                raise ClientFailure(f"client {self.client_id}: compressing the plain part failed: {e}") from e
        header = UpdateHeader(
            client_id=self.client_id,
            round_id=round_id,
            fingerprint=self.ctx.fingerprint.hex(),
            key_id=self.keys.key_id.hex() if (self.keys is not None and ct is not None) else "",
            plan=self.plan.digest().hex(),
            num_samples=num_samples,
            loss=loss,
            # What it measured, within the range the aggregator accepts (a link probed
            # slightly below 1 kbit/s must not cost the cloud every round).
            bandwidth_mbps=min(max(float(self.bandwidth_mbps), MIN_BANDWIDTH_MBPS), MAX_BANDWIDTH_MBPS),
            n_plain=int(delta.size - enc_values.size),
            n_encrypted=int(enc_values.size),
            codec=codec.name,
        )
        msg = pack_update(header, plain, ct, self.mac_key)
        return msg, FitStats(self.client_id, loss, num_samples, train_s, enc_s, len(msg), epsilon, clipped)
