"""A word-level tokenizer with one token per digit.

Tokenisation: the text is lower-cased and split into (a) the special tokens
written literally (``<pad>``, ``<unk>``, ``<bos>``, ``<eos>``), (b) runs of
letters, (c) single ASCII digits, and (d) any other single non-space
character (punctuation, symbols). So ``"BP 148/86, SpO2 95%"`` becomes
``bp 1 4 8 / 8 6 , spo 2 9 5 %``. Numbers are always spelled digit by digit,
which keeps the vocabulary small and closed under numbers, and makes a canary
secret of ``k`` digits exactly ``k`` tokens, each one of the ten digit tokens
(so exposure can rank all ``10 ** k`` candidate sequences).

Vocabulary: ids 0-3 are ``<pad>``, ``<unk>``, ``<bos>``, ``<eos>``; ids 4-13
are the digits ``0``-``9`` (``digit_ids[d] == 4 + d``) whatever the corpus;
then the tokens given in ``always_include``; then every other token with at
least ``min_freq`` occurrences, by decreasing frequency and then
lexicographically, up to ``max_vocab`` in all. The same texts give the same
ids on every machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence

from xcloud.data.errors import DataIntegrityError

__all__ = ["DIGITS", "SPECIAL_TOKENS", "WordTokenizer", "tokenize"]

SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "<unk>", "<bos>", "<eos>")
"""Ids 0 (padding), 1 (unknown), 2 (begin) and 3 (end of a note)."""

DIGITS: tuple[str, ...] = tuple("0123456789")
"""Always in the vocabulary, at ids 4..13."""

_FORMAT = "xcloud-word-tokenizer"
_VERSION = 1
_TOKEN = re.compile(r"<(?:pad|unk|bos|eos)>|[^\W\d_]+|[0-9]|\S")


def tokenize(text: str) -> list[str]:
    """Split ``text`` into lower-case tokens (see the module docstring)."""
    return _TOKEN.findall(text.lower())


class WordTokenizer:
    """A fixed word vocabulary; use :meth:`build` to make one from texts.

    Parameters
    ----------
    vocab : Sequence[str]
        Tokens in id order: the four special tokens first, every digit
        somewhere, no duplicates, each a single token under :func:`tokenize`.

    Raises
    ------
    ValueError
        If ``vocab`` breaks one of those rules.

    Notes
    -----
    Immutable, so safe to share between threads.
    """

    pad_id: int = 0
    unk_id: int = 1
    bos_id: int = 2
    eos_id: int = 3

    def __init__(self, vocab: Sequence[str]) -> None:
        vocab = tuple(vocab)
        if vocab[: len(SPECIAL_TOKENS)] != SPECIAL_TOKENS:
            raise ValueError(f"vocab must start with {list(SPECIAL_TOKENS)}, got {list(vocab[:4])}")
        index: dict[str, int] = {}
        for i, token in enumerate(vocab):
            if not isinstance(token, str) or tokenize(token) != [token]:
                raise ValueError(f"vocab entry {i} ({token!r}) is not a single lower-case token")
            if token in index:
                raise ValueError(f"vocab entry {i} ({token!r}) duplicates entry {index[token]}")
            index[token] = i
        missing = [d for d in DIGITS if d not in index]
        if missing:
            raise ValueError(f"vocab lacks the digits {missing}")
        self._vocab = vocab
        self._index = index

    @classmethod
    def build(
        cls,
        texts: Iterable[str],
        max_vocab: int = 8000,
        min_freq: int = 1,
        always_include: Iterable[str] = (),
    ) -> WordTokenizer:
        """Build the vocabulary of ``texts``.

        Parameters
        ----------
        texts : Iterable[str]
            The training texts.
        max_vocab : int
            Vocabulary size cap, special and digit tokens included (at least 14).
        min_freq : int
            Tokens seen fewer times are left out (encoded as ``<unk>``).
        always_include : Iterable[str]
            Texts whose every token is kept whatever its frequency, e.g. the
            canary prefixes, so exposure is measured on real words.

        Raises
        ------
        ValueError
            If ``max_vocab`` cannot hold the special, digit and ``always_include`` tokens, or ``min_freq < 1``.
        """
        if min_freq < 1:
            raise ValueError(f"min_freq must be at least 1, got {min_freq}")
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(tokenize(text))
        fixed = SPECIAL_TOKENS + DIGITS
        forced: list[str] = []
        for text in always_include:
            forced.extend(t for t in tokenize(text) if t not in fixed and t not in forced)
        forced.sort(key=lambda t: (-counts[t], t))
        if max_vocab < len(fixed) + len(forced):
            raise ValueError(
                f"max_vocab={max_vocab} cannot hold the {len(fixed)} special and digit tokens "
                f"and {len(forced)} always_include tokens"
            )
        taken = set(fixed) | set(forced)
        rest = sorted((t for t, c in counts.items() if c >= min_freq and t not in taken), key=lambda t: (-counts[t], t))
        vocab = list(fixed) + forced + rest
        return cls(vocab[:max_vocab])

    @property
    def vocab(self) -> tuple[str, ...]:
        """Tokens in id order."""
        return self._vocab

    @property
    def vocab_size(self) -> int:
        return len(self._vocab)

    @property
    def digit_ids(self) -> tuple[int, ...]:
        """Ids of the digits 0-9, in order."""
        return tuple(self._index[d] for d in DIGITS)

    def token_to_id(self, token: str) -> int:
        """The id of ``token`` (``unk_id`` if it is not in the vocabulary)."""
        return self._index.get(token, self.unk_id)

    def id_to_token(self, token_id: int) -> str:
        """The token of ``token_id``.

        Raises
        ------
        ValueError
            If ``token_id`` is not in ``[0, vocab_size)``.
        """
        if not 0 <= token_id < len(self._vocab):
            raise ValueError(f"token id {token_id} is outside [0, {len(self._vocab)})")
        return self._vocab[token_id]

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Token ids of ``text``; unknown tokens become ``unk_id``."""
        get, unk = self._index.get, self.unk_id
        ids = [get(t, unk) for t in tokenize(text)]
        if add_bos:
            ids.insert(0, self.bos_id)
        if add_eos:
            ids.append(self.eos_id)
        return ids

    def encode_batch(self, texts: Iterable[str]) -> list[list[int]]:
        """:meth:`encode` of each text, without ``<bos>``/``<eos>`` (:class:`NoteDataset` adds them)."""
        return [self.encode(t) for t in texts]

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        """The tokens of ``ids`` joined by single spaces.

        Spacing is not preserved: ``decode(encode(t))`` is ``" ".join(tokenize(t))``
        when every token of ``t`` is in the vocabulary. With
        ``skip_special=False``, ``encode(decode(ids, skip_special=False)) == ids``
        for every valid id list.

        Raises
        ------
        ValueError
            If an id is not in ``[0, vocab_size)``.
        """
        tokens = [self.id_to_token(int(i)) for i in ids]
        if skip_special:
            tokens = [t for t in tokens if t not in SPECIAL_TOKENS]
        return " ".join(tokens)

    def vocab_hash(self) -> str:
        """SHA-256 (hex) of the vocabulary, one token per line: equal hashes mean equal ids."""
        return hashlib.sha256("\n".join(self._vocab).encode("utf-8")).hexdigest()

    def to_json(self) -> str:
        """The tokenizer as a JSON document (format name, version, vocabulary)."""
        return json.dumps({"format": _FORMAT, "version": _VERSION, "vocab": list(self._vocab)}, ensure_ascii=False)

    @classmethod
    def from_json(cls, document: str) -> WordTokenizer:
        """The tokenizer saved by :meth:`to_json`.

        Raises
        ------
        DataIntegrityError
            If the document is not valid JSON, not a tokenizer of this format
            and version, or its vocabulary is invalid.
        """
        try:
            data = json.loads(document)
        except json.JSONDecodeError as exc:
            raise DataIntegrityError(f"tokenizer JSON is malformed: {exc}") from exc
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise DataIntegrityError(f"not an {_FORMAT} document")
        if data.get("version") != _VERSION:
            raise DataIntegrityError(
                f"tokenizer version {data.get('version')!r} is not supported (expected {_VERSION})"
            )
        vocab = data.get("vocab")
        if not isinstance(vocab, list):
            raise DataIntegrityError("tokenizer JSON has no 'vocab' list")
        try:
            return cls(vocab)
        except ValueError as exc:
            raise DataIntegrityError(f"tokenizer vocabulary is invalid: {exc}") from exc

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_json` to ``path`` (UTF-8), replacing the file atomically."""
        path = os.fspath(path)
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(self.to_json())
            f.write("\n")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> WordTokenizer:
        """The tokenizer that :meth:`save` wrote to ``path``.

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        DataIntegrityError
            If the file is not UTF-8 or not a valid tokenizer document (the
            message names the file).
        """
        try:
            with open(path, encoding="utf-8") as f:
                document = f.read()
        except UnicodeDecodeError as exc:
            raise DataIntegrityError(f"tokenizer file {os.fspath(path)}: not valid UTF-8 ({exc.reason})") from exc
        try:
            return cls.from_json(document)
        except DataIntegrityError as exc:
            raise DataIntegrityError(f"tokenizer file {os.fspath(path)}: {exc}") from exc

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WordTokenizer) and self._vocab == other._vocab

    def __hash__(self) -> int:
        return hash(self._vocab)

    def __repr__(self) -> str:
        return f"WordTokenizer(vocab_size={self.vocab_size})"
