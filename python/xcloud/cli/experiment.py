"""``xcloud experiment NAME``: the paper's experiments, each writing a run directory with CSV, PNG, JSON and Markdown.

Adding an experiment: write ``xcloud/experiments/<name>.py`` with ``NAME``,
``HELP``, a module docstring (its ``--help`` text), ``add_arguments(parser)``
and ``run(args) -> Path`` (see :mod:`xcloud.experiments`), import it here and
append it to :data:`EXPERIMENTS`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import ModuleType

from xcloud.experiments import aes, bandwidth, leakage, sync

__all__ = ["DEFAULT_OUT", "EXPERIMENTS", "add_parser", "run_from_args"]

EXPERIMENTS: list[ModuleType] = [aes, bandwidth, sync, leakage]
"""The experiment modules, in the order ``--help`` lists them."""

DEFAULT_OUT = "runs"


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out",
        metavar="DIR",
        default=DEFAULT_OUT,
        help=f"directory under which a new run directory <date>-<time>-<name> is made (default: {DEFAULT_OUT}/)",
    )
    p.add_argument("--short", action="store_true", help="small sizes and one repeat: a quick check, for CI")
    p.add_argument("--quiet", action="store_true", help="no progress bars or tables on the terminal")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Registers ``experiment`` and one subcommand per module of :data:`EXPERIMENTS` on ``sub``."""
    names = ", ".join(m.NAME for m in EXPERIMENTS)
    p = sub.add_parser(
        "experiment",
        help=f"reproduce one of the paper's experiments ({names}); writes CSV, PNG, JSON and report.md",
        description=(
            "Reproduces one of the paper's experiments on this machine. Each writes a new run directory under "
            "--out with its measurements (CSV), a figure (PNG), the config and machine (JSON) and a report.md "
            "section. `xcloud experiment NAME --help` explains NAME."
        ),
    )
    exp_sub = p.add_subparsers(dest="experiment", metavar="NAME")
    for module in EXPERIMENTS:
        q = exp_sub.add_parser(
            module.NAME,
            help=module.HELP,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_common(q)
        module.add_arguments(q)
        q.set_defaults(experiment_module=module)
    p.set_defaults(experiment_parser=p)
    return p


def run_from_args(args: argparse.Namespace) -> int:
    """Runs the chosen experiment; prints the run directory. 2 if no experiment was named.

    Raises
    ------
    ValueError
        From the experiment, for bad option values (the caller exits with 2).
    """
    module: ModuleType | None = getattr(args, "experiment_module", None)
    if module is None:
        args.experiment_parser.print_help(sys.stderr)
        return 2
    path: Path = module.run(args)
    print(path)
    return 0
