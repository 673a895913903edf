"""A deterministic generator of synthetic ICU clinical notes with planted canaries.

The stand-in for MIMIC-III (which needs credentialed access): short notes
(about 40-120 words) with an admission reason, history, vital signs, labs,
medications with doses, an assessment and a plan. Each hospital writes in its
own style with its own case mix (:mod:`xcloud.data.styles`), so partitioning by
hospital gives non-IID clouds.

Canaries follow Carlini et al. 2019, "The Secret Sharer": a phrase
``"<prefix> d d d d d d"`` (a unique prefix, then random decimal digits
separated by spaces) is planted in ``repetitions`` distinct notes of one
hospital; the exposure of the secret in a trained model measures memorisation.

Tokenisation contract (see :mod:`xcloud.data.tokenizer`): notes are plain
ASCII; numbers are written naturally (``"BP 148/86"``, ``"T 38.2"``) and the
word tokenizer splits every number into single-digit tokens, so a secret of
``k`` digits is exactly ``k`` digit tokens.

Everything is a pure function of the arguments: the same seed gives the same
corpus, byte for byte. Hospital ``h``'s notes come from their own random stream
(seeded by ``(seed, h)``), so they do not depend on how many hospitals there
are. The randomness is numpy's Generator: this is synthetic test data, never
key material.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from itertools import accumulate
from types import MappingProxyType

import numpy as np

from xcloud.data._draw import Draw
from xcloud.data.clinical import BASE_VITALS, CASES, LABS, ROUTINE_LABS, Case
from xcloud.data.corpus import Canary, Corpus, Note
from xcloud.data.styles import BASE_STYLES, HospitalStyle

__all__ = ["DEFAULT_CANARY_REPETITIONS", "generate_corpus", "hospital_style"]

DEFAULT_CANARY_REPETITIONS: tuple[int, ...] = (1, 8)
"""Repetitions of a hospital's canaries, cycled: its first canary appears once, its second 8 times, ..."""

# Independent random streams, keyed (seed, stream, ...).
_STREAM_STYLE = 0
_STREAM_NOTES = 1
_STREAM_SECRETS = 2
_STREAM_PLACEMENT = 3

_CANARY_OWNERS = ("patient", "mother", "father", "spouse", "guardian", "donor")
_CANARY_KINDS = ("record number", "insurance id", "contact phone", "account number", "reference code", "badge number")
_CANARY_QUALIFIERS = ("home", "work", "old", "new", "second", "backup")


def hospital_style(hospital: int, seed: int = 0) -> HospitalStyle:
    """The style of hospital ``hospital`` in a corpus generated with ``seed``.

    Hospitals 0-3 use the four base styles (cardiac, sepsis, trauma, neuro)
    as written; hospital ``h >= 4`` uses ``BASE_STYLES[h % 4]`` with every case
    weight multiplied by a log-normal factor (sigma 0.5) and its headers
    reordered, drawn from the stream ``(seed, h)``.

    Raises
    ------
    ValueError
        If ``hospital`` or ``seed`` is negative.
    """
    _check_nonnegative(hospital=hospital, seed=seed)
    base = BASE_STYLES[hospital % len(BASE_STYLES)]
    if hospital < len(BASE_STYLES):
        return base
    rng = np.random.default_rng([seed, _STREAM_STYLE, hospital])
    keys = sorted(base.case_weights)
    factors = rng.lognormal(0.0, 0.5, size=len(keys))
    weights = MappingProxyType({k: base.case_weights[k] * float(f) for k, f in zip(keys, factors, strict=True)})
    headers = tuple(base.headers[i] for i in rng.permutation(len(base.headers)))
    return dataclasses.replace(base, name=f"{base.name}-{hospital}", case_weights=weights, headers=headers)


