"""A client's data shard on disk: its notes as JSONL plus a manifest with their hash.

Layout of a shard directory::

    notes.jsonl      one JSON object per line: {"hospital", "is_canary", "note_id", "text"}
    manifest.json    {"format": "xcloud-shard", "version": 1, "notes_file": "notes.jsonl",
                      "num_notes", "sha256", "hospital_counts", "client", "vocab_hash"}

``sha256`` is the SHA-256 of the exact bytes of ``notes.jsonl``;
``hospital_counts`` maps a hospital (as a string key, JSON's rule) to its
number of notes; ``vocab_hash`` is :meth:`WordTokenizer.vocab_hash` of the
tokenizer the shard is meant for, or null. :func:`load_shard` recomputes and
checks all of it, so a changed, truncated or missing file is caught before
training. The hash detects corruption and accidental edits, not an attacker
who can rewrite the manifest too; that needs a MAC or signature over it.

Files are written to a temporary name and renamed, the manifest last, so a
crash never leaves a shard that looks complete.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np
from numpy.typing import ArrayLike

from xcloud.data._json import parse_json
from xcloud.data.corpus import Note
from xcloud.data.errors import DataIntegrityError
from xcloud.data.tokenizer import WordTokenizer

__all__ = [
    "MANIFEST_FILE",
    "NOTES_FILE",
    "SHARD_FORMAT",
    "SHARD_VERSION",
    "Shard",
    "ShardManifest",
    "load_shard",
    "write_shard",
    "write_shards",
]

SHARD_FORMAT = "xcloud-shard"
SHARD_VERSION = 1
NOTES_FILE = "notes.jsonl"
MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class ShardManifest:
    """What a shard's manifest records.

    Attributes
    ----------
    num_notes : int
        Lines (notes) in the notes file.
    sha256 : str
        Lower-case hex SHA-256 of the notes file's bytes.
    hospital_counts : Mapping[int, int]
        Notes per hospital.
    client : int or None
        The client the shard belongs to, if known.
    vocab_hash : str or None
        Hash of the intended tokenizer's vocabulary, if any.
    version : int
        Shard format version.
    notes_file : str
        Name of the notes file inside the shard directory.
    """

    num_notes: int
    sha256: str
    hospital_counts: Mapping[int, int] = field(default_factory=dict)
    client: int | None = None
    vocab_hash: str | None = None
    version: int = SHARD_VERSION
    notes_file: str = NOTES_FILE

    def to_dict(self) -> dict[str, Any]:
        """The manifest as a JSON-ready dict."""
        return {
            "format": SHARD_FORMAT,
            "version": self.version,
            "notes_file": self.notes_file,
            "num_notes": self.num_notes,
            "sha256": self.sha256,
            "hospital_counts": {str(h): c for h, c in sorted(self.hospital_counts.items())},
            "client": self.client,
            "vocab_hash": self.vocab_hash,
        }

    @classmethod
    def from_dict(cls, data: object, source: str = MANIFEST_FILE) -> ShardManifest:
        """Validate a parsed manifest.

        Raises
        ------
        DataIntegrityError
            If it is not a version-1 xcloud shard manifest with well-typed fields;
            the message names ``source`` and the offending field.
        """
        if not isinstance(data, dict):
            raise DataIntegrityError(f"{source}: expected a JSON object, got {type(data).__name__}")
        if data.get("format") != SHARD_FORMAT:
            raise DataIntegrityError(f"{source}: 'format' is {data.get('format')!r}, expected {SHARD_FORMAT!r}")
        version = data.get("version")
        if version != SHARD_VERSION or isinstance(version, bool):
            raise DataIntegrityError(
                f"{source}: shard format version {version!r} is not supported "
                f"(this xcloud reads version {SHARD_VERSION})"
            )
        notes_file = data.get("notes_file")
        if (
            not isinstance(notes_file, str)
            or not notes_file
            or Path(notes_file).name != notes_file
            or notes_file in (".", "..")
        ):
            raise DataIntegrityError(f"{source}: 'notes_file' must be a plain file name, got {notes_file!r}")
        num_notes = data.get("num_notes")
        if not _is_int(num_notes) or num_notes < 0:
            raise DataIntegrityError(f"{source}: 'num_notes' must be a non-negative int, got {num_notes!r}")
        digest = data.get("sha256")
        if not isinstance(digest, str) or len(digest) != 64 or any(ch not in "0123456789abcdef" for ch in digest):
            raise DataIntegrityError(f"{source}: 'sha256' must be 64 lower-case hex digits, got {digest!r}")
        raw_counts = data.get("hospital_counts")
        if not isinstance(raw_counts, dict):
            raise DataIntegrityError(f"{source}: 'hospital_counts' must be an object, got {raw_counts!r}")
        counts: dict[int, int] = {}
        for key, value in raw_counts.items():
            if not (isinstance(key, str) and key.isascii() and key.isdigit() and _is_int(value) and value >= 0):
                raise DataIntegrityError(f"{source}: bad 'hospital_counts' entry {key!r}: {value!r}")
            counts[int(key)] = value
        client = data.get("client")
        if client is not None and (not _is_int(client) or client < 0):
            raise DataIntegrityError(f"{source}: 'client' must be a non-negative int or null, got {client!r}")
        vocab_hash = data.get("vocab_hash")
        if vocab_hash is not None and not isinstance(vocab_hash, str):
            raise DataIntegrityError(f"{source}: 'vocab_hash' must be a string or null, got {vocab_hash!r}")
        return cls(num_notes, digest, counts, client, vocab_hash, version, notes_file)


@dataclass(frozen=True)
class Shard:
    """A loaded, verified shard: its notes, manifest and directory."""

    notes: list[Note]
    manifest: ShardManifest
    path: Path


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _note_line(note: Note) -> str:
    record = {"hospital": note.hospital, "is_canary": note.is_canary, "note_id": note.note_id, "text": note.text}
    return json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_shard(
    directory: str | os.PathLike[str],
    notes: Sequence[Note],
    *,
    client: int | None = None,
    tokenizer: WordTokenizer | None = None,
) -> ShardManifest:
    """Write ``notes`` as a shard in ``directory`` (created if needed; an existing shard is replaced).

    Parameters
    ----------
    directory : str or PathLike
        The shard directory.
    notes : Sequence[Note]
        The client's notes, in the order to store them.
    client : int or None
        Client index to record in the manifest.
    tokenizer : WordTokenizer or None
        If given, its vocabulary hash is recorded, so :func:`load_shard` can
        check that the shard is used with the same vocabulary.

    Returns
    -------
    ShardManifest
        The manifest written.
    """
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    payload = "".join(_note_line(n) for n in notes).encode("utf-8")
    counts: dict[int, int] = {}
    for note in notes:
        counts[note.hospital] = counts.get(note.hospital, 0) + 1
    manifest = ShardManifest(
        num_notes=len(notes),
        sha256=hashlib.sha256(payload).hexdigest(),
        hospital_counts=dict(sorted(counts.items())),
        client=client,
        vocab_hash=tokenizer.vocab_hash() if tokenizer is not None else None,
    )
    _atomic_write(path / NOTES_FILE, payload)
    _atomic_write(path / MANIFEST_FILE, (json.dumps(manifest.to_dict(), indent=2) + "\n").encode("utf-8"))
    return manifest


def write_shards(
    root: str | os.PathLike[str],
    notes: Sequence[Note],
    parts: Sequence[ArrayLike],
    *,
    tokenizer: WordTokenizer | None = None,
) -> list[Path]:
    """Write one shard per client: ``root/client_000``, ``root/client_001``, ...

    ``parts[i]`` holds the indices into ``notes`` of client ``i`` (a
    partitioner's output).

    Returns
    -------
    list[Path]
        The shard directories, in client order.

    Raises
    ------
    ValueError
        If an index is out of range.
    """
    dirs = []
    for i, part in enumerate(parts):
        idx = np.asarray(part, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(notes)):
            raise ValueError(f"part {i} has indices outside [0, {len(notes)})")
        d = Path(root) / f"client_{i:03d}"
        write_shard(d, [notes[int(j)] for j in idx], client=i, tokenizer=tokenizer)
        dirs.append(d)
    return dirs


def _parse_note(line: bytes, where: str) -> Note:
    record = parse_json(line, where)
    if not isinstance(record, dict):
        raise DataIntegrityError(f"{where}: expected a JSON object")
    text, hospital, note_id, canary = (record.get(k) for k in ("text", "hospital", "note_id", "is_canary"))
    if not isinstance(text, str):
        raise DataIntegrityError(f"{where}: 'text' must be a string")
    if not _is_int(hospital) or hospital < 0:
        raise DataIntegrityError(f"{where}: 'hospital' must be a non-negative int, got {hospital!r}")
    if not isinstance(note_id, str):
        raise DataIntegrityError(f"{where}: 'note_id' must be a string")
    if not isinstance(canary, bool):
        raise DataIntegrityError(f"{where}: 'is_canary' must be true or false")
    return Note(text, hospital, note_id, canary)


def load_shard(directory: str | os.PathLike[str], *, expected_vocab_hash: str | None = None) -> Shard:
    """Load a shard and verify it against its manifest.

    Parameters
    ----------
    directory : str or PathLike
        The shard directory.
    expected_vocab_hash : str or None
        If given, the manifest's ``vocab_hash`` must equal it.

    Returns
    -------
    Shard
        The notes in stored order, the manifest and the directory.

    Raises
    ------
    FileNotFoundError
        If ``directory`` does not exist.
    NotADirectoryError
        If ``directory`` is not a directory.
    DataIntegrityError
        If the manifest or notes file is missing, the manifest is not valid
        JSON or has the wrong format or version, the notes file's SHA-256,
        line count or hospital counts differ from the manifest's, a line is
        not a valid note (the message gives its line number), or the
        vocabulary hash differs from ``expected_vocab_hash``.
    """
    path = Path(directory)
    if not path.exists():
        raise FileNotFoundError(f"shard directory {path} does not exist")
    if not path.is_dir():
        raise NotADirectoryError(f"shard path {path} is not a directory")
    manifest_path = path / MANIFEST_FILE
    if not manifest_path.is_file():
        raise DataIntegrityError(f"{manifest_path}: manifest is missing")
    raw = parse_json(manifest_path.read_bytes(), str(manifest_path), at="line")
    manifest = ShardManifest.from_dict(raw, str(manifest_path))

    notes_path = path / manifest.notes_file
    if not notes_path.is_file():
        raise DataIntegrityError(f"{notes_path}: notes file named by the manifest is missing")
    payload = notes_path.read_bytes()
    digest = hashlib.sha256(payload).hexdigest()
    if digest != manifest.sha256:
        raise DataIntegrityError(
            f"{notes_path}: SHA-256 {digest} does not match the manifest's {manifest.sha256}; "
            "the file was changed or corrupted"
        )
    lines = payload.splitlines()
    if len(lines) != manifest.num_notes:
        raise DataIntegrityError(f"{notes_path}: {len(lines)} notes, but the manifest says {manifest.num_notes}")
    notes = [_parse_note(line, f"{notes_path}:{i + 1}") for i, line in enumerate(lines)]
    counts: dict[int, int] = {}
    for note in notes:
        counts[note.hospital] = counts.get(note.hospital, 0) + 1
    if counts != dict(manifest.hospital_counts):
        raise DataIntegrityError(
            f"{notes_path}: hospital counts {dict(sorted(counts.items()))} differ from the manifest's "
            f"{dict(sorted(manifest.hospital_counts.items()))}"
        )
    if expected_vocab_hash is not None and manifest.vocab_hash != expected_vocab_hash:
        raise DataIntegrityError(
            f"{manifest_path}: vocabulary hash {manifest.vocab_hash!r} "
            f"differs from the expected {expected_vocab_hash!r}"
        )
    return Shard(notes=notes, manifest=manifest, path=path)
