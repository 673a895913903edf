"""Tests of loading users' own text (xcloud.data.text_files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xcloud.data import DataIntegrityError, load_text_dir


def test_txt_files_give_one_document_per_paragraph(tmp_path: Path) -> None:
    # Prepare
    (tmp_path / "notes.txt").write_text("First note,\nsecond line.\n\nSecond note.\n  \t\n\n\nThird note.\n\n")

    # Execute
    corpus = load_text_dir(tmp_path)

    # Assert
    assert corpus.texts() == ["First note,\nsecond line.", "Second note.", "Third note."]
    assert [n.note_id for n in corpus.notes] == ["notes.txt#1", "notes.txt#2", "notes.txt#3"]
    assert corpus.hospitals == 1 and corpus.canaries == []


def test_txt_mode_file_gives_one_document_per_file(tmp_path: Path) -> None:
    # Prepare
    (tmp_path / "a.txt").write_text("one\n\ntwo\n")

    # Execute
    corpus = load_text_dir(tmp_path, txt_mode="file")

    # Assert
    assert corpus.texts() == ["one\n\ntwo"]


def test_jsonl_files_give_one_document_per_line_with_optional_hospital(tmp_path: Path) -> None:
    # Prepare
    lines = [{"text": "note a", "hospital": 2, "extra": 1}, {"text": "note b"}, {"text": "   "}]
    (tmp_path / "data.jsonl").write_text("\n".join(json.dumps(x) for x in lines[:2]) + "\n\n" + json.dumps(lines[2]))

    # Execute
    corpus = load_text_dir(tmp_path)

    # Assert
    assert corpus.texts() == ["note a", "note b"]
    assert [n.hospital for n in corpus.notes] == [2, 0]
    assert [n.note_id for n in corpus.notes] == ["data.jsonl:1", "data.jsonl:2"]
    assert corpus.hospitals == 3


def test_files_are_read_recursively_in_sorted_order_skipping_hidden_and_other_files(tmp_path: Path) -> None:
    # Prepare
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.txt").write_text("from b")
    (tmp_path / "a.jsonl").write_text(json.dumps({"text": "from a"}))
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "h.txt").write_text("hidden")
    (tmp_path / ".secret.txt").write_text("hidden too")
    (tmp_path / "readme.md").write_text("not data")

    # Execute
    corpus = load_text_dir(tmp_path)

    # Assert
    assert corpus.texts() == ["from a", "from b"]
    assert corpus.notes[1].note_id == "b/x.txt#1"


def test_crlf_and_byte_order_mark_are_handled(tmp_path: Path) -> None:
    # Prepare
    (tmp_path / "w.txt").write_bytes(b"\xef\xbb\xbfone\r\n\r\ntwo\r\n")

    # Execute
    corpus = load_text_dir(tmp_path)

    # Assert
    assert corpus.texts() == ["one", "two"]


# --- bad input ---


def test_a_missing_directory_is_file_not_found(tmp_path: Path) -> None:
    # Execute / Assert
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_text_dir(tmp_path / "missing")


def test_an_empty_directory_is_file_not_found(tmp_path: Path) -> None:
    # Prepare
    (tmp_path / "other.csv").write_text("a,b\n")

    # Execute / Assert
    with pytest.raises(FileNotFoundError, match=r"no \*\.txt or \*\.jsonl files"):
        load_text_dir(tmp_path)


def test_files_without_any_document_are_a_data_integrity_error(tmp_path: Path) -> None:
    # Prepare
    (tmp_path / "blank.txt").write_text("\n\n   \n")

    # Execute / Assert
    with pytest.raises(DataIntegrityError, match="no non-empty document"):
        load_text_dir(tmp_path)


def test_a_file_path_is_not_a_directory(tmp_path: Path) -> None:
    # Prepare
    (tmp_path / "f.txt").write_text("x")

    # Execute / Assert
    with pytest.raises(NotADirectoryError):
        load_text_dir(tmp_path / "f.txt")


@pytest.mark.parametrize(
    ("third_line", "message"),
    [
        ('{"text": "unterminated', "malformed JSON"),
        ('{"title": "no text field"}', 'string "text" field'),
        ('["a", "list"]', 'string "text" field'),
        ('{"text": 42}', 'string "text" field'),
        ('{"text": "t", "hospital": -1}', '"hospital" must be'),
        ('{"text": "t", "hospital": true}', '"hospital" must be'),
        ('{"text": "t", "hospital": ' + "9" * 5000 + "}", "malformed JSON"),  # beyond the int digit limit
        ("[" * 200_000, "malformed JSON"),  # nested too deeply for the parser
    ],
)
def test_a_bad_jsonl_line_is_reported_with_file_and_line(tmp_path: Path, third_line: str, message: str) -> None:
    # Prepare
    good = json.dumps({"text": "fine"})
    (tmp_path / "data.jsonl").write_text(f"{good}\n{good}\n{third_line}\n{good}\n")

    # Execute / Assert
    with pytest.raises(DataIntegrityError, match=rf"data\.jsonl:3: .*{message}"):
        load_text_dir(tmp_path)


@pytest.mark.parametrize("name", ["latin1.txt", "latin1.jsonl"])
def test_non_utf8_bytes_are_reported_with_file_and_line(tmp_path: Path, name: str) -> None:
    # Prepare
    (tmp_path / name).write_bytes(b'{"text": "ok"}\n{"text": "caf\xe9"}\n')

    # Execute / Assert
    with pytest.raises(DataIntegrityError, match=rf"{name}:2: not valid UTF-8 \(byte 0xe9"):
        load_text_dir(tmp_path)


def test_an_unknown_txt_mode_is_a_value_error(tmp_path: Path) -> None:
    # Execute / Assert
    with pytest.raises(ValueError, match="txt_mode"):
        load_text_dir(tmp_path, txt_mode="sentence")  # type: ignore[arg-type]
