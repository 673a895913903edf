"""Tests of shards on disk (xcloud.data.shards): round trip and integrity checks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from xcloud.data import (
    Corpus,
    DataIntegrityError,
    Note,
    WordTokenizer,
    generate_corpus,
    load_shard,
    partition,
    write_shard,
    write_shards,
)
from xcloud.data.shards import MANIFEST_FILE, NOTES_FILE


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return generate_corpus(hospitals=3, notes_per_hospital=20, seed=2)


@pytest.fixture
def shard_dir(tmp_path: Path, corpus: Corpus) -> Path:
    directory = tmp_path / "shard"
    write_shard(directory, corpus.notes[:30], client=1)
    return directory


def rewrite_manifest(directory: Path, **changes: object) -> None:
    path = directory / MANIFEST_FILE
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_round_trip_returns_the_same_notes_and_manifest(tmp_path: Path, corpus: Corpus) -> None:
    # Prepare
    tok = WordTokenizer.build(corpus.texts())
    notes = corpus.notes[10:45]

    # Execute
    written = write_shard(tmp_path / "s", notes, client=2, tokenizer=tok)
    shard = load_shard(tmp_path / "s", expected_vocab_hash=tok.vocab_hash())

    # Assert
    assert shard.notes == notes
    assert shard.manifest == written
    assert written.num_notes == 35
    assert written.hospital_counts == {0: 10, 1: 20, 2: 5}
    assert written.client == 2
    assert written.vocab_hash == tok.vocab_hash()
    assert written.sha256 == hashlib.sha256((tmp_path / "s" / NOTES_FILE).read_bytes()).hexdigest()


def test_write_shards_splits_a_partition_into_client_directories(tmp_path: Path, corpus: Corpus) -> None:
    # Prepare
    parts = partition("dirichlet", corpus.hospital_labels(), 4, alpha=0.5, seed=0)

    # Execute
    dirs = write_shards(tmp_path, corpus.notes, parts)
    shards = [load_shard(d) for d in dirs]

    # Assert
    assert [d.name for d in dirs] == ["client_000", "client_001", "client_002", "client_003"]
    assert [s.manifest.client for s in shards] == [0, 1, 2, 3]
    for shard, part in zip(shards, parts, strict=True):
        assert shard.notes == [corpus.notes[i] for i in part]


def test_unicode_text_survives(tmp_path: Path) -> None:
    # Prepare
    notes = [Note("Temp 38.5 \u00b0C, na\u00efve \u2014 ok\nsecond line", 0, "u1", False)]

    # Execute
    write_shard(tmp_path, notes)

    # Assert
    assert load_shard(tmp_path).notes == notes


def test_a_one_byte_change_is_caught(shard_dir: Path) -> None:
    # Prepare
    path = shard_dir / NOTES_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))

    # Execute / Assert
    with pytest.raises(DataIntegrityError, match=r"SHA-256 .* does not match"):
        load_shard(shard_dir)


def test_a_truncated_notes_file_is_caught(shard_dir: Path) -> None:
    # Prepare
    path = shard_dir / NOTES_FILE
    path.write_bytes(path.read_bytes()[:-10])

    # Execute / Assert
    with pytest.raises(DataIntegrityError, match="SHA-256"):
        load_shard(shard_dir)


def test_a_deleted_notes_file_is_caught(shard_dir: Path) -> None:
    # Prepare
    (shard_dir / NOTES_FILE).unlink()

    # Execute / Assert
    with pytest.raises(DataIntegrityError, match=r"notes file .* is missing"):
        load_shard(shard_dir)


def test_a_deleted_manifest_is_caught(shard_dir: Path) -> None:
    # Prepare
    (shard_dir / MANIFEST_FILE).unlink()

    # Execute / Assert
    with pytest.raises(DataIntegrityError, match="manifest is missing"):
        load_shard(shard_dir)


def test_a_malformed_manifest_is_caught(shard_dir: Path) -> None:
    # Prepare
    path = shard_dir / MANIFEST_FILE
    path.write_text(path.read_text()[:-5])

    # Execute / Assert
    with pytest.raises(DataIntegrityError, match="malformed JSON"):
        load_shard(shard_dir)


@pytest.mark.parametrize("text", ['{"notes": ' + "9" * 5000 + "}", "[" * 200_000], ids=["huge-int", "deep-nesting"])
def test_a_manifest_the_json_parser_chokes_on_is_caught(shard_dir: Path, text: str) -> None:
    # Prepare
    (shard_dir / MANIFEST_FILE).write_text(text)

    # Execute / Assert
    with pytest.raises(DataIntegrityError, match="manifest.json: malformed JSON"):
        load_shard(shard_dir)


def test_a_non_ascii_digit_hospital_key_is_caught(shard_dir: Path) -> None:
    # Prepare: "\u00b2" (superscript two) passes str.isdigit() but not int().
    rewrite_manifest(shard_dir, hospital_counts={"\u00b2": 30})

    # Execute / Assert
    with pytest.raises(DataIntegrityError, match="bad 'hospital_counts' entry"):
        load_shard(shard_dir)


def test_a_manifest_that_is_not_utf8_is_caught(shard_dir: Path) -> None:
    # Prepare
    (shard_dir / MANIFEST_FILE).write_bytes(b'{"format": "\xff"}')

    # Execute / Assert
    with pytest.raises(DataIntegrityError, match="UTF-8"):
        load_shard(shard_dir)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"version": 2}, "version 2 is not supported"),
        ({"version": True}, "version"),
        ({"format": "something-else"}, "format"),
        ({"notes_file": "../notes.jsonl"}, "plain file name"),
        ({"num_notes": -1}, "num_notes"),
        ({"num_notes": "30"}, "num_notes"),
        ({"sha256": "abc"}, "sha256"),
        ({"hospital_counts": [1, 2]}, "hospital_counts"),
        ({"hospital_counts": {"x": 1}}, "hospital_counts"),
        ({"client": -3}, "client"),
        ({"vocab_hash": 5}, "vocab_hash"),
    ],
)
def test_wrong_manifest_fields_are_caught(shard_dir: Path, changes: dict[str, object], message: str) -> None:
    # Prepare
    rewrite_manifest(shard_dir, **changes)

    # Execute / Assert
    with pytest.raises(DataIntegrityError, match=message):
        load_shard(shard_dir)


def test_a_manifest_that_is_not_an_object_is_caught(shard_dir: Path) -> None:
    # Prepare
    (shard_dir / MANIFEST_FILE).write_text("[1, 2, 3]")

    # Execute / Assert
    with pytest.raises(DataIntegrityError, match="expected a JSON object"):
        load_shard(shard_dir)


def test_a_wrong_note_count_is_caught(shard_dir: Path) -> None:
    # Prepare
    rewrite_manifest(shard_dir, num_notes=29)

    # Execute / Assert
    with pytest.raises(DataIntegrityError, match="30 notes, but the manifest says 29"):
        load_shard(shard_dir)


def test_wrong_hospital_counts_are_caught(shard_dir: Path) -> None:
    # Prepare
    rewrite_manifest(shard_dir, hospital_counts={"0": 30})

    # Execute / Assert
    with pytest.raises(DataIntegrityError, match="hospital counts"):
        load_shard(shard_dir)


def test_a_bad_line_is_reported_with_its_number_even_when_the_hash_was_updated(shard_dir: Path) -> None:
    # Prepare: a consistent manifest over a broken file (e.g. a buggy writer).
    path = shard_dir / NOTES_FILE
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = b'{"text": "x", "hospital": "zero", "note_id": "a", "is_canary": false}\n'
    path.write_bytes(b"".join(lines))
    rewrite_manifest(shard_dir, sha256=hashlib.sha256(path.read_bytes()).hexdigest())

    # Execute / Assert
    with pytest.raises(DataIntegrityError, match=r"notes\.jsonl:2: 'hospital'"):
        load_shard(shard_dir)


def test_a_vocabulary_mismatch_is_caught(tmp_path: Path, corpus: Corpus) -> None:
    # Prepare
    tok = WordTokenizer.build(corpus.texts())
    other = WordTokenizer.build(corpus.texts()[:5])
    write_shard(tmp_path, corpus.notes[:5], tokenizer=tok)

    # Execute / Assert
    with pytest.raises(DataIntegrityError, match="vocabulary hash"):
        load_shard(tmp_path, expected_vocab_hash=other.vocab_hash())


def test_a_missing_directory_is_file_not_found(tmp_path: Path) -> None:
    # Execute / Assert
    with pytest.raises(FileNotFoundError):
        load_shard(tmp_path / "nowhere")
    with pytest.raises(NotADirectoryError):
        (tmp_path / "file").write_text("x")
        load_shard(tmp_path / "file")


def test_data_integrity_error_is_a_value_error() -> None:
    # Execute / Assert
    assert issubclass(DataIntegrityError, ValueError)


def test_write_shards_rejects_out_of_range_indices(tmp_path: Path, corpus: Corpus) -> None:
    # Execute / Assert
    with pytest.raises(ValueError, match="outside"):
        write_shards(tmp_path, corpus.notes, [[0, len(corpus.notes)]])
