#!/usr/bin/env python3
"""OpenFHE CKKS encrypt/decrypt benchmark, run under CPython 3.10 (the `openfhe` wheel's only ABI).

Driven as a subprocess by bench/benchlib.py's OpenFHE implementation (see
bench/peers/README.md); usable alone::

    /tmp/venv310/bin/python bench/peers/openfhe_bench.py --size 1000000 --seed 20240917

Generates the same payload as benchlib.payload() (float32, uniform in [-1, 1],
numpy.random.default_rng(seed)), encrypts it in chunks of one ciphertext per
``batch`` slots, serialises the ciphertexts (BINARY) to count bytes, decrypts
them, and prints one JSON object: times (best of --repeat), values/s, bytes per
value, max abs error and precision bits, and the parameters OpenFHE chose.
Single thread: OMP_NUM_THREADS=1 must be set by the caller before start
(the parent does so); this script sets it too if it is unset.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def make_context(args: argparse.Namespace):
    import openfhe as o

    p = o.CCParamsCKKSRNS()
    p.SetSecurityLevel(o.SecurityLevel.HEStd_128_classic)
    p.SetMultiplicativeDepth(args.depth)
    p.SetScalingModSize(args.scaling_mod_size)
    p.SetFirstModSize(args.first_mod_size)
    p.SetScalingTechnique(getattr(o.ScalingTechnique, args.scaling_technique))
    if args.ring_dim:
        p.SetRingDim(args.ring_dim)
    if args.batch:
        p.SetBatchSize(args.batch)
    cc = o.GenCryptoContext(p)
    cc.Enable(o.PKESchemeFeature.PKE)
    cc.Enable(o.PKESchemeFeature.KEYSWITCH)
    cc.Enable(o.PKESchemeFeature.LEVELEDSHE)
    return o, cc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=20_240_917)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--depth", type=int, default=0)
    ap.add_argument("--scaling-mod-size", type=int, default=40)
    ap.add_argument("--first-mod-size", type=int, default=60)
    ap.add_argument("--scaling-technique", default="FIXEDMANUAL")
    ap.add_argument("--ring-dim", type=int, default=0, help="0: OpenFHE's choice for 128-bit security")
    ap.add_argument("--batch", type=int, default=0, help="slots per ciphertext; 0: ring_dim / 2")
    args = ap.parse_args(argv)

    x = np.random.default_rng(args.seed).uniform(-1.0, 1.0, args.size).astype(np.float32)
    x64 = x.astype(np.float64)

    o, cc = make_context(args)
    keys = cc.KeyGen()
    ring = cc.GetRingDimension()
    slots = args.batch or ring // 2
    chunks = [x64[i : i + slots].tolist() for i in range(0, args.size, slots)]

    def encrypt():
        out = []
        for c in chunks:
            pt = cc.MakeCKKSPackedPlaintext(c)
            out.append(cc.Encrypt(keys.publicKey, pt))
        return out

    def decrypt(cts):
        out = []
        for ct, c in zip(cts, chunks, strict=True):
            pt = cc.Decrypt(ct, keys.secretKey)
            pt.SetLength(len(c))
            out.append(pt.GetRealPackedValue())
        return out

    enc_times, dec_times = [], []
    cts = encrypt()  # warm-up
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        cts = encrypt()
        enc_times.append(time.perf_counter() - t0)
    ys = decrypt(cts)  # warm-up
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        ys = decrypt(cts)
        dec_times.append(time.perf_counter() - t0)

    y = np.concatenate([np.asarray(v, dtype=np.float64) for v in ys])
    err = float(np.max(np.abs(y - x64)))
    nbytes = sum(len(o.Serialize(ct, o.BINARY)) for ct in cts)

    try:
        log_q = math.log2(float(cc.GetModulus()))
    except Exception:
        log_q = None
    enc_best, dec_best = min(enc_times), min(dec_times)
    print(
        json.dumps(
            {
                "implementation": "OpenFHE",
                "openfhe_version": getattr(o, "__version__", None) or _dist_version("openfhe"),
                "python": sys.version.split()[0],
                "size": args.size,
                "seed": args.seed,
                "ring_dim": ring,
                "slots": slots,
                "ciphertexts": len(cts),
                "multiplicative_depth": args.depth,
                "scaling_mod_size": args.scaling_mod_size,
                "first_mod_size": args.first_mod_size,
                "scaling_technique": args.scaling_technique,
                "security_level": "HEStd_128_classic",
                "log2_q": log_q,
                "encrypt_s": enc_best,
                "decrypt_s": dec_best,
                "encrypt_times_s": enc_times,
                "decrypt_times_s": dec_times,
                "encrypt_values_per_s": args.size / enc_best,
                "decrypt_values_per_s": args.size / dec_best,
                "serialized_bytes": nbytes,
                "bytes_per_value": nbytes / args.size,
                "max_abs_error": err,
                "precision_bits": (-math.log2(err) if err > 0 else None),
            }
        )
    )
    return 0


def _dist_version(name: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return None


if __name__ == "__main__":
    sys.exit(main())
