"""Users' own text: a directory of ``*.txt`` and ``*.jsonl`` files as a :class:`Corpus`.

Rules (``xcloud run --data DIR``):

- Files are found recursively, in sorted path order; names starting with a
  dot (and everything under such directories) are skipped. Other extensions
  are ignored. Encoding is UTF-8 (an initial byte-order mark is allowed).
- ``*.txt``: one document per paragraph, paragraphs separated by one or more
  blank lines (``txt_mode="paragraph"``, the default, for files holding many
  notes), or one document per file (``txt_mode="file"``). Surrounding
  whitespace is stripped; empty paragraphs are skipped.
- ``*.jsonl``: one JSON object per non-blank line with a string ``"text"``
  field; an optional non-negative int ``"hospital"`` field (default 0) says
  which site the document comes from, so the natural partition works on user
  data too; other fields are ignored. Lines whose text is blank are skipped.
- Note ids are ``"<relative path>#<paragraph>"`` for text files and
  ``"<relative path>:<line>"`` for JSONL (both counted from 1).
"""

from __future__ import annotations

import codecs
import os
import re
from pathlib import Path
from typing import Literal

from xcloud.data._json import parse_json
from xcloud.data.corpus import Corpus, Note
from xcloud.data.errors import DataIntegrityError

__all__ = ["load_text_dir"]

_EXTENSIONS = (".txt", ".jsonl")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\f\v]*\n\s*")


def _data_files(root: Path) -> list[Path]:
    found = []
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if p.suffix.lower() in _EXTENSIONS and p.is_file() and not any(part.startswith(".") for part in rel.parts):
            found.append(p)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _decode(path: Path) -> str:
    data = path.read_bytes().removeprefix(codecs.BOM_UTF8)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataIntegrityError(
            f"{path}:{line}: not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}: {exc.reason})"
        ) from exc
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _txt_notes(path: Path, rel: str, mode: str) -> list[Note]:
    text = _decode(path)
    pieces = [text] if mode == "file" else _PARAGRAPH_BREAK.split(text)
    docs = [p.strip() for p in pieces]
    return [Note(doc, 0, f"{rel}#{k}", False) for k, doc in enumerate((d for d in docs if d), start=1)]


def _jsonl_notes(path: Path, rel: str) -> list[Note]:
    notes = []
    for lineno, line in enumerate(_decode(path).split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        record = parse_json(line, where)
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise DataIntegrityError(f'{where}: expected a JSON object with a string "text" field')
        hospital = record.get("hospital", 0)
        if not isinstance(hospital, int) or isinstance(hospital, bool) or hospital < 0:
            raise DataIntegrityError(f'{where}: "hospital" must be a non-negative int, got {hospital!r}')
        text = record["text"].strip()
        if text:
            notes.append(Note(text, hospital, f"{rel}:{lineno}", False))
    return notes


def load_text_dir(path: str | os.PathLike[str], *, txt_mode: Literal["paragraph", "file"] = "paragraph") -> Corpus:
    """Read every ``*.txt`` and ``*.jsonl`` document under ``path`` (see the module docstring).

    Parameters
    ----------
    path : str or PathLike
        The data directory.
    txt_mode : {"paragraph", "file"}
        One document per blank-line-separated paragraph, or per ``.txt`` file.

    Returns
    -------
    Corpus
        The documents in file order, no canaries, ``hospitals`` = largest hospital + 1, seed 0.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist or holds no ``*.txt`` / ``*.jsonl`` file.
    NotADirectoryError
        If ``path`` is not a directory.
    DataIntegrityError
        If a file is not UTF-8 or a JSONL line is malformed (the message
        gives the file and line number), or the files hold no document.
    ValueError
        If ``txt_mode`` is unknown.
    """
    if txt_mode not in ("paragraph", "file"):
        raise ValueError(f"txt_mode must be 'paragraph' or 'file', got {txt_mode!r}")
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"data directory {root} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"data path {root} is not a directory")
    files = _data_files(root)
    if not files:
        raise FileNotFoundError(f"no *.txt or *.jsonl files in {root}")
    notes: list[Note] = []
    for f in files:
        rel = f.relative_to(root).as_posix()
        notes.extend(_jsonl_notes(f, rel) if f.suffix.lower() == ".jsonl" else _txt_notes(f, rel, txt_mode))
    if not notes:
        raise DataIntegrityError(f"{root}: the data files ({len(files)}) hold no non-empty document")
    return Corpus(notes=notes, canaries=[], hospitals=max(n.hospital for n in notes) + 1, seed=0)