def generate_corpus(
    hospitals: int = 4,
    notes_per_hospital: int = 300,
    seed: int = 0,
    canaries_per_hospital: int = 2,
    *,
    canary_repetitions: Sequence[int] = DEFAULT_CANARY_REPETITIONS,
    secret_digits: int = 6,
) -> Corpus:
    """Generate a corpus of synthetic ICU notes from ``hospitals`` hospitals.

    Parameters
    ----------
    hospitals : int
        Number of hospitals (clouds), at least 1.
    notes_per_hospital : int
        Notes per hospital, at least 1; canaries go into these notes, they do not add notes.
    seed : int
        Non-negative seed; the corpus is a pure function of all arguments.
    canaries_per_hospital : int
        Canary secrets planted in each hospital's notes (0 for none).
    canary_repetitions : Sequence[int]
        Repetitions of a hospital's canaries, cycled: canary ``j`` of a hospital
        is planted in ``canary_repetitions[j % len(canary_repetitions)]``
        distinct notes.
    secret_digits : int
        Digits per secret; the exposure candidate space has ``10 ** secret_digits`` members.

    Returns
    -------
    Corpus
        ``hospitals * notes_per_hospital`` notes, hospital-major; its canaries
        ordered by hospital, then by index within the hospital.

    Raises
    ------
    ValueError
        If a count is out of range, a hospital's repetitions add up to more
        than ``notes_per_hospital``, or there are more canaries than distinct
        prefixes (252) or secrets (``10 ** secret_digits``).
    """
    _check_positive(hospitals=hospitals, notes_per_hospital=notes_per_hospital, secret_digits=secret_digits)
    _check_nonnegative(seed=seed, canaries_per_hospital=canaries_per_hospital)
    reps = [int(r) for r in canary_repetitions]
    if canaries_per_hospital > 0:
        if not reps or min(reps) < 1:
            raise ValueError(f"canary_repetitions must be a non-empty sequence of positive ints, got {reps}")
        per_hospital = [reps[j % len(reps)] for j in range(canaries_per_hospital)]
        if sum(per_hospital) > notes_per_hospital:
            raise ValueError(
                f"the canaries of one hospital need {sum(per_hospital)} distinct notes "
                f"(repetitions {per_hospital}) but notes_per_hospital is {notes_per_hospital}"
            )
    else:
        per_hospital = []

    canaries = _draw_canaries(hospitals, per_hospital, seed, secret_digits)
    notes: list[Note] = []
    for h in range(hospitals):
        style = hospital_style(h, seed)
        sections = _hospital_sections(style, notes_per_hospital, np.random.default_rng([seed, _STREAM_NOTES, h]))
        planted = _plant(sections, [c for c in canaries if c.hospital == h], seed, h)
        for i, parts in enumerate(sections):
            notes.append(Note(" ".join(parts), h, f"h{h:02d}-n{i:05d}", i in planted))
    return Corpus(notes=notes, canaries=canaries, hospitals=hospitals, seed=seed)


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


def _check_nonnegative(**values: int) -> None:
    for name, value in values.items():
        if int(value) != value or value < 0:
            raise ValueError(f"{name} must be a non-negative int, got {value!r}")


def _canary_prefixes() -> list[str]:
    plain = [f"{owner} {kind}" for owner in _CANARY_OWNERS for kind in _CANARY_KINDS]
    qualified = [
        f"{owner} {q} {kind}" for q in _CANARY_QUALIFIERS for owner in _CANARY_OWNERS for kind in _CANARY_KINDS
    ]
    return plain + qualified


def _draw_canaries(hospitals: int, repetitions: list[int], seed: int, secret_digits: int) -> list[Canary]:
    """Unique prefixes and secrets for every canary, from the stream (seed, secrets)."""
    total = hospitals * len(repetitions)
    if total == 0:
        return []
    prefixes = _canary_prefixes()
    if total > len(prefixes):
        raise ValueError(f"{total} canaries requested but only {len(prefixes)} distinct prefixes exist")
    if total > 10**secret_digits:
        raise ValueError(f"{total} canaries cannot have distinct {secret_digits}-digit secrets")
    rng = np.random.default_rng([seed, _STREAM_SECRETS])
    # The plain prefixes first (shuffled), the qualified ones only when more are needed.
    n_plain = len(_CANARY_OWNERS) * len(_CANARY_KINDS)
    order = list(rng.permutation(n_plain)) + [n_plain + int(i) for i in rng.permutation(len(prefixes) - n_plain)]
    secrets: list[str] = []
    while len(secrets) < total:
        secret = " ".join(str(int(d)) for d in rng.integers(0, 10, size=secret_digits))
        if secret not in secrets:
            secrets.append(secret)
    canaries = []
    for k in range(total):
        h, j = divmod(k, len(repetitions))
        canaries.append(Canary(hospital=h, prefix=prefixes[order[k]], secret=secrets[k], repetitions=repetitions[j]))
    return canaries


