"""Clinical content of the synthetic ICU notes: cases, vital signs, labs, medications.

Every case is an ICU admission type with its own vital-sign shifts, abnormal
labs, medications (with doses and routes, several dose variants each),
assessments and plan items. Means and spreads are plausible adult ICU values
written for this generator, not fitted to any real data; every draw is clamped
to a physiologically possible range. Hospitals (see :mod:`xcloud.data.styles`)
weight the cases differently, which makes the clouds non-IID.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["BASE_VITALS", "CASES", "LABS", "ROUTINE_LABS", "Case", "LabSpec", "VitalSpec"]


@dataclass(frozen=True)
class VitalSpec:
    """Normal distribution of one vital sign, clamped to [low, high], shown with ``decimals``."""

    mean: float
    sd: float
    low: float
    high: float
    decimals: int = 0


@dataclass(frozen=True)
class LabSpec:
    """Normal distribution of one lab value, clamped to [low, high], shown with ``decimals``."""

    mean: float
    sd: float
    low: float
    high: float
    decimals: int
    unit: str = ""
    """Unit words some hospitals write after the value ('' for none)."""


def _frozen(d: Mapping[str, tuple[float, float]]) -> Mapping[str, tuple[float, float]]:
    return MappingProxyType(dict(d))


BASE_VITALS: Mapping[str, VitalSpec] = MappingProxyType(
    {
        "hr": VitalSpec(84, 11, 35, 190),
        "sbp": VitalSpec(124, 15, 60, 230),
        "dbp": VitalSpec(72, 9, 30, 130),
        "spo2": VitalSpec(96, 1.6, 70, 100),
        "temp": VitalSpec(36.9, 0.35, 34.0, 41.5, 1),
        "rr": VitalSpec(17, 2.5, 6, 45),
    }
)
"""Vital signs of a stable ICU patient; a case overrides (mean, sd) of some."""

LABS: Mapping[str, LabSpec] = MappingProxyType(
    {
        "na": LabSpec(139, 3, 110, 175, 0, "mmol/l"),
        "k": LabSpec(4.1, 0.4, 2.0, 7.5, 1, "mmol/l"),
        "cl": LabSpec(103, 3, 80, 130, 0, "mmol/l"),
        "hco3": LabSpec(24, 2.5, 5, 40, 0, "mmol/l"),
        "bun": LabSpec(18, 6, 3, 150, 0, "mg/dl"),
        "cr": LabSpec(1.0, 0.25, 0.3, 12.0, 1, "mg/dl"),
        "glucose": LabSpec(125, 25, 30, 900, 0, "mg/dl"),
        "wbc": LabSpec(8.5, 2.2, 0.5, 60.0, 1, "k/ul"),
        "hb": LabSpec(12.4, 1.4, 4.0, 19.0, 1, "g/dl"),
        "plt": LabSpec(230, 55, 8, 800, 0, "k/ul"),
        "lactate": LabSpec(1.4, 0.4, 0.4, 18.0, 1, "mmol/l"),
        "troponin": LabSpec(0.02, 0.01, 0.0, 80.0, 2, "ng/ml"),
        "bnp": LabSpec(90, 40, 5, 9000, 0, "pg/ml"),
        "inr": LabSpec(1.1, 0.1, 0.8, 9.0, 1, ""),
        "procalcitonin": LabSpec(0.2, 0.1, 0.0, 200.0, 1, "ng/ml"),
        "mg": LabSpec(2.0, 0.2, 0.8, 4.5, 1, "mg/dl"),
        "ck": LabSpec(150, 60, 20, 60000, 0, "u/l"),
        "ph": LabSpec(7.39, 0.03, 6.80, 7.70, 2, ""),
    }
)
"""Every lab a note may report."""

ROUTINE_LABS: tuple[str, ...] = ("na", "k", "cr", "wbc", "hb", "glucose", "plt", "hco3", "bun", "mg")
"""The basic panel; a note reports a few of these besides its case's labs."""


