"""``xcloud deploy``: xcloud on Flower, across machines or as a local trial on loopback.

``xcloud deploy local`` starts a SuperLink and one SuperNode per cloud on
127.0.0.1 with TLS (a throwaway CA) and SuperNode authentication, runs the
xcloud Flower app (``flwr run``) for the given rounds, prints the per-round
table and stops every process it started. ``xcloud deploy app DIR`` writes
the Flower app directory for ``flwr run`` against your own SuperLink;
``xcloud deploy certs DIR`` writes throwaway TLS material; ``xcloud deploy
overhead`` times the same run in process and on a local Flower federation.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run_from_args"]


def add_parser(sub: Any) -> None:
    """Registers ``xcloud deploy`` and its subcommands."""
    from xcloud.cli.run import add_arguments

    p = sub.add_parser(
        "deploy",
        help="run xcloud on Flower: a local trial with real SuperLink/SuperNode processes, or the app for flwr run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dsub = p.add_subparsers(dest="deploy_command", metavar="SUBCOMMAND")
    local = dsub.add_parser(
        "local",
        help="start a SuperLink and one SuperNode per cloud on 127.0.0.1 (TLS), run the rounds, stop everything",
    )
    add_arguments(local)
    local.add_argument("--dir", metavar="DIR", help="working directory (default: a new temporary directory)")
    local.add_argument(
        "--round-timeout", type=float, default=300.0, help="seconds a round waits for updates (default: 300)"
    )
    local.add_argument(
        "--no-node-auth", action="store_true", help="let any SuperNode connect (default: registered keys only)"
    )
    local.add_argument("--timeout", type=float, default=1800.0, help="limit of the whole run in seconds")
    app = dsub.add_parser("app", help="write the Flower app directory (pyproject.toml) for flwr run")
    add_arguments(app)
    app.add_argument("app_dir", metavar="DIR")
    over = dsub.add_parser(
        "overhead",
        help="time the same run in process, over the loopback transport and on a local Flower federation (JSON)",
    )
    add_arguments(over)
    over.add_argument("--dir", metavar="DIR", help="working directory (default: a new temporary directory)")
    over.add_argument("--no-flower", action="store_true", help="skip the Flower run (in-process paths only)")
    certs = dsub.add_parser("certs", help="write a throwaway CA and SuperLink certificate (tests and trials only)")
    certs.add_argument("cert_dir", metavar="DIR")
    certs.add_argument("--host", action="append", help="name or address of the SuperLink (repeatable)")


def _table(result: dict[str, Any]) -> str:
    head = f"{'round':>5} {'train':>7} {'val':>7} {'up MB':>7} {'down MB':>8} {'round s':>8} {'ok':>3} {'stale':>6}"
    lines = [head + "  left out"]
    for r in result["rounds"]:
        val = f"{r['val_loss']:7.3f}" if r["val_loss"] is not None else f"{'-':>7}"
        dropped = ", ".join(f"{c} ({why})" for c, why in r["dropped"].items()) or "-"
        stale = max(r.get("staleness") or [0])
        lines.append(
            f"{r['round']:>5} {r['train_loss']:7.3f} {val} {r['bytes_up'] / 1e6:7.2f} {r['bytes_down'] / 1e6:8.2f} "
            f"{r['round_s']:8.2f} {len(r['accepted']):>3} {stale:>6}  {dropped}"
        )
    return "\n".join(lines)


def run_from_args(args: argparse.Namespace) -> int:
    from xcloud.cli.run import _overrides
    from xcloud.fl.config import load_config

    if args.deploy_command == "certs":
        from xcloud.deploy.certs import make_local_certificates

        paths = make_local_certificates(args.cert_dir, hosts=tuple(args.host or ("127.0.0.1", "localhost")))
        print(f"CA {paths.ca_cert}\nserver certificate {paths.server_cert}\nserver key {paths.server_key}")
        return 0
    if args.deploy_command not in ("local", "app", "overhead"):
        print("xcloud deploy: choose a subcommand: local, app, overhead or certs (see xcloud deploy --help)")
        return 2
    cfg = load_config(args.config, _overrides(args))
    if args.deploy_command == "overhead":
        from xcloud.deploy.overhead import measure_overhead

        print(json.dumps(measure_overhead(cfg, args.dir, flower=not args.no_flower), indent=2))
        return 0
    if args.deploy_command == "app":
        from xcloud.deploy.config import to_flower_config
        from xcloud.deploy.launcher import write_app

        out = write_app(args.app_dir, to_flower_config(cfg))
        print(f"wrote {out / 'pyproject.toml'}; run it with: flwr run {out} <superlink-connection>")
        return 0
    try:
        from xcloud.deploy.launcher import LocalFederation
    except ImportError as e:  # flwr missing
        raise ValueError(f"xcloud deploy needs the [deploy] extra (pip install 'xcloud[deploy]'): {e}") from None
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="xcloud-deploy-"))
    print(
        f"xcloud deploy local: SuperLink + {cfg.clouds} SuperNodes on 127.0.0.1 (TLS"
        f"{', node authentication' if not args.no_node_auth else ''}), {cfg.rounds} rounds of {cfg.method}; "
        f"logs in {root / 'logs'}",
        flush=True,
    )
    t0 = time.perf_counter()
    with LocalFederation(root, cfg.clouds, node_auth=not args.no_node_auth, limit_s=args.timeout + 120) as fed:
        print(f"federation up at {fed.address} after {time.perf_counter() - t0:.1f} s", flush=True)
        result = fed.run_app(cfg, timeout=args.timeout, round_timeout=args.round_timeout)
    print(_table(result))
    final = result["final"].get("clients", {})
    if final:
        loss = next(iter(final.values()))["val_loss"]
        print(
            f"final validation loss {loss:.4f} on {len(final)} clients (one model: "
            f"{len({c['model_sha256'] for c in final.values()}) == 1})"
        )
    (root / "result.json").write_text(json.dumps(result, indent=2))
    print(f"run wall time {result['wall_s']:.1f} s at the server; results in {root / 'result.json'}")
    return 0
