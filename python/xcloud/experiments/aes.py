"""The paper's encryption-time comparison: AES-256-GCM against xcloud's CKKS kernel.

Encrypts and decrypts the same float32 payload (values uniform in [-1, 1], a
fixed seed) of 1 M and 10 M values with

- AES-256-GCM (the `cryptography` package, OpenSSL), one call with a fresh
  12-byte nonce, one thread: the baseline;
- xcloud "naive": a plain Python loop over slices of one ciphertext's capacity
  (N = 4096 values), one encrypt_blocks / decrypt_blocks call per slice, one
  thread: what a per-ciphertext loop costs;
- xcloud "batched": one encrypt_blocks / decrypt_blocks call, one thread;
- xcloud "block-parallel": one call on all cores (or --threads),

each in secret-key mode (shared key, seeded ciphertexts) and public-key mode
(decryption rows: the ciphertexts that mode makes, decrypted with the secret key).
Every time is the best of --repeat calls (after one untimed warm-up call unless
--short) measured with time.perf_counter. Reported per row: values/s, the ratio
to AES-256-GCM on the same operation and size in the same run, bytes per value
(ciphertext bytes over values; AES: nonce + ciphertext + tag) and precision bits
(-log2 of the largest absolute error against the payload; AES is exact).
--short (for CI) uses 100 k and 1 M values and one repeat.

Writes aes.csv, aes.png, aes.json (config, machine, load) and a report.md section
into a new run directory under --out.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

import xcloud
from xcloud.experiments.report import CpuShare, RunDirectory, machine_info, machine_label, markdown_table, new_figure

__all__ = [
    "COLUMNS",
    "HELP",
    "NAME",
    "AesConfig",
    "Case",
    "Prepared",
    "Runner",
    "add_arguments",
    "cases",
    "config_from_args",
    "measure",
    "payload",
    "run",
]

NAME = "aes"
HELP = "encryption time vs AES-256-GCM: xcloud CKKS naive, batched and block-parallel, at 1M and 10M values"

SIZES = (1_000_000, 10_000_000)
SHORT_SIZES = (100_000, 1_000_000)
REPEAT = 5
SHORT_REPEAT = 1
PAYLOAD_SEED = 20_240_917
"""The payload seed bench/benchlib.py uses too, so both encrypt the same values."""
MAX_VALUES = 200_000_000
"""Largest --sizes entry accepted (about 4 GB of public-key ciphertext)."""

BASELINE = "AES-256-GCM"
COLUMNS = (
    "values",
    "operation",
    "implementation",
    "mode",
    "variant",
    "threads",
    "seconds",
    "values_per_s",
    "x_aes",
    "bytes_per_value",
    "max_abs_error",
    "log2_max_abs_error",
    "precision_bits",
    "repeats",
    "other_cpu_cores",
)
"""Columns of aes.csv, in order (empty cells: not applicable, e.g. the error of exact AES).

