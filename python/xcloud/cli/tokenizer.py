"""``xcloud tokenizer``: a word vocabulary made from public text, to be agreed before training.

Without ``--tokenizer`` (or ``--hf-model``), ``xcloud run`` builds its word
vocabulary from the whole configured corpus, that is from every cloud's notes,
before training and outside encryption and DP: a word that only one cloud
writes ends up in the vocabulary that every party holds. This command builds
the vocabulary from texts that are public instead (reference material,
published sample notes, anything no cloud needs to keep), and writes it as a
JSON file that every party passes to ``xcloud run --tokenizer FILE`` (or sets
as ``tokenizer`` in the config or the Flower run config).

``--coverage DIR`` reports the share of ``<unk>`` tokens the vocabulary leaves
in the texts under ``DIR``: run it where those texts live (each cloud on its
own notes), since it reads them.

The texts follow the rules of ``xcloud run --data`` (``*.txt`` and ``*.jsonl``
files, found recursively).
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser", "run_from_args"]


def add_parser(sub: Any) -> None:
    """Registers ``xcloud tokenizer``."""
    p = sub.add_parser(
        "tokenizer",
        help="build the shared word vocabulary from public text (for xcloud run --tokenizer)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("texts", nargs="+", metavar="DIR", help="directories of public .txt/.jsonl files")
    p.add_argument("--out", required=True, metavar="FILE", help="where to write the vocabulary (JSON)")
    p.add_argument(
        "--max-vocab", type=int, default=2000, help="largest vocabulary, special and digit tokens included (2000)"
    )
    p.add_argument("--min-freq", type=int, default=1, help="leave out tokens seen fewer times (default: 1)")
    p.add_argument(
        "--txt-mode",
        choices=("paragraph", "file"),
        default="paragraph",
        help="one document per blank-line-separated paragraph of a .txt file, or per file (default: paragraph)",
    )
    p.add_argument(
        "--coverage",
        action="append",
        default=[],
        metavar="DIR",
        help="print the share of <unk> tokens the vocabulary leaves in DIR's texts (repeatable; reads them locally)",
    )


def run_from_args(args: argparse.Namespace) -> int:
    """Builds, writes and describes the vocabulary; returns the exit status."""
    from xcloud.data.text_files import load_text_dir
    from xcloud.data.tokenizer import WordTokenizer, tokenize

    texts: list[str] = []
    for d in args.texts:
        texts.extend(load_text_dir(d, txt_mode=args.txt_mode).texts())
    tok = WordTokenizer.build(texts, max_vocab=args.max_vocab, min_freq=args.min_freq)
    tok.save(args.out)
    print(
        f"wrote {args.out}: {tok.vocab_size} tokens from {len(texts)} documents "
        f"(vocabulary sha256 {tok.vocab_hash()[:16]})"
    )
    for d in args.coverage:
        tokens = [t for text in load_text_dir(d, txt_mode=args.txt_mode).texts() for t in tokenize(text)]
        unknown = sum(tok.token_to_id(t) == tok.unk_id for t in tokens)
        share = unknown / len(tokens) if tokens else 0.0
        print(f"coverage of {d}: {len(tokens)} tokens, {unknown} unknown ({100 * share:.1f}% <unk>)")
    return 0
