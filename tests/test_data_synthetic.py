"""Tests of the synthetic ICU note generator (xcloud.data.synthetic).

Determinism, the shape and plausibility of the notes, hospitals that differ
measurably (non-IID clouds), and canaries planted exactly as asked.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter

import pytest

from xcloud.data import Corpus, generate_corpus, hospital_style, tokenize


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return generate_corpus(hospitals=4, notes_per_hospital=300, seed=0, canaries_per_hospital=2)


def token_distribution(texts: list[str]) -> Counter[str]:
    return Counter(t for text in texts for t in tokenize(text))


def total_variation(a: Counter[str], b: Counter[str]) -> float:
    na, nb = sum(a.values()), sum(b.values())
    return 0.5 * sum(abs(a[k] / na - b[k] / nb) for k in set(a) | set(b))


# --- determinism ---


def test_same_seed_gives_identical_corpus() -> None:
    # Prepare / Execute
    first = generate_corpus(hospitals=3, notes_per_hospital=50, seed=7)
    second = generate_corpus(hospitals=3, notes_per_hospital=50, seed=7)

    # Assert
    assert first.notes == second.notes
    assert first.canaries == second.canaries
    assert (first.hospitals, first.seed) == (3, 7)


# Known answer: SHA-256 of the default corpus (generate_corpus() with no arguments) serialised as
# "note_id<TAB>hospital<TAB>is_canary<TAB>text" lines, then "hospital<TAB>prefix<TAB>secret<TAB>repetitions"
# lines. It changes whenever the generator's output does: update it only for an intended change,
# and say so in the change, since it also changes every experiment's data.
DEFAULT_CORPUS_SHA256 = "09468316aa4a7713b2be001b9ca4565cd89ce9fc676a57b5c3beefbfcbabde83"


def test_default_corpus_matches_its_known_answer(corpus: Corpus) -> None:
    # Execute
    lines = [f"{n.note_id}\t{n.hospital}\t{int(n.is_canary)}\t{n.text}" for n in corpus.notes]
    lines += [f"{c.hospital}\t{c.prefix}\t{c.secret}\t{c.repetitions}" for c in corpus.canaries]
    digest = hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()

    # Assert
    assert digest == DEFAULT_CORPUS_SHA256


def test_different_seed_gives_different_corpus() -> None:
    # Prepare / Execute
    a = generate_corpus(hospitals=2, notes_per_hospital=50, seed=1)
    b = generate_corpus(hospitals=2, notes_per_hospital=50, seed=2)

    # Assert
    differing = sum(x.text != y.text for x, y in zip(a.notes, b.notes, strict=True))
    assert differing > 90
    assert [c.secret for c in a.canaries] != [c.secret for c in b.canaries]


def test_a_hospitals_notes_do_not_depend_on_the_number_of_hospitals() -> None:
    # Prepare / Execute
    two = generate_corpus(hospitals=2, notes_per_hospital=40, seed=3, canaries_per_hospital=0)
    five = generate_corpus(hospitals=5, notes_per_hospital=40, seed=3, canaries_per_hospital=0)

    # Assert
    assert two.notes == five.notes[:80]


# --- shape of the notes ---


def test_corpus_has_the_requested_notes_with_unique_ids(corpus: Corpus) -> None:
    # Execute
    groups = corpus.by_hospital()

    # Assert
    assert len(corpus) == 1200
    assert sorted(groups) == [0, 1, 2, 3]
    assert all(len(notes) == 300 and all(n.hospital == h for n in notes) for h, notes in groups.items())
    assert len({n.note_id for n in corpus.notes}) == 1200
    assert corpus.texts() == [n.text for n in corpus.notes]
    assert corpus.hospital_labels().tolist() == [n.hospital for n in corpus.notes]


def test_notes_are_short(corpus: Corpus) -> None:
    # Execute
    words = [len(n.text.split()) for n in corpus.notes]

    # Assert: 40-120 words, plus a canary phrase (at most 10 words) in a few.
    assert min(words) >= 40
    assert max(words) <= 130
    assert all(len(n.text.split()) <= 120 for n in corpus.notes if not n.is_canary)
    assert all(n.text.isascii() for n in corpus.notes)


VITAL_PATTERNS = {
    "hr": (r"\b(?:hr|heart rate) (\d+)", 35, 190),
    "spo2": (r"\b(?:spo2|sats|oxygen saturation) (\d+)%", 70, 100),
    "temp": (r"\b(?:t|temp|temperature) (\d+\.\d)\b", 34.0, 41.5),
    "rr": (r"\b(?:rr|respiratory rate) (\d+)", 6, 45),
}


@pytest.mark.parametrize("vital", sorted(VITAL_PATTERNS))
def test_every_note_reports_plausible_vital_signs(corpus: Corpus, vital: str) -> None:
    # Prepare
    pattern, low, high = VITAL_PATTERNS[vital]
    regex = re.compile(pattern, re.IGNORECASE)

    # Execute
    values = []
    for note in corpus.notes:
        match = regex.search(note.text)
        assert match is not None, f"{vital} missing from {note.note_id}: {note.text}"
        values.append(float(match.group(1)))

    # Assert
    assert low <= min(values) and max(values) <= high
    assert len(set(values)) > 10  # values vary, they are not a constant template


def test_blood_pressure_is_plausible(corpus: Corpus) -> None:
    # Execute
    pressures = [re.search(r"\b(?:bp|blood pressure) (\d+)/(\d+)", n.text, re.IGNORECASE) for n in corpus.notes]

    # Assert
    assert all(p is not None for p in pressures)
    pairs = [(int(p.group(1)), int(p.group(2))) for p in pressures if p is not None]
    assert all(60 <= s <= 230 and 30 <= d <= 130 and s > d for s, d in pairs)


def test_notes_carry_labs_medications_and_a_plan(corpus: Corpus) -> None:
    # Prepare
    doses = re.compile(r"\b\d+(?:\.\d+)? (?:mg|g|mcg|units|meq|ml|l)\b", re.IGNORECASE)
    plan = re.compile(r"\b(?:plan|a/p)\b", re.IGNORECASE)
    labs = re.compile(
        r"\b(?:na|sodium|k|potassium|cr|creatinine|wbc|white count|hb|hgb|hemoglobin|lactate|lac|"
        r"glucose|bg|glu|plt|platelets|bun|mg|magnesium|hco3|bicarb|bicarbonate|trop i|bnp|pct|inr|"
        r"ph|ck|creatine kinase|urea nitrogen)\b [\d.]+",
        re.IGNORECASE,
    )

    # Execute / Assert
    for note in corpus.notes:
        assert doses.search(note.text), note.text
        assert plan.search(note.text), note.text
        assert len(labs.findall(note.text)) >= 2, note.text


# --- hospitals differ (non-IID) ---


def test_hospitals_differ_far_more_than_halves_of_one_hospital(corpus: Corpus) -> None:
    # Prepare
    groups = {h: [n.text for n in notes] for h, notes in corpus.by_hospital().items()}
    dists = {h: token_distribution(texts) for h, texts in groups.items()}

    # Execute
    within = [total_variation(token_distribution(t[::2]), token_distribution(t[1::2])) for t in groups.values()]
    across = [total_variation(dists[a], dists[b]) for a in dists for b in dists if a < b]

    # Assert
    assert min(across) > 0.2
    assert min(across) > 4 * max(within)


def test_hospitals_past_the_fourth_cycle_the_styles_with_variation() -> None:
    # Prepare
    corpus = generate_corpus(hospitals=5, notes_per_hospital=200, seed=0, canaries_per_hospital=0)
    dists = {h: token_distribution([n.text for n in notes]) for h, notes in corpus.by_hospital().items()}

    # Execute
    to_fifth = [total_variation(dists[4], dists[h]) for h in range(4)]

    # Assert: hospital 4 writes like hospital 0 (same style), but with its own case mix.
    assert to_fifth.index(min(to_fifth)) == 0
    assert hospital_style(4).case_weights != hospital_style(0).case_weights
    assert hospital_style(4).headers != () and hospital_style(4) == hospital_style(4, seed=0)
    assert [hospital_style(h).name for h in range(4)] == ["cardiac", "sepsis", "trauma", "neuro"]


# --- canaries ---


def test_canaries_are_planted_exactly_repetitions_times_in_their_hospital(corpus: Corpus) -> None:
    # Execute / Assert
    assert len(corpus.canaries) == 8
    assert [c.hospital for c in corpus.canaries] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert [c.repetitions for c in corpus.canaries] == [1, 8] * 4
    for canary in corpus.canaries:
        holders = [n for n in corpus.notes if canary.phrase in n.text]
        assert len(holders) == canary.repetitions
        assert all(n.hospital == canary.hospital and n.is_canary for n in holders)
        assert all(n.text.count(canary.phrase) == 1 for n in holders)


def test_is_canary_marks_exactly_the_notes_with_a_secret(corpus: Corpus) -> None:
    # Execute
    with_secret = {n.note_id for n in corpus.notes if any(c.phrase in n.text for c in corpus.canaries)}
    flagged = {n.note_id for n in corpus.notes if n.is_canary}

    # Assert
    assert flagged == with_secret
    assert len(flagged) == sum(c.repetitions for c in corpus.canaries)


def test_canary_secrets_are_unique_digit_sequences(corpus: Corpus) -> None:
    # Execute / Assert
    assert len({c.secret for c in corpus.canaries}) == len(corpus.canaries)
    assert len({c.prefix for c in corpus.canaries}) == len(corpus.canaries)
    for canary in corpus.canaries:
        assert re.fullmatch(r"\d( \d){5}", canary.secret)
        assert canary.digits == tuple(int(d) for d in canary.secret.split())
        assert tokenize(canary.phrase) == canary.prefix.split() + [str(d) for d in canary.digits]


def test_canary_prefixes_never_appear_without_their_secret(corpus: Corpus) -> None:
    # Execute / Assert
    for canary in corpus.canaries:
        assert sum(canary.prefix in n.text for n in corpus.notes) == canary.repetitions


def test_canary_repetitions_and_length_are_configurable() -> None:
    # Execute
    corpus = generate_corpus(
        hospitals=2, notes_per_hospital=30, seed=5, canaries_per_hospital=3, canary_repetitions=(2, 5), secret_digits=4
    )

    # Assert
    assert [c.repetitions for c in corpus.canaries] == [2, 5, 2, 2, 5, 2]
    for canary in corpus.canaries:
        assert len(canary.digits) == 4
        assert sum(canary.phrase in n.text for n in corpus.notes if n.hospital == canary.hospital) == canary.repetitions


def test_no_canaries_when_none_are_asked_for() -> None:
    # Execute
    corpus = generate_corpus(hospitals=2, notes_per_hospital=20, canaries_per_hospital=0)

    # Assert
    assert corpus.canaries == []
    assert not any(n.is_canary for n in corpus.notes)


# --- bad input ---


@pytest.mark.parametrize(
    "kwargs",
    [
        {"hospitals": 0},
        {"notes_per_hospital": 0},
        {"seed": -1},
        {"canaries_per_hospital": -1},
        {"notes_per_hospital": 8, "canary_repetitions": (1, 8)},  # needs 9 distinct notes
        {"canary_repetitions": (0,)},
        {"canary_repetitions": ()},
        {"secret_digits": 0},
        {"canaries_per_hospital": 3, "secret_digits": 1},  # 12 canaries, 10 possible secrets
        {
            "hospitals": 64,
            "notes_per_hospital": 10,
            "canaries_per_hospital": 4,
            "canary_repetitions": (1,),
        },  # 256 > 252
    ],
)
def test_impossible_requests_raise_value_error(kwargs: dict[str, object]) -> None:
    # Execute / Assert
    with pytest.raises(ValueError):
        generate_corpus(**kwargs)  # type: ignore[arg-type]