``other_cpu_cores``: CPU used by other processes while the row was timed, in cores
(:class:`~xcloud.experiments.report.CpuShare`); rows timed on a busy machine show it."""


@dataclass(frozen=True)
class AesConfig:
    """A resolved, validated configuration of the experiment.

    Attributes
    ----------
    sizes : tuple of int
        Payload sizes (values).
    repeat : int
        Timed calls per case; the best is kept.
    warmup : bool
        One untimed call before the timed ones.
    threads : int or None
        Threads of the block-parallel rows; None is all hardware threads.
    seed : int
        Payload seed.
    short : bool
        Whether --short chose the defaults.
    ckks : str
        The CKKS preset (:data:`xcloud.crypto.PRESETS`).
    """

    sizes: tuple[int, ...] = SIZES
    repeat: int = REPEAT
    warmup: bool = True
    threads: int | None = None
    seed: int = PAYLOAD_SEED
    short: bool = False
    ckks: str = "default"


@dataclass(frozen=True)
class Case:
    """One timed row: an operation of one implementation in one mode and variant."""

    operation: str  # "encrypt" | "decrypt"
    implementation: str  # BASELINE | "xcloud"
    mode: str = ""  # "" | "secret-key" | "public-key"
    variant: str = ""  # "" | "naive" | "batched" | "block-parallel"
    threads: int = 1

    @property
    def label(self) -> str:
        if self.implementation == BASELINE:
            return BASELINE
        return f"xcloud {self.mode} {self.variant} ({self.threads}t)"


@dataclass
class Prepared:
    """One case ready to time: ``run()`` is the timed call, ``check(result)`` gives (output bytes, max |error|)."""

    run: Callable[[], Any]
    check: Callable[[Any], tuple[int, float]]  # result -> (output bytes, max abs error)
    extra: dict[str, Any] = field(default_factory=dict)


# -- options -------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Adds the experiment's own options (``--out`` and ``--short`` are added by the command)."""
    p.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        metavar="N",
        default=None,
        help="payload sizes in values (default: 1000000 10000000; with --short: 100000 1000000)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=None,
        metavar="R",
        help=f"timed calls per row, best kept (default: {REPEAT}; with --short: {SHORT_REPEAT}, no warm-up)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="T",
        help="threads of the block-parallel rows (default: all hardware threads)",
    )
    p.add_argument("--seed", type=int, default=PAYLOAD_SEED, help=f"payload seed (default: {PAYLOAD_SEED})")
    p.add_argument(
        "--ckks",
        choices=sorted(xcloud.crypto.PRESETS),
        default="default",
        help="CKKS parameter preset (default: default; compact: one 47-bit prime, 5.9 bytes per value)",
    )


def config_from_args(args: argparse.Namespace) -> AesConfig:
    """Resolves --short defaults and checks every option.

    Raises
    ------
    ValueError
        For a size outside [1, MAX_VALUES], a repeat or thread count below 1,
        or duplicate sizes.
    """
    short = bool(getattr(args, "short", False))
    sizes = tuple(args.sizes) if args.sizes else (SHORT_SIZES if short else SIZES)
    repeat = args.repeat if args.repeat is not None else (SHORT_REPEAT if short else REPEAT)
    for n in sizes:
        if not 1 <= n <= MAX_VALUES:
            raise ValueError(f"--sizes: each size must be between 1 and {MAX_VALUES:,}, got {n}")
    if len(set(sizes)) != len(sizes):
        raise ValueError(f"--sizes: duplicate sizes in {list(sizes)}")
    if repeat < 1:
        raise ValueError(f"--repeat must be at least 1, got {repeat}")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}")
    return AesConfig(
        sizes=sizes,
        repeat=repeat,
        warmup=not short,
        threads=args.threads,
        seed=int(args.seed),
        short=short,
        ckks=getattr(args, "ckks", "default"),
    )


# -- the measurements ----------------------------------------------------------


def payload(n: int, seed: int = PAYLOAD_SEED) -> np.ndarray:
    """``n`` float32 values uniform in [-1, 1] from ``numpy.random.default_rng(seed)``."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, n).astype(np.float32)


def cases(parallel_threads: int) -> list[Case]:
    """Every row of one size, in table order: AES first, then xcloud by mode and variant."""
    out: list[Case] = []
    for op in ("encrypt", "decrypt"):
        out.append(Case(op, BASELINE))
        for mode in ("secret-key", "public-key"):
            out.append(Case(op, "xcloud", mode, "naive", 1))
            out.append(Case(op, "xcloud", mode, "batched", 1))
            out.append(Case(op, "xcloud", mode, "block-parallel", parallel_threads))
    return out


def _best_time(fn: Callable[[], Any], repeat: int, warmup: bool) -> tuple[float, Any]:
    """Best wall time of ``repeat`` calls of ``fn`` (time.perf_counter), and the last call's result."""
    result = fn() if warmup else None
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def _max_error(y: np.ndarray, x64: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(y, dtype=np.float64) - x64)))