@dataclass(frozen=True)
class Case:
    """One ICU admission type.

    Attributes
    ----------
    key : str
        Short name, used by hospital styles' case weights.
    reasons : tuple[str, ...]
        Ways of writing the admission reason.
    history : tuple[str, ...]
        Past medical history items (a note lists one to three).
    vitals : Mapping[str, tuple[float, float]]
        (mean, sd) overriding :data:`BASE_VITALS` for this case.
    labs : Mapping[str, tuple[float, float]]
        Labs always reported for this case, with their (mean, sd).
    oxygen : tuple[str, ...]
        Oxygen support options (``"ra"`` = room air).
    meds : tuple[tuple[str, ...], ...]
        Medications; each inner tuple is the dose variants of one drug.
    assessments : tuple[str, ...]
        Assessment sentences.
    plans : tuple[str, ...]
        Plan items (a note lists two to four).
    gcs : tuple[int, int]
        Range of the Glasgow coma scale on arrival.
    """

    key: str
    reasons: tuple[str, ...]
    history: tuple[str, ...]
    vitals: Mapping[str, tuple[float, float]]
    labs: Mapping[str, tuple[float, float]]
    oxygen: tuple[str, ...]
    meds: tuple[tuple[str, ...], ...]
    assessments: tuple[str, ...]
    plans: tuple[str, ...]
    gcs: tuple[int, int] = field(default=(15, 15))


_CARDIAC_HX = ("htn", "dm2", "cad s/p pci", "hyperlipidemia", "ckd stage 3", "prior mi", "tobacco use")
_GENERAL_HX = ("htn", "dm2", "copd", "ckd stage 3", "cirrhosis", "obesity", "etoh use", "afib on apixaban")
_NEURO_HX = ("htn", "afib off anticoagulation", "prior stroke", "epilepsy", "dm2", "hyperlipidemia")

