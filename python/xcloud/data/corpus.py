"""A corpus of notes, each from one hospital, with the canary secrets planted in it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Canary", "Corpus", "Note"]


@dataclass(frozen=True)
class Note:
    """One clinical note: a single training example, so one patient record.

    Attributes
    ----------
    text : str
        The note, plain text.
    hospital : int
        Index of the hospital (cloud) that wrote it, from 0.
    note_id : str
        Identifier, unique within its corpus (``"h00-n00042"`` for generated notes).
    is_canary : bool
        True if a canary secret was planted in this note.
    """

    text: str
    hospital: int
    note_id: str
    is_canary: bool = False


@dataclass(frozen=True)
class Canary:
    """A fake secret planted ``repetitions`` times in one hospital's notes.

    The planted phrase is ``f"{prefix} {secret}"``: lowercase words, then
    ``secret``, decimal digits separated by single spaces (``"7 3 9 1 4 0"``),
    so a word tokenizer that makes one token per digit sees one token per
    secret digit. Exposure (Carlini et al. 2019, "The Secret Sharer") ranks the
    model's likelihood of ``secret`` after ``prefix`` among all
    ``10 ** len(digits)`` digit sequences of the same length.

    Attributes
    ----------
    hospital : int
        The hospital whose notes contain it.
    prefix : str
        The words before the secret, unique in the corpus (``"patient record number"``).
    secret : str
        Space-separated digits.
    repetitions : int
        Number of notes (of ``hospital``) that contain the phrase, once each.
    """

    hospital: int
    prefix: str
    secret: str
    repetitions: int

    @property
    def digits(self) -> tuple[int, ...]:
        """The secret as a tuple of ints (``(7, 3, 9, 1, 4, 0)``)."""
        return tuple(int(d) for d in self.secret.split())

    @property
    def phrase(self) -> str:
        """The planted text, ``f"{prefix} {secret}"``."""
        return f"{self.prefix} {self.secret}"


@dataclass
class Corpus:
    """Notes from ``hospitals`` hospitals, hospital-major, and their canaries.

    Attributes
    ----------
    notes : list[Note]
        All notes; those of hospital 0 first, then hospital 1, and so on.
    canaries : list[Canary]
        The planted secrets (empty if none were planted).
    hospitals : int
        Number of hospitals; every note has ``0 <= hospital < hospitals``.
    seed : int
        The seed the corpus was generated from (0 for corpora not generated).
    """

    notes: list[Note]
    canaries: list[Canary] = field(default_factory=list)
    hospitals: int = 1
    seed: int = 0

    def __len__(self) -> int:
        return len(self.notes)

    def texts(self) -> list[str]:
        """The notes' texts, in corpus order."""
        return [note.text for note in self.notes]

    def hospital_labels(self) -> np.ndarray:
        """The hospital of each note, an int64 array of shape (len(notes),), for the partitioners."""
        return np.fromiter((note.hospital for note in self.notes), dtype=np.int64, count=len(self.notes))

    def by_hospital(self) -> dict[int, list[Note]]:
        """The notes grouped by hospital: a dict with every key 0..hospitals-1, in order."""
        groups: dict[int, list[Note]] = {h: [] for h in range(self.hospitals)}
        for note in self.notes:
            groups.setdefault(note.hospital, []).append(note)
        return groups
