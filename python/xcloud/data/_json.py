"""JSON documents of the data layer (JSONL notes, shard manifests) read with one set of errors."""

from __future__ import annotations

import json
from typing import Any, Literal

from xcloud.data.errors import DataIntegrityError


def parse_json(document: str | bytes, where: str, *, at: Literal["column", "line"] = "column") -> Any:
    """``json.loads(document)``, bytes decoded as UTF-8 first.

    Parameters
    ----------
    document : str or bytes
        One JSONL line, or a whole file.
    where : str
        Names the file (and line) in the messages.
    at : {"column", "line"}
        Which position of a syntax error the message gives.

    Raises
    ------
    DataIntegrityError
        For bytes that are not UTF-8, a syntax error, and what ``json.loads``
        refuses beyond syntax: an integer of more digits than Python converts
        (ValueError) or nesting too deep (RecursionError).
    """
    try:
        text = document.decode("utf-8") if isinstance(document, bytes) else document
    except UnicodeDecodeError as exc:
        raise DataIntegrityError(f"{where}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        pos = f"column {exc.colno}" if at == "column" else f"line {exc.lineno}"
        raise DataIntegrityError(f"{where}: malformed JSON ({exc.msg} at {pos})") from exc
    except (ValueError, RecursionError) as exc:  # an integer beyond the digit limit, nesting too deep
        raise DataIntegrityError(f"{where}: malformed JSON ({type(exc).__name__}: {exc})") from None
