"""Reproductions of the paper's experiments, each a module run by ``xcloud experiment NAME``.

An experiment module exposes

- ``NAME`` (str): the subcommand name;
- ``HELP`` (str): one line for ``xcloud experiment --help``; the module
  docstring is the subcommand's ``--help`` description;
- ``add_arguments(parser)``: adds its own options (not ``--out``/``--short``,
  which the command adds to every experiment);
- ``run(args) -> pathlib.Path``: runs it, writes its outputs with
  :mod:`xcloud.experiments.report` into a new run directory under ``args.out``
  and returns that directory; raises ``ValueError`` for bad options.

``xcloud/cli/experiment.py`` lists the modules.
"""
