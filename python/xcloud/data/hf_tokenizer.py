"""A local Hugging Face tokenizer behind the small interface the federated run needs.

Used with ``xcloud run --hf-model DIR``: the tokenizer must come from the same
directory as the model so token ids match its vocabulary. Never downloads.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable

__all__ = ["HFTokenizer"]


class HFTokenizer:
    """Wraps ``transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)``.

    Raises
    ------
    ImportError
        If transformers is not installed (``pip install 'xcloud[hf]'``).
    FileNotFoundError
        If ``path`` is not a directory.
    ValueError
        If the directory holds no tokenizer, or it has neither an EOS nor a BOS token.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if not os.path.isdir(path):
            raise FileNotFoundError(f"no model directory at {os.fspath(path)!r}")
        try:
            import transformers
        except ImportError as e:
            raise ImportError("--hf-model needs the optional extra: pip install 'xcloud[hf]'") from e
        try:
            self._tok = transformers.AutoTokenizer.from_pretrained(os.fspath(path), local_files_only=True)
        except (OSError, ValueError) as e:
            raise ValueError(f"{os.fspath(path)}: no usable tokenizer in the model directory: {e}") from None
        eos = self._tok.eos_token_id if self._tok.eos_token_id is not None else self._tok.bos_token_id
        if eos is None:
            raise ValueError(f"{os.fspath(path)}: the tokenizer has neither an EOS nor a BOS token")
        self.eos_id = int(eos)
        self.bos_id = int(self._tok.bos_token_id if self._tok.bos_token_id is not None else eos)
        self.pad_id = int(self._tok.pad_token_id if self._tok.pad_token_id is not None else eos)

    @property
    def vocab_size(self) -> int:
        return len(self._tok)

    def encode_batch(self, texts: Iterable[str]) -> list[list[int]]:
        return [list(self._tok.encode(t, add_special_tokens=False)) for t in texts]

    def vocab_hash(self) -> str:
        """SHA-256 of the sorted vocabulary, to check shards against."""
        vocab = sorted(self._tok.get_vocab().items())
        return hashlib.sha256(repr(vocab).encode()).hexdigest()
