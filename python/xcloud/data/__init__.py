"""The data layer: synthetic ICU notes, users' own text, tokenizer, partitions, shards, datasets.

The pipeline, from text to training examples::

    corpus = generate_corpus(hospitals=4, seed=0)        # or load_text_dir("my_notes/")
    parts = partition("natural", corpus.hospital_labels())  # one index array per client
    tok = WordTokenizer.build(corpus.texts())            # digits always in the vocabulary
    write_shards("run/data", corpus.notes, parts, tokenizer=tok)
    shard = load_shard("run/data/client_000", expected_vocab_hash=tok.vocab_hash())
    train, val = split_train_val(range(len(shard.notes)), 0.1, seed=0)
    ds = NoteDataset(tok.encode_batch(n.text for n in shard.notes), block_size=128)

:class:`NoteDataset` and :data:`IGNORE_INDEX` need torch and are imported on
first use, so the rest of the layer works with numpy alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from xcloud.data.corpus import Canary, Corpus, Note
from xcloud.data.errors import DataIntegrityError
from xcloud.data.partition import SCHEMES, dirichlet, iid, label_skew, natural, partition, quantity_skew
from xcloud.data.shards import Shard, ShardManifest, load_shard, write_shard, write_shards
from xcloud.data.split import split_train_val
from xcloud.data.synthetic import DEFAULT_CANARY_REPETITIONS, generate_corpus, hospital_style
from xcloud.data.text_files import load_text_dir
from xcloud.data.tokenizer import DIGITS, SPECIAL_TOKENS, WordTokenizer, tokenize

if TYPE_CHECKING:
    from xcloud.data.dataset import IGNORE_INDEX, NoteDataset

__all__ = [
    "Canary",
    "Corpus",
    "DEFAULT_CANARY_REPETITIONS",
    "DIGITS",
    "DataIntegrityError",
    "IGNORE_INDEX",
    "Note",
    "NoteDataset",
    "SCHEMES",
    "SPECIAL_TOKENS",
    "Shard",
    "ShardManifest",
    "WordTokenizer",
    "dirichlet",
    "generate_corpus",
    "hospital_style",
    "iid",
    "label_skew",
    "load_shard",
    "load_text_dir",
    "natural",
    "partition",
    "quantity_skew",
    "split_train_val",
    "tokenize",
    "write_shard",
    "write_shards",
]

_LAZY = {"IGNORE_INDEX", "NoteDataset"}


def __getattr__(name: str) -> Any:
    """Import the torch-dependent names on first use."""
    if name in _LAZY:
        from xcloud.data import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
