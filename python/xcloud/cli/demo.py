"""Kernel demonstration: clients encrypt updates, a server aggregates ciphertexts it cannot read, a client decrypts.

Every number printed is measured in this run on this machine.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from dataclasses import dataclass

import numpy as np

import xcloud

__all__ = ["DemoResult", "add_arguments", "run_demo"]


@dataclass
class DemoResult:
    """Measurements of one demonstration round."""

    clients: int
    values: int
    threads: int
    mode: str
    encrypt_s: list[float]
    wire_bytes: list[int]
    aggregate_s: float
    decrypt_s: float
    max_abs_error: float
    aes_gcm_s: float | None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clients", type=int, default=3, help="number of simulated clients (default: 3)")
    p.add_argument(
        "--values", type=int, default=1_000_000, help="values in each client's model update (default: 1,000,000)"
    )
    p.add_argument("--threads", type=int, default=None, help="worker threads (default: all hardware threads)")
    p.add_argument(
        "--mode",
        choices=("secret", "public"),
        default="secret",
        help="'secret': shared-key mode, seeded ciphertexts (default); 'public': public-key encryption",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic updates (not of the encryption)")


def _fmt_rate(n: int, seconds: float) -> str:
    return f"{n / seconds / 1e6:8.1f} M values/s" if seconds > 0 else "-"


def _aes_gcm_seconds(payload: bytes) -> float | None:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        return None
    aes = AESGCM(AESGCM.generate_key(bit_length=256))
    nonce = os.urandom(12)
    t0 = time.perf_counter()
    aes.encrypt(nonce, payload, None)
    return time.perf_counter() - t0


def run_demo(args: argparse.Namespace) -> DemoResult:
    """Runs one encrypted aggregation round and prints what happened."""
    if args.clients < 1:
        raise ValueError("--clients must be at least 1")
    if args.values < 1:
        raise ValueError("--values must be at least 1")
    rng = np.random.default_rng(args.seed)
    ctx = xcloud.CkksContext()
    print(f"context: {ctx}")
    keys = ctx.keygen()  # the clients' shared key; the server never holds it
    sender_keys = keys if args.mode == "secret" else keys.public_only()

    updates = [np.clip(rng.normal(0.0, 0.2, args.values), -1.0, 1.0).astype(np.float32) for _ in range(args.clients)]
    samples = rng.integers(500, 5000, args.clients)
    weights = samples / samples.sum()

    wire: list[bytes] = []
    enc_s: list[float] = []
    for k, u in enumerate(updates):
        t0 = time.perf_counter()
        ct = xcloud.encrypt_blocks(sender_keys, u, threads=args.threads)
        blob = ct.to_bytes()
        enc_s.append(time.perf_counter() - t0)
        wire.append(blob)
        print(
            f"client {k}: encrypted {u.size:,} values in {enc_s[-1] * 1e3:7.1f} ms ({_fmt_rate(u.size, enc_s[-1])}), "
            f"{len(blob):,} bytes = {len(blob) / u.nbytes:.2f}x float32"
        )

    # The server: parse and validate the bytes, weighted sum of ciphertexts.
    t0 = time.perf_counter()
    received = [xcloud.CiphertextBlocks.from_bytes(ctx, b) for b in wire]
    total = xcloud.aggregate(received, weights=list(weights), threads=args.threads)
    agg_blob = total.to_bytes()
    agg_s = time.perf_counter() - t0
    print(f"server : aggregated {args.clients} ciphertexts in {agg_s * 1e3:7.1f} ms, result {len(agg_blob):,} bytes")

    t0 = time.perf_counter()
    avg = xcloud.decrypt_blocks(keys, xcloud.CiphertextBlocks.from_bytes(ctx, agg_blob), threads=args.threads)
    dec_s = time.perf_counter() - t0
    expected = np.tensordot(weights, np.stack([u.astype(np.float64) for u in updates]), axes=1)
    err = float(np.max(np.abs(avg.astype(np.float64) - expected)))
    print(
        f"client : decrypted the weighted average in {dec_s * 1e3:7.1f} ms ({_fmt_rate(args.values, dec_s)}); "
        f"max |error| vs numpy = {err:.3g} (2^{math.log2(err) if err > 0 else float('-inf'):.1f})"
    )
    aes_s = _aes_gcm_seconds(updates[0].tobytes())
    if aes_s is not None:
        print(
            f"baseline: AES-256-GCM on the same {updates[0].nbytes:,} bytes: {aes_s * 1e3:7.1f} ms "
            f"({_fmt_rate(args.values, aes_s)}, 1 thread)"
        )
    return DemoResult(
        args.clients,
        args.values,
        args.threads or xcloud._native.hardware_threads(),
        args.mode,
        enc_s,
        [len(b) for b in wire],
        agg_s,
        dec_s,
        err,
        aes_s,
    )
