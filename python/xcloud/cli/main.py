"""Entry point of the ``xcloud`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from xcloud.cli import demo


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
        help="run the main job (for now: the encrypted-aggregation demonstration, see 'xcloud demo')",
        description=(
            "The main job. Until the federated training loop lands, it runs the kernel demonstration: "
            "simulated clients encrypt synthetic model updates, a server aggregates the ciphertexts with "
            "weights, and a client decrypts the weighted average, with sizes, times and errors printed."
        ),
    )
    demo.add_arguments(p_run)
    p_demo = sub.add_parser(
        "demo",
        help="encrypt, aggregate and decrypt synthetic client updates; print sizes, times and errors",
        description=demo.__doc__,
    )
    demo.add_arguments(p_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command in ("run", "demo"):
            demo.run_demo(args)
    except ValueError as e:
        print(f"xcloud: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