class Runner:
    """Keys (made once) and per-size inputs; :meth:`prepare` does a case's untimed setup.

    Ciphertexts for the decryption rows are made once per size and mode and
    kept until the size changes or :meth:`release` is called.
    """

    def __init__(self, ckks: str = "default") -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self.aead = AESGCM(AESGCM.generate_key(bit_length=256))
        self.ctx = xcloud.CkksContext.preset(ckks)
        self.keys = self.ctx.keygen()
        self.public = self.keys.public_only()
        self._n = -1
        self._cache: dict[str, Any] = {}

    def _cached(self, n: int, key: str, make: Callable[[], Any]) -> Any:
        if n != self._n:
            self._cache.clear()
            self._n = n
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def release(self) -> None:
        self._cache.clear()
        self._n = -1

    def prepare(self, case: Case, x: np.ndarray) -> Prepared:
        x64 = self._cached(x.size, "x64", lambda: x.astype(np.float64))
        if case.implementation == BASELINE:
            return self._prepare_aes(case, x)
        return self._prepare_xcloud(case, x, x64)

    def _prepare_aes(self, case: Case, x: np.ndarray) -> Prepared:
        aead, data = self.aead, x.tobytes()
        if case.operation == "encrypt":

            def run_enc() -> tuple[bytes, bytes]:
                nonce = os.urandom(12)  # a fresh nonce per message, as a real sender draws (about a microsecond)
                return nonce, aead.encrypt(nonce, data, None)

            def check_enc(sealed: tuple[bytes, bytes]) -> tuple[int, float]:
                nonce, ct = sealed
                if aead.decrypt(nonce, ct, None) != data:
                    raise AssertionError("AES-256-GCM round trip changed the payload")
                return len(nonce) + len(ct), 0.0

            return Prepared(run=run_enc, check=check_enc)
        nonce = os.urandom(12)
        sealed = aead.encrypt(nonce, data, None)

        def check_dec(plain: bytes) -> tuple[int, float]:
            if plain != data:
                raise AssertionError("AES-256-GCM decryption changed the payload")
            return len(nonce) + len(sealed), 0.0

        return Prepared(run=lambda: aead.decrypt(nonce, sealed, None), check=check_dec)

    def _prepare_xcloud(self, case: Case, x: np.ndarray, x64: np.ndarray) -> Prepared:
        enc, dec = xcloud.encrypt_blocks, xcloud.decrypt_blocks
        mode = "secret" if case.mode == "secret-key" else "public"
        keys = self.keys if mode == "secret" else self.public
        slots, n, threads = self.ctx.slots, x.size, case.threads
        naive = case.variant == "naive"

        if case.operation == "encrypt":
            if naive:

                def run_naive() -> list[xcloud.CiphertextBlocks]:
                    return [enc(keys, x[i : i + slots], threads=1, mode=mode) for i in range(0, n, slots)]

                def check_naive(cts: list[xcloud.CiphertextBlocks]) -> tuple[int, float]:
                    y = np.concatenate([dec(self.keys, c, threads=None, dtype="float64") for c in cts])
                    return sum(c.nbytes for c in cts), _max_error(y, x64)

                return Prepared(run=run_naive, check=check_naive, extra={"ciphertexts": -(-n // slots)})

            def check_batched(ct: xcloud.CiphertextBlocks) -> tuple[int, float]:
                return ct.nbytes, _max_error(dec(self.keys, ct, threads=None, dtype="float64"), x64)

            return Prepared(run=lambda: enc(keys, x, threads=threads, mode=mode), check=check_batched)

        # Decryption: the ciphertexts are made once per size and mode (untimed); the secret key decrypts them.
        if naive:
            cts = self._cached(
                n,
                f"naive-{mode}",
                lambda: [enc(keys, x[i : i + slots], threads=None, mode=mode) for i in range(0, n, slots)],
            )
            nbytes = sum(c.nbytes for c in cts)
            return Prepared(
                run=lambda: np.concatenate([dec(self.keys, c, threads=1) for c in cts]),
                check=lambda y: (nbytes, _max_error(y, x64)),
                extra={"ciphertexts": len(cts)},
            )
        ct = self._cached(n, f"batched-{mode}", lambda: enc(keys, x, threads=None, mode=mode))
        return Prepared(
            run=lambda: dec(self.keys, ct, threads=threads), check=lambda y: (ct.nbytes, _max_error(y, x64))
        )


def measure(cfg: AesConfig, progress: bool = True) -> list[dict[str, Any]]:
    """Times every case at every size; one dict per row, keys :data:`COLUMNS`.

    Parameters
    ----------
    cfg : AesConfig
        Sizes, repeats, threads and seed.
    progress : bool
        Show a tqdm progress bar on stderr.
    """
    runner = Runner(cfg.ckks)
    parallel = cfg.threads or xcloud._native.hardware_threads()
    todo = cases(parallel)
    rows: list[dict[str, Any]] = []
    with tqdm(total=len(cfg.sizes) * len(todo), desc="aes experiment", unit="row", disable=not progress) as bar:
        for n in cfg.sizes:
            x = payload(n, cfg.seed)
            baseline: dict[str, float] = {}
            for case in todo:
                bar.set_postfix_str(f"{n:,} values: {case.operation} {case.label}")
                prep = runner.prepare(case, x)
                share = CpuShare()
                seconds, result = _best_time(prep.run, cfg.repeat, cfg.warmup)
                other = share.other_cores()
                out_bytes, err = prep.check(result)
                del result
                vps = n / seconds
                if case.implementation == BASELINE:
                    baseline[case.operation] = vps
                rows.append(
                    {
                        "values": n,
                        "operation": case.operation,
                        "implementation": case.implementation,
                        "mode": case.mode,
                        "variant": case.variant,
                        "threads": case.threads,
                        "seconds": seconds,
                        "values_per_s": vps,
                        "x_aes": vps / baseline[case.operation] if case.operation in baseline else None,
                        "bytes_per_value": out_bytes / n,
                        "max_abs_error": err,
                        "log2_max_abs_error": math.log2(err) if err > 0 else None,
                        "precision_bits": -math.log2(err) if err > 0 else None,
                        "repeats": cfg.repeat,
                        "other_cpu_cores": other,
                        **prep.extra,
                    }
                )
                bar.update(1)
            runner.release()
    return rows


# -- outputs -------------------------------------------------------------------


def _rate(v: float) -> str:
    return f"{v / 1e9:.2f} G" if v >= 1e9 else f"{v / 1e6:.1f} M"


def _size(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000} M"
    if n % 1_000 == 0:
        return f"{n // 1_000} k"
    return f"{n:,}"


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The Markdown table of the rows (the README's format)."""
    shown = [
        {
            **r,
            "impl": BASELINE if r["implementation"] == BASELINE else f"xcloud {r['mode']}, {r['variant']}",
            "precision": r["precision_bits"] if r["precision_bits"] is not None else "exact",
        }
        for r in rows
    ]
    return markdown_table(
        shown,
        {
            "values": "values",
            "operation": "operation",
            "impl": "implementation",
            "threads": "threads",
            "values_per_s": "values/s",
            "x_aes": "x AES-256-GCM",
            "bytes_per_value": "bytes/value",
            "precision": "precision bits",
            "other_cpu_cores": "other processes, cores",
        },
        {
            "values": _size,
            "values_per_s": _rate,
            "x_aes": lambda v: f"{v:.3g}",
            "bytes_per_value": lambda v: f"{v:.2f}",
            "precision": lambda v: v if isinstance(v, str) else f"{v:.1f}",
            "other_cpu_cores": lambda v: f"{v:.2f}",
        },
    )


def _figure(rows: Sequence[dict[str, Any]], title: str) -> Any:
    ops = ("encrypt", "decrypt")
    fig, axes = new_figure(1, 2, size=(13.0, 5.0))
    sizes = sorted({r["values"] for r in rows})
    width = 0.8 / max(1, len(sizes))
    for ax, op in zip(axes, ops, strict=True):
        op_rows = [r for r in rows if r["operation"] == op]
        labels = list(
            dict.fromkeys(
                BASELINE if r["implementation"] == BASELINE else f"{r['mode']}\n{r['variant']}\n({r['threads']}t)"
                for r in op_rows
            )
        )
        for k, n in enumerate(sizes):
            vals = [r["values_per_s"] for r in op_rows if r["values"] == n]
            xs = [i + (k - (len(sizes) - 1) / 2) * width for i in range(len(vals))]
            ax.bar(xs, vals, width=width, label=f"{_size(n)} values")
        ax.set_yscale("log")
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, fontsize=7)
        ax.set_ylabel("values per second (log scale)")
        ax.set_title(op)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def _summary(rows: Sequence[dict[str, Any]]) -> str:
    """One sentence per size on the rows that answer the paper's claim."""

    def get(n: int, op: str, mode: str, variant: str) -> dict[str, Any] | None:
        for r in rows:
            if (r["values"], r["operation"], r["mode"], r["variant"]) == (n, op, mode, variant):
                return r
        return None

    parts = []
    for n in sorted({r["values"] for r in rows}):
        naive, batched = get(n, "encrypt", "secret-key", "naive"), get(n, "encrypt", "secret-key", "batched")
        par, pub = get(n, "encrypt", "secret-key", "block-parallel"), get(n, "encrypt", "public-key", "batched")
        if not (naive and batched and par and pub):
            continue
        parts.append(
            f"At {_size(n)} values, secret-key encryption runs at {batched['x_aes']:.3g}x AES-256-GCM's throughput "
            f"on one thread ({par['x_aes']:.3g}x block-parallel on {par['threads']} threads, public-key "
            f"{pub['x_aes']:.3g}x on one); the naive per-ciphertext loop takes "
            f"{batched['values_per_s'] / naive['values_per_s']:.2f}x the time of one batched call."
        )
    return " ".join(parts)


def run(args: argparse.Namespace) -> Path:
    """Runs the experiment from parsed options and writes its outputs.

    Returns
    -------
    Path
        The run directory.

    Raises
    ------
    ValueError
        For bad options (see :func:`config_from_args`).
    """
    cfg = config_from_args(args)
    out = RunDirectory.create(args.out, NAME)
    progress = not getattr(args, "quiet", False)
    load_before = os.getloadavg()
    share = CpuShare()
    started = time.perf_counter()
    rows = measure(cfg, progress=progress)
    wall = time.perf_counter() - started
    other = share.other_cores()
    load_after = os.getloadavg()
    load = {
        "loadavg_before": list(load_before),
        "loadavg_after": list(load_after),
        "other_cpu_cores_during_run": other,
        "wall_s": wall,
    }

    out.write_csv(f"{NAME}.csv", rows, COLUMNS)
    record = out.write_record(
        f"{NAME}.json", asdict(cfg), load=load, parameters=repr(xcloud.CkksContext.preset(cfg.ckks)), rows=rows
    )
    machine = machine_info()
    where = machine_label(machine)
    fig = _figure(rows, f"xcloud CKKS vs AES-256-GCM, float32 payload uniform in [-1, 1] - {where}")
    out.write_figure(f"{NAME}.png", fig)
    body = (
        f"{_summary(rows)}\n\n"
        f"Machine: {where} (flags {' '.join(machine.get('cpu_flags', []))}), Python {machine['python']}, "
        f"xcloud {machine['xcloud']}, {machine['date_utc']}. Load average {load_before[0]:.2f} before and "
        f"{load_after[0]:.2f} after; other processes used {other or 0.0:.2f} cores on average during the "
        f"{wall:.0f} s run. Parameters: {xcloud.CkksContext.preset(cfg.ckks)!r}. Best of {cfg.repeat} call(s) per row"
        f"{' after a warm-up call' if cfg.warmup else ''}; precision bits = -log2(max |error|); bytes/value = "
        f"ciphertext bytes per value (AES: nonce, ciphertext and tag); other processes, cores = CPU other "
        f"processes used while the row was timed (on {machine.get('cores')} cores; above about 0.25 the row's "
        f"time, and thread scaling most of all, is distorted).\n\n"
        f"{table(rows)}\n![values per second]({NAME}.png)\n\nRaw rows: `{NAME}.csv`; config and machine: "
        f"`{record.name}`.\n"
    )
    report = out.append_markdown("The paper's AES comparison: `xcloud experiment aes`", body)
    if progress:
        print(table(rows), end="")
        print(f"run directory: {out.path} (report: {report})", file=sys.stderr)
    return out.path
