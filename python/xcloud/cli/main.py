"""Entry point of the ``xcloud`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from xcloud.cli import demo, deploy, experiment, run, tokenizer
from xcloud.fl.errors import RoundFailed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xcloud",
        description=(
            "Privacy-preserving federated training across clouds: clients encrypt their model updates "
            "with xcloud's native CKKS kernel, and the aggregation server adds ciphertexts it cannot read."
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p_run = sub.add_parser(
        "run",
        help="federated training across simulated clouds (the main job; runs the embedded default with no options)",
        description=(
            "Federated training of a small language model across simulated clouds with real cryptography: "
            "each cloud trains on its own synthetic ICU notes (or your --data), encrypts its update, the server "
            "aggregates ciphertexts it cannot read, and the clouds decrypt the aggregate. Prints a per-round "
            "table and writes a run directory (config.toml, metrics.json/.csv, loss.png, report.md, checkpoint.pt)."
        ),
    )
    run.add_arguments(p_run)
    p_demo = sub.add_parser(
        "demo",
        help="encrypt, aggregate and decrypt synthetic client updates; print sizes, times and errors",
        description=demo.__doc__,
    )
    demo.add_arguments(p_demo)
    experiment.add_parser(sub)
    deploy.add_parser(sub)
    tokenizer.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "run":
            return run.run_from_args(args)
        if args.command == "demo":
            demo.run_demo(args)
        if args.command == "experiment":
            return experiment.run_from_args(args)
        if args.command == "deploy":
            return deploy.run_from_args(args)
        if args.command == "tokenizer":
            return tokenizer.run_from_args(args)
    except (ValueError, OSError) as e:  # OSError: a missing --data or --tokenizer path, an unwritable --out
        print(f"xcloud: error: {e}", file=sys.stderr)
        return 2
    except RoundFailed as e:
        print(f"xcloud: round failed: {e} (the last checkpoint is kept; see run.log)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