def _plant(sections: list[list[str]], canaries: list[Canary], seed: int, hospital: int) -> set[int]:
    """Insert each canary's phrase into ``repetitions`` distinct notes, once each; return their indices."""
    need = sum(c.repetitions for c in canaries)
    if need == 0:
        return set()
    rng = np.random.default_rng([seed, _STREAM_PLACEMENT, hospital])
    chosen = [int(i) for i in rng.choice(len(sections), size=need, replace=False)]
    draw = Draw(rng)
    start = 0
    for canary in canaries:
        for i in chosen[start : start + canary.repetitions]:
            # Anywhere after the header line.
            sections[i].insert(1 + draw.index(len(sections[i])), f"{canary.phrase}.")
        start += canary.repetitions
    return set(chosen)


def _hospital_sections(style: HospitalStyle, n: int, rng: np.random.Generator) -> list[list[str]]:
    """``n`` notes of one hospital, each as its list of sentences (header first)."""
    draw = Draw(rng)
    keys = sorted(style.case_weights)
    cumulative = list(accumulate(style.case_weights[k] for k in keys))
    return [_note_sections(style, CASES[keys[draw.weighted(cumulative)]], draw) for _ in range(n)]


def _fmt(value: float, decimals: int) -> str:
    if decimals == 0:
        return str(round(value))
    text = f"{value:.{decimals}f}"
    return "0." + "0" * decimals if text.startswith("-") and float(text) == 0 else text


def _note_sections(style: HospitalStyle, case: Case, draw: Draw) -> list[str]:
    age = round(min(97.0, max(18.0, draw.normal(*style.age))))
    sex = style.sex_words[draw.index(2)]
    past = draw.sample(case.history, draw.integer(1, 3))
    if len(past) > 1 and "none" in past:
        past.remove("none")
    history = style.history_join.join(past)
    header = draw.pick(style.headers).format(day=draw.integer(1, 14))
    sections = [header, style.patient.format(age=age, sex=sex, reason=draw.pick(case.reasons), history=history)]
    if style.exam:
        findings = ", ".join(draw.sample(style.exam_findings, draw.integer(1, 2)))
        sections.append(style.exam.format(gcs=draw.integer(*case.gcs), exam=findings))

    v: dict[str, float] = {}
    for key, spec in BASE_VITALS.items():
        mean, sd = case.vitals.get(key, (spec.mean, spec.sd))
        v[key] = min(spec.high, max(spec.low, draw.normal(mean, sd)))
    sbp, dbp = round(v["sbp"]), min(round(v["dbp"]), round(v["sbp"]) - 20)
    sections.append(
        style.vitals.format(
            hr=round(v["hr"]),
            sbp=sbp,
            dbp=dbp,
            map=round((sbp + 2 * dbp) / 3),
            spo2=round(v["spo2"]),
            temp=_fmt(v["temp"], 1),
            rr=round(v["rr"]),
            o2=draw.pick(case.oxygen),
        )
    )

    routine = [k for k in ROUTINE_LABS if k not in case.labs]
    lab_keys = list(case.labs) + draw.sample(routine, draw.integer(*style.labs_per_note))
    items = []
    for key in lab_keys:
        lab = LABS[key]
        mean, sd = case.labs.get(key, (lab.mean, lab.sd))
        value = _fmt(min(lab.high, max(lab.low, draw.normal(mean, sd))), lab.decimals)
        if style.show_units and lab.unit:
            value = f"{value} {lab.unit}"
        items.append(style.lab_item.format(label=style.lab_labels.get(key, key), value=value))
    sections.append(style.labs_prefix + style.lab_join.join(items) + ".")

    meds = [draw.pick(variants) for variants in draw.sample(case.meds, draw.integer(2, 4))]
    sections.append(style.meds_prefix + style.med_join.join(meds) + ".")
    sections.append(style.assessment.format(assessment=draw.pick(case.assessments)))
    plan = draw.sample(case.plans, draw.integer(2, 4))
    sections.append(
        style.plan_prefix
        + style.plan_join.join(style.plan_item.format(i=i + 1, item=p) for i, p in enumerate(plan))
        + "."
    )
    return [style.apply_replacements(s) for s in sections]