CASES: Mapping[str, Case] = MappingProxyType(
    {
        c.key: c
        for c in (
            # --- cardiac ---
            Case(
                "nstemi",
                ("nstemi", "non st elevation mi", "chest pain with elevated troponin"),
                _CARDIAC_HX,
                _frozen({"hr": (90, 12), "sbp": (146, 18), "dbp": (86, 10)}),
                _frozen({"troponin": (1.9, 1.1), "bnp": (380, 180)}),
                ("ra", "2l nc"),
                (
                    ("aspirin 325 mg po once", "aspirin 81 mg po daily"),
                    ("heparin gtt 12 units/kg/h", "heparin infusion 18 units/kg/h"),
                    ("metoprolol tartrate 25 mg po bid", "metoprolol 12.5 mg po q6h"),
                    ("atorvastatin 80 mg po nightly",),
                    ("nitroglycerin 0.4 mg sl prn chest pain", "nitro gtt 10 mcg/min"),
                    ("clopidogrel 600 mg po load", "ticagrelor 180 mg po load"),
                ),
                ("nstemi, timi risk intermediate", "type 1 mi with ongoing ischemia unlikely", "acs, chest pain free"),
                (
                    "cardiology consult",
                    "serial troponins q6h",
                    "tte in am",
                    "cath lab tomorrow",
                    "continue dapt",
                    "keep k > 4 and mg > 2",
                    "telemetry",
                ),
            ),
            Case(
                "stemi",
                ("stemi s/p pci to lad", "inferior stemi s/p des to rca", "anterior stemi after primary pci"),
                _CARDIAC_HX,
                _frozen({"hr": (78, 12), "sbp": (118, 16), "dbp": (70, 9)}),
                _frozen({"troponin": (18.0, 9.0), "ck": (1400, 700)}),
                ("ra", "2l nc"),
                (
                    ("aspirin 81 mg po daily",),
                    ("ticagrelor 90 mg po bid", "prasugrel 10 mg po daily"),
                    ("atorvastatin 80 mg po nightly",),
                    ("metoprolol succinate 25 mg po daily", "carvedilol 3.125 mg po bid"),
                    ("lisinopril 2.5 mg po daily",),
                ),
                ("stemi s/p successful pci, hemodynamically stable", "post mi, no recurrent chest pain"),
                (
                    "groin checks q1h",
                    "tte for ef",
                    "cardiac rehab referral",
                    "continue dapt for 12 months",
                    "telemetry",
                    "lipid panel and a1c",
                ),
            ),
            Case(
                "chf",
                ("acute decompensated heart failure", "chf exacerbation", "hfref with volume overload"),
                _CARDIAC_HX,
                _frozen({"hr": (96, 14), "rr": (24, 4), "spo2": (91, 2.5), "sbp": (132, 20)}),
                _frozen({"bnp": (1500, 600), "cr": (1.6, 0.4), "na": (133, 3)}),
                ("4l nc", "bipap", "3l nc"),
                (
                    ("furosemide 40 mg iv bid", "furosemide 80 mg iv bid", "furosemide gtt 10 mg/h"),
                    ("metolazone 5 mg po once",),
                    ("carvedilol 6.25 mg po bid",),
                    ("spironolactone 25 mg po daily",),
                    ("potassium chloride 20 meq po",),
                ),
                ("acute on chronic hfref, volume overloaded", "cardiorenal picture, diuresing"),
                (
                    "strict i/o",
                    "daily weights",
                    "goal net negative 1 to 2 l",
                    "bipap prn",
                    "tte",
                    "fluid restriction 1.5 l",
                ),
            ),
            Case(
                "afib",
                ("afib with rvr", "atrial fibrillation with rapid ventricular response", "new onset afib"),
                _CARDIAC_HX,
                _frozen({"hr": (138, 14), "sbp": (112, 16), "dbp": (68, 10)}),
                _frozen({"troponin": (0.08, 0.04), "mg": (1.7, 0.2)}),
                ("ra",),
                (
                    ("diltiazem 10 mg iv push then 5 mg/h", "diltiazem gtt 10 mg/h"),
                    ("metoprolol 5 mg iv q5min x3",),
                    ("apixaban 5 mg po bid", "heparin gtt 18 units/kg/h"),
                    ("amiodarone 150 mg iv bolus",),
                    ("magnesium sulfate 2 g iv",),
                ),
                ("afib rvr, rate controlled on diltiazem", "afib with rvr, chads vasc 4"),
                ("rate control goal hr < 110", "tsh", "tte", "anticoagulation", "telemetry", "replete k and mg"),
            ),
            # --- sepsis ---
            Case(
                "urosepsis",
                ("urosepsis", "septic shock from uti", "pyelonephritis with sepsis"),
                _GENERAL_HX,
                _frozen({"hr": (116, 12), "sbp": (88, 12), "dbp": (50, 8), "temp": (38.8, 0.6), "rr": (24, 4)}),
                _frozen({"lactate": (3.9, 1.4), "wbc": (17.5, 5.0), "procalcitonin": (9.0, 5.0), "cr": (2.0, 0.6)}),
                ("ra", "2l nc"),
                (
                    ("pip tazo 4.5 g iv q6h", "cefepime 2 g iv q8h", "ceftriaxone 2 g iv daily"),
                    ("vanc 1.25 g iv q12h", "vancomycin 20 mg/kg iv load"),
                    ("ns 30 ml/kg bolus", "lr 2 l bolus"),
                    ("norepi 0.08 mcg/kg/min", "norepinephrine 0.12 mcg/kg/min"),
                    ("hydrocortisone 50 mg iv q6h",),
                ),
                ("septic shock 2/2 uti", "sepsis from urinary source, on pressors", "severe sepsis, improving"),
                (
                    "bcx x2 and ucx sent",
                    "trend lactate q2h",
                    "map goal > 65",
                    "de escalate abx per cx",
                    "renal us",
                    "foley exchange",
                    "wean norepi as tolerated",
                ),
            ),
            Case(
                "pneumonia",
                ("pneumonia with sepsis", "hcap with septic shock", "multifocal pna"),
                _GENERAL_HX,
                _frozen({"hr": (112, 12), "spo2": (88, 3), "temp": (38.6, 0.6), "rr": (28, 4), "sbp": (96, 14)}),
                _frozen({"lactate": (2.9, 1.0), "wbc": (16.0, 5.0), "procalcitonin": (4.0, 2.5)}),
                ("6l nc", "hfnc 40 l 60%", "fio2 50% on vent", "nrb"),
                (
                    ("ceftriaxone 1 g iv daily", "cefepime 2 g iv q8h", "meropenem 1 g iv q8h"),
                    ("azithromycin 500 mg iv daily", "doxycycline 100 mg po bid"),
                    ("vanc 1.25 g iv q12h",),
                    ("norepi 0.05 mcg/kg/min",),
                    ("propofol 20 mcg/kg/min", "fentanyl 50 mcg/h"),
                ),
                ("sepsis from pna with hypoxemic resp failure", "ards from pneumonia, p/f 140"),
                (
                    "lung protective vent 6 ml/kg",
                    "prone if p/f < 150",
                    "sputum cx",
                    "mrsa nares",
                    "trend lactate",
                    "daily sat and sbt",
                ),
            ),
            Case(
                "bacteremia",
                ("line associated bacteremia", "mrsa bacteremia", "cholangitis with gram negative bacteremia"),
                _GENERAL_HX,
                _frozen({"hr": (108, 12), "temp": (38.9, 0.5), "sbp": (98, 14), "dbp": (56, 8)}),
                _frozen({"lactate": (2.6, 1.0), "wbc": (15.0, 4.5), "procalcitonin": (6.0, 4.0), "plt": (120, 45)}),
                ("ra", "2l nc"),
                (
                    ("vanc 1.5 g iv q12h", "daptomycin 8 mg/kg iv daily"),
                    ("pip tazo 4.5 g iv q6h", "meropenem 1 g iv q8h"),
                    ("lr 1 l bolus",),
                    ("acetaminophen 650 mg po q6h prn fever",),
                ),
                ("bacteremia, source likely line", "gram negative sepsis from biliary source"),
                (
                    "remove central line",
                    "repeat bcx q24h until negative",
                    "tee",
                    "id consult",
                    "ercp per gi",
                    "source control",
                ),
            ),
            # --- trauma ---
            Case(
                "mvc",
                ("mvc with polytrauma", "high speed mvc", "motorcycle collision"),
                ("none", "etoh use", "htn", "asthma"),
                _frozen({"hr": (122, 14), "sbp": (98, 16), "dbp": (58, 10), "rr": (22, 4), "temp": (36.3, 0.5)}),
                _frozen({"hb": (8.2, 1.4), "lactate": (3.2, 1.2), "inr": (1.4, 0.2)}),
                ("ra", "2l nc", "fio2 40% on vent"),
                (
                    ("2 units prbc", "4 units prbc and 2 ffp", "mtp activated with 6 units prbc"),
                    ("txa 1 g iv over 10 min", "tranexamic acid 1 g iv"),
                    ("fentanyl 50 mcg iv q1h prn", "hydromorphone 0.5 mg iv q2h prn"),
                    ("cefazolin 2 g iv q8h",),
                    ("tetanus toxoid 0.5 ml im",),
                ),
                ("hemorrhagic shock from splenic lac, responding to blood", "polytrauma, femur fx and rib fx 4 to 6"),
                (
                    "serial h/h q6h",
                    "ortho consult for femur",
                    "ct chest abd pelvis",
                    "tertiary survey",
                    "ir for embolization if unstable",
                    "pain control",
                ),
            ),
            Case(
                "fall",
                ("fall from height", "ground level fall on anticoagulation", "fall with rib fractures"),
                ("htn", "afib on apixaban", "osteoporosis", "etoh use"),
                _frozen({"hr": (98, 12), "rr": (22, 4), "spo2": (93, 2.5)}),
                _frozen({"hb": (10.2, 1.4), "ck": (900, 500), "inr": (1.3, 0.3)}),
                ("2l nc", "ra"),
                (
                    ("acetaminophen 1 g po q6h",),
                    ("oxycodone 5 mg po q4h prn", "lidocaine patch daily"),
                    ("enoxaparin 30 mg sc bid",),
                    ("andexanet alfa 400 mg iv bolus", "kcentra 25 units/kg"),
                ),
                ("multiple rib fx with pulmonary contusion", "pelvic fx, hemodynamically stable"),
                (
                    "incentive spirometry q1h",
                    "epidural per aps",
                    "pt/ot",
                    "repeat cxr",
                    "ortho for pelvis",
                    "hold anticoagulation",
                ),
            ),
            Case(
                "penetrating",
                ("gsw to abdomen", "stab wound to chest", "gsw to thigh"),
                ("none", "etoh use", "asthma"),
                _frozen({"hr": (128, 14), "sbp": (92, 16), "dbp": (54, 10), "rr": (24, 4)}),
                _frozen({"hb": (7.8, 1.3), "lactate": (4.0, 1.5), "ph": (7.28, 0.05)}),
                ("ra", "fio2 40% on vent"),
                (
                    ("4 units prbc", "mtp activated with 6 units prbc"),
                    ("txa 1 g iv",),
                    ("cefoxitin 2 g iv q6h", "pip tazo 3.375 g iv q6h"),
                    ("propofol 30 mcg/kg/min", "fentanyl 100 mcg/h"),
                ),
                ("s/p ex lap with bowel repair, open abdomen", "hemothorax s/p chest tube"),
                (
                    "return to or in 24 h",
                    "chest tube to suction",
                    "serial abd exams",
                    "correct coagulopathy",
                    "wean vent",
                ),
            ),
            # --- neuro ---
            Case(
                "stroke",
                ("acute ischemic stroke", "left mca stroke", "right mca syndrome s/p thrombectomy"),
                _NEURO_HX,
                _frozen({"sbp": (176, 18), "dbp": (94, 10), "hr": (80, 12)}),
                _frozen({"glucose": (165, 40)}),
                ("ra", "2l nc"),
                (
                    ("alteplase 0.9 mg/kg iv", "tenecteplase 0.25 mg/kg iv"),
                    ("labetalol 10 mg iv prn sbp > 180", "nicardipine gtt 5 mg/h"),
                    ("aspirin 300 mg pr after 24 h",),
                    ("atorvastatin 80 mg po nightly",),
                ),
                ("left mca stroke, nihss 14", "ischemic stroke s/p tpa, no hemorrhagic conversion"),
                ("neuro checks q1h", "mri brain", "sbp < 180 for 24 h", "swallow screen", "pt/ot", "tte with bubble"),
                gcs=(9, 15),
            ),
            Case(
                "ich",
                ("intracerebral hemorrhage", "basal ganglia ich", "hypertensive ich"),
                _NEURO_HX,
                _frozen({"sbp": (186, 20), "dbp": (100, 12)}),
                _frozen({"inr": (1.3, 0.4), "plt": (200, 60)}),
                ("ra", "fio2 40% on vent"),
                (
                    ("nicardipine gtt 5 mg/h", "clevidipine 2 mg/h"),
                    ("levetiracetam 500 mg iv bid",),
                    ("kcentra 50 units/kg", "vitamin k 10 mg iv"),
                    ("famotidine 20 mg iv bid",),
                ),
                ("left thalamic ich with ivh, ich score 2", "hypertensive ich, stable on repeat ct"),
                (
                    "repeat ct head in 6 h",
                    "sbp < 140",
                    "neurosurgery consult",
                    "evd if hydrocephalus",
                    "hob 30 degrees",
                ),
                gcs=(6, 14),
            ),
            Case(
                "seizure",
                ("status epilepticus", "breakthrough seizures", "new onset seizure"),
                _NEURO_HX,
                _frozen({"hr": (104, 14), "temp": (37.6, 0.5)}),
                _frozen({"ck": (1100, 600), "na": (134, 4), "lactate": (3.5, 1.5)}),
                ("ra", "fio2 40% on vent"),
                (
                    ("lorazepam 2 mg iv", "lorazepam 4 mg iv x2"),
                    ("levetiracetam 1500 mg iv load", "levetiracetam 1 g iv bid"),
                    ("fosphenytoin 20 mg pe/kg iv",),
                    ("propofol 40 mcg/kg/min",),
                ),
                ("status epilepticus, seizure free since load", "breakthrough seizures, subtherapeutic levels"),
                ("continuous eeg", "aed levels", "mri brain with contrast", "seizure precautions", "lp if febrile"),
                gcs=(7, 15),
            ),
            Case(
                "sah",
                ("aneurysmal sah", "subarachnoid hemorrhage", "sah hunt hess 3"),
                _NEURO_HX,
                _frozen({"sbp": (150, 16), "hr": (76, 10)}),
                _frozen({"na": (134, 4)}),
                ("ra",),
                (
                    ("nimodipine 60 mg po q4h",),
                    ("nicardipine gtt 2.5 mg/h",),
                    ("levetiracetam 500 mg po bid",),
                    ("ns 3% at 30 ml/h", "sodium chloride tabs 2 g tid"),
                ),
                ("aneurysmal sah day 5, vasospasm window", "sah s/p coiling of acom aneurysm"),
                ("tcd daily", "evd at 15 cm h2o", "na goal > 135", "euvolemia", "angio if new deficit"),
                gcs=(10, 15),
            ),
            Case(
                "tbi",
                ("severe tbi", "tbi with subdural hematoma", "traumatic sdh"),
                ("none", "etoh use", "afib on apixaban"),
                _frozen({"hr": (96, 14), "sbp": (138, 18)}),
                _frozen({"na": (145, 3), "inr": (1.3, 0.3)}),
                ("fio2 40% on vent", "2l nc"),
                (
                    ("ns 3% bolus 250 ml", "mannitol 1 g/kg iv"),
                    ("levetiracetam 500 mg iv bid",),
                    ("propofol 30 mcg/kg/min", "fentanyl 50 mcg/h"),
                    ("kcentra 25 units/kg",),
                ),
                ("tbi with sdh and midline shift", "diffuse axonal injury, icp controlled"),
                ("icp goal < 22", "hob 30 degrees", "na goal 145 to 155", "repeat ct head", "neurosurgery following"),
                gcs=(4, 12),
            ),
            # --- seen everywhere ---
            Case(
                "gibleed",
                ("upper gi bleed", "melena with hb drop", "variceal bleed"),
                _GENERAL_HX,
                _frozen({"hr": (112, 12), "sbp": (98, 14), "dbp": (58, 8)}),
                _frozen({"hb": (7.2, 1.0), "bun": (48, 15), "inr": (1.4, 0.3)}),
                ("ra", "2l nc"),
                (
                    ("pantoprazole 80 mg iv then 8 mg/h", "pantoprazole 40 mg iv bid"),
                    ("octreotide 50 mcg/h",),
                    ("2 units prbc", "1 unit prbc"),
                    ("ceftriaxone 1 g iv daily",),
                ),
                ("ugib, likely peptic ulcer", "variceal bleed in cirrhosis"),
                ("egd today", "transfuse for hb < 7", "two large bore ivs", "gi following", "npo"),
            ),
            Case(
                "dka",
                ("dka", "diabetic ketoacidosis", "dka from missed insulin"),
                ("dm1", "dm2", "depression", "htn"),
                _frozen({"hr": (112, 12), "rr": (28, 4)}),
                _frozen({"glucose": (480, 120), "hco3": (11, 3), "k": (5.2, 0.6), "ph": (7.15, 0.06)}),
                ("ra",),
                (
                    ("insulin gtt 0.1 units/kg/h",),
                    ("lr 1 l/h", "ns 1 l bolus then 250 ml/h"),
                    ("potassium chloride 20 meq iv",),
                    ("d5 at 100 ml/h when glucose < 250",),
                ),
                ("dka, gap closing", "severe dka with ph 7.1"),
                ("bmp q2h", "glucose q1h", "transition to sc insulin when gap closed", "diabetes education"),
            ),
            Case(
                "copd",
                ("copd exacerbation", "hypercapnic respiratory failure", "aecopd"),
                ("copd on home o2", "tobacco use", "htn", "osa"),
                _frozen({"spo2": (88, 2.5), "rr": (26, 4), "hr": (100, 12)}),
                _frozen({"hco3": (32, 3), "ph": (7.30, 0.04)}),
                ("bipap 12/5", "2l nc", "hfnc 30 l 40%"),
                (
                    ("albuterol ipratropium 3 ml nebs q4h",),
                    ("methylprednisolone 40 mg iv q12h", "prednisone 40 mg po daily"),
                    ("azithromycin 500 mg po daily", "doxycycline 100 mg po bid"),
                ),
                ("aecopd with hypercapnia, improving on bipap", "copd exacerbation, viral trigger"),
                ("wean bipap", "spo2 goal 88 to 92%", "abg in 2 h", "smoking cessation"),
            ),
        )
    }
)
"""Every case, by key."""
