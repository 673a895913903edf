"""How each synthetic hospital writes its notes: templates, abbreviations, case mix.

Four base styles, one per ICU type: a cardiac CCU (formal, upper-case
abbreviations), a medical ICU that sees mostly sepsis (terse, lower case,
``pt``/``w/``/``a/p``), a trauma SICU (dash-separated sections, numbered
plan) and a neuro ICU (spelled-out words, an exam line with GCS and pupils).
Hospital ``h`` uses style ``h % 4``; hospitals past the fourth get the same
templates with a perturbed case mix (see :func:`xcloud.data.synthetic.hospital_style`).
Every hospital also sees a few common cases (GI bleed, DKA, COPD), so the
vocabularies overlap but their distributions differ: the clouds are non-IID.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["BASE_STYLES", "HospitalStyle"]


@dataclass(frozen=True)
class HospitalStyle:
    """Templates and case mix of one hospital.

    Format fields: ``patient`` takes ``{age} {sex} {reason} {history}``;
    ``exam`` takes ``{gcs} {exam}``; ``vitals`` takes ``{hr} {sbp} {dbp} {map}
    {spo2} {temp} {rr} {o2}``; ``assessment`` takes ``{assessment}``;
    ``plan_item`` takes ``{i} {item}``. An empty ``exam`` leaves the exam out.

    Attributes
    ----------
    name : str
        Style name (``"cardiac"``, ``"sepsis"``, ``"trauma"``, ``"neuro"``).
    headers : tuple[str, ...]
        First lines (``{day}`` is the ICU day).
    case_weights : Mapping[str, float]
        Relative frequency of each case key of :data:`xcloud.data.clinical.CASES`.
    sex_words : tuple[str, str]
        How the patient's sex is written (female, male).
    replacements : Mapping[str, str]
        Whole-word substitutions applied to the finished note (abbreviations
        spelled out or upper-cased); keys are lower case.
    labs_per_note : tuple[int, int]
        Range of the number of routine labs added to the case's own labs.
    age : tuple[float, float]
        Mean and standard deviation of the patients' age (clamped to 18..97).
    """

    name: str
    headers: tuple[str, ...]
    case_weights: Mapping[str, float]
    sex_words: tuple[str, str]
    patient: str
    exam: str
    vitals: str
    labs_prefix: str
    lab_item: str
    lab_join: str
    lab_labels: Mapping[str, str]
    show_units: bool
    meds_prefix: str
    med_join: str
    assessment: str
    plan_prefix: str
    plan_item: str
    plan_join: str
    history_join: str
    labs_per_note: tuple[int, int]
    age: tuple[float, float] = (62.0, 15.0)
    replacements: Mapping[str, str] = field(default_factory=dict)
    exam_findings: tuple[str, ...] = ()

    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.replacements:
            words = sorted(self.replacements, key=lambda w: (-len(w), w))
            alternatives = "|".join(re.escape(w) for w in words)
            # Whole words only: not inside a longer word or a slash-joined abbreviation.
            pattern = re.compile(r"(?<![\w/])(?:" + alternatives + r")(?![\w/])")
            object.__setattr__(self, "_pattern", pattern)

    def apply_replacements(self, text: str) -> str:
        """Apply :attr:`replacements` to whole words of ``text``."""
        if self._pattern is None:
            return text
        table = self.replacements
        return self._pattern.sub(lambda m: table[m.group(0)], text)


def _upper(*words: str) -> Mapping[str, str]:
    return {w: w.upper() for w in words}


def _weights(primary: Mapping[str, float], common: float = 0.06) -> Mapping[str, float]:
    w = dict(primary)
    for key in ("gibleed", "dka", "copd"):
        w.setdefault(key, common)
    return MappingProxyType(w)


_CARDIAC = HospitalStyle(
    name="cardiac",
    headers=("CCU admission note.", "Cardiac ICU progress note, day {day}.", "CCU note, hospital day {day}."),
    case_weights=_weights({"nstemi": 0.3, "stemi": 0.22, "chf": 0.22, "afib": 0.16, "pneumonia": 0.03}),
    sex_words=("F", "M"),
    patient="{age} yo {sex} admitted with {reason}. PMH: {history}.",
    exam="",
    vitals="Vitals: HR {hr}, BP {sbp}/{dbp}, SpO2 {spo2}% on {o2}, T {temp} C, RR {rr}.",
    labs_prefix="Labs: ",
    lab_item="{label} {value}",
    lab_join=", ",
    lab_labels=MappingProxyType(
        {
            "na": "Na",
            "k": "K",
            "cr": "Cr",
            "wbc": "WBC",
            "hb": "Hgb",
            "plt": "Plt",
            "glucose": "Glu",
            "troponin": "Trop I",
            "bnp": "BNP",
            "hco3": "HCO3",
            "bun": "BUN",
            "mg": "Mg",
            "ck": "CK",
            "lactate": "Lactate",
            "inr": "INR",
            "ph": "pH",
            "procalcitonin": "PCT",
            "cl": "Cl",
        }
    ),
    show_units=False,
    meds_prefix="Meds: ",
    med_join=", ",
    assessment="Assessment: {assessment}.",
    plan_prefix="Plan: ",
    plan_item="{item}",
    plan_join="; ",
    history_join=", ",
    labs_per_note=(2, 4),
    age=(68.0, 11.0),
    replacements=MappingProxyType(
        _upper(
            "po",
            "iv",
            "sl",
            "sc",
            "bid",
            "tid",
            "prn",
            "nstemi",
            "stemi",
            "mi",
            "acs",
            "pci",
            "lad",
            "rca",
            "des",
            "htn",
            "dm2",
            "cad",
            "ckd",
            "tte",
            "dapt",
            "hfref",
            "afib",
            "rvr",
            "tsh",
            "ra",
            "nc",
            "gtt",
            "timi",
            "ef",
            "egd",
            "gi",
            "dka",
            "copd",
            "bipap",
            "bmp",
            "mrsa",
            "abg",
        )
    ),
)

_SEPSIS = HospitalStyle(
    name="sepsis",
    headers=("micu note:", "micu day {day}:", "micu progress note, day {day}:"),
    case_weights=_weights({"urosepsis": 0.32, "pneumonia": 0.3, "bacteremia": 0.2, "chf": 0.03}, common=0.08),
    sex_words=("f", "m"),
    patient="pt {age}{sex} w/ {reason}. hx {history}.",
    exam="",
    vitals="T {temp} HR {hr} BP {sbp}/{dbp} (MAP {map}) RR {rr} sats {spo2}% {o2}.",
    labs_prefix="",
    lab_item="{label} {value}",
    lab_join=", ",
    lab_labels=MappingProxyType({"procalcitonin": "pct", "hb": "hgb", "glucose": "bg", "hco3": "bicarb"}),
    show_units=False,
    meds_prefix="started ",
    med_join=", ",
    assessment="a/p: {assessment}.",
    plan_prefix="",
    plan_item="{item}",
    plan_join=", ",
    history_join=", ",
    labs_per_note=(1, 3),
    age=(63.0, 15.0),
    replacements=MappingProxyType({"patient": "pt", "with": "w/", "and": "+", "antibiotics": "abx"}),
)

_TRAUMA = HospitalStyle(
    name="trauma",
    headers=("Trauma ICU note:", "SICU trauma progress note, hd {day}:", "trauma surgery icu note - hd {day}:"),
    case_weights=_weights({"mvc": 0.32, "fall": 0.26, "penetrating": 0.2, "tbi": 0.1}, common=0.04),
    sex_words=("female", "male"),
    patient="{age} y/o {sex} s/p {reason}. hx - {history}.",
    exam="GCS {gcs} on arrival, {exam}.",
    vitals="vitals - hr {hr}, bp {sbp}/{dbp}, spo2 {spo2}% {o2}, temp {temp}, rr {rr}.",
    labs_prefix="labs - ",
    lab_item="{label} {value}",
    lab_join=", ",
    lab_labels=MappingProxyType({"hb": "Hb", "inr": "INR", "ph": "pH", "ck": "CK", "lactate": "lac"}),
    show_units=False,
    meds_prefix="meds - ",
    med_join=", ",
    assessment="impression - {assessment}.",
    plan_prefix="plan - ",
    plan_item="{i}) {item}",
    plan_join=" ",
    history_join=", ",
    labs_per_note=(1, 3),
    age=(41.0, 17.0),
    replacements=MappingProxyType(_upper("prbc", "ffp", "txa", "mtp", "mvc", "gsw", "ct", "or", "ir", "fx")),
    exam_findings=(
        "fast negative",
        "fast positive in luq",
        "c collar in place",
        "abdomen tender",
        "chest tube in place",
        "pelvic binder on",
    ),
)

_NEURO = HospitalStyle(
    name="neuro",
    headers=("Neuro ICU progress note.", "Neurocritical care admission note.", "NICU note, day {day}."),
    case_weights=_weights({"stroke": 0.3, "ich": 0.22, "seizure": 0.16, "sah": 0.14, "tbi": 0.1}, common=0.03),
    sex_words=("woman", "man"),
    patient="{age} year old {sex} with {reason}. Past history of {history}.",
    exam="Exam: GCS {gcs}, {exam}.",
    vitals=(
        "Heart rate {hr}, blood pressure {sbp}/{dbp}, oxygen saturation {spo2}% on {o2}, "
        "temperature {temp}, respiratory rate {rr}."
    ),
    labs_prefix="Labs: ",
    lab_item="{label} {value}",
    lab_join=", ",
    lab_labels=MappingProxyType(
        {
            "na": "sodium",
            "k": "potassium",
            "cr": "creatinine",
            "wbc": "white count",
            "hb": "hemoglobin",
            "plt": "platelets",
            "hco3": "bicarbonate",
            "bun": "urea nitrogen",
            "mg": "magnesium",
            "ck": "creatine kinase",
            "inr": "INR",
            "ph": "pH",
            "procalcitonin": "procalcitonin",
        }
    ),
    show_units=True,
    meds_prefix="Medications: ",
    med_join="; ",
    assessment="Assessment: {assessment}.",
    plan_prefix="Plan: ",
    plan_item="{item}",
    plan_join=", ",
    history_join=" and ",
    labs_per_note=(2, 3),
    age=(64.0, 14.0),
    replacements=MappingProxyType(
        {
            "bid": "twice daily",
            "tid": "three times daily",
            "prn": "as needed",
            "po": "by mouth",
            "iv": "intravenous",
            "q1h": "every hour",
            "q4h": "every 4 hours",
            "htn": "hypertension",
            "dm2": "type 2 diabetes",
            "afib": "atrial fibrillation",
            "ra": "room air",
            "nc": "nasal cannula",
            "gtt": "infusion",
            "hob": "head of bed",
            "pt/ot": "physical and occupational therapy",
        }
    ),
    exam_findings=(
        "pupils equal and reactive",
        "right hemiparesis",
        "aphasic",
        "left gaze preference",
        "withdraws to pain",
        "follows commands",
        "right pupil sluggish",
        "neck stiff",
    ),
)

BASE_STYLES: tuple[HospitalStyle, ...] = (_CARDIAC, _SEPSIS, _TRAUMA, _NEURO)
"""The four base styles; hospital ``h`` uses ``BASE_STYLES[h % 4]``."""
