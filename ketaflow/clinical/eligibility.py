"""Eligibility decision support for ketamine and esketamine treatment.

Pure Python (no Django). Every rule below carries the source it comes from; all
section numbers refer to ``/work/shared/clinical-reference.md`` ("the reference").

The output is decision *support*: it lists every reason found, whether it is an
absolute contraindication, needs a prescriber's review, or is information only.
The prescriber records the decision; overriding needs a written justification
(reference section 4, last bullet).

Decisions taken where the reference is silent (each also noted at the rule):

* Racemic ketamine routes (iv/im/sc/oral): aneurysmal vascular disease,
  arteriovenous malformation and a history of intracerebral hemorrhage are
  **absolute**. The reference says racemic ketamine is contraindicated "where a
  significant rise in blood pressure would be a serious hazard"; these three are
  the conditions the esketamine label names for exactly that hazard, and the
  reference reports blood-pressure rises after IV ketamine (section 3).
* Racemic ketamine routes: known or suspected schizophrenia is **absolute**,
  because the reference lists it with the racemic contraindications
  ("emergency medicine guidance adds known or suspected schizophrenia"), not with
  the warnings. For esketamine it is not a label contraindication, so it is a
  **review** reason (a psychotic disorder, covered by the psychosis warning).
* Not meeting the TRD definition is a **review** reason on every route: the
  esketamine label indication is TRD (or depression with acute suicidal
  ideation, which this case format does not record), and the reference's
  "who can be treated" section defines TRD for all routes.
* The same antidepressant tried twice counts once: the definition is "two or more
  antidepressants".
* Age below adulthood (setting, default 18) is a **review** reason, not absolute:
  the esketamine label is for adults and the cited trials are in adults, but the
  reference lists no age contraindication.
* Baseline blood pressure above the label's example (140 systolic or 90
  diastolic, clinic setting) is a **review** reason on every route; the reference
  gives the example in the esketamine label and reports BP rises after IV
  ketamine too. A missing baseline reading is an info reason.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# ---------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------

ESKETAMINE = "esketamine-nasal"
RACEMIC_ROUTES = ("iv-ketamine", "im-ketamine", "sc-ketamine", "oral-ketamine")
ROUTES = (*RACEMIC_ROUTES, ESKETAMINE)

OUTCOMES = ("no_response", "partial_response", "intolerance", "response")
FAILED_OUTCOMES = ("no_response", "partial_response")

CONDITIONS = (
    "aneurysmal_vascular_disease",
    "arteriovenous_malformation",
    "intracerebral_hemorrhage_history",
    "hypersensitivity_ketamine",
    "schizophrenia",
    "psychosis_history",
    "mania_history",
    "substance_use_disorder",
    "uncontrolled_hypertension",
    "arrhythmia",
    "ischemic_heart_disease",
    "heart_failure",
    "cerebrovascular_disease",
    "raised_intracranial_pressure",
    "raised_intraocular_pressure",
    "severe_hepatic_impairment",
    "pregnancy",
    "breastfeeding",
)

MEDICATION_CLASSES = ("benzodiazepine", "sedative_hypnotic", "psychostimulant", "maoi", "opioid")

ABSOLUTE = "absolute"
REVIEW = "review"
INFO = "info"
SEVERITIES = (ABSOLUTE, REVIEW, INFO)

ELIGIBLE = "eligible"
NEEDS_REVIEW = "review"
INELIGIBLE = "ineligible"
#: Decisions from most to least permissive.
DECISION_ORDER = (ELIGIBLE, NEEDS_REVIEW, INELIGIBLE)

# Plausibility limits for data entry (reference section 6: "not clinical limits").
# Age in whole years: a plausible age of a person being assessed. 0 is refused (what an empty or
# defaulted field becomes; an infant is not a candidate for a questionnaire-based assessment);
# ages under adult_age (default 18) stay a review reason, not a refusal.
AGE_RANGE = (1, 120)
SYSTOLIC_RANGE = (50, 300)  # reference section 6
DIASTOLIC_RANGE = (20, 200)  # reference section 6

# ---------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------

SRC_ESK_CONTRA = (
    "Spravato prescribing information, contraindications: aneurysmal vascular disease "
    "or arteriovenous malformation; history of intracerebral hemorrhage; hypersensitivity "
    "to esketamine, ketamine or an excipient (clinical-reference.md section 4)"
)
SRC_RACEMIC_CONTRA = (
    "Racemic ketamine: contraindicated where a significant rise in blood pressure would be "
    "a serious hazard, and in hypersensitivity (clinical-reference.md section 4)"
)
SRC_RACEMIC_BP_HAZARD = (
    SRC_RACEMIC_CONTRA
    + "; the esketamine label names this condition for that hazard, and IV ketamine raises "
    "blood pressure (clinical-reference.md section 3). Classed absolute by ketaflow."
)
SRC_SCHIZOPHRENIA_RACEMIC = (
    "Emergency medicine guidance adds known or suspected schizophrenia to the racemic "
    "ketamine contraindications (clinical-reference.md section 4). Classed absolute by ketaflow."
)
SRC_WARNINGS = (
    "Warnings that need a prescriber's review, not an automatic refusal "
    "(clinical-reference.md section 4)"
)
SRC_SCHIZOPHRENIA_ESK = (
    "Not an esketamine label contraindication; psychosis history needs a prescriber's review "
    "(clinical-reference.md section 4)"
)
SRC_TRD = (
    "Treatment-resistant depression: no adequate response to two or more antidepressants of "
    "adequate dose and duration (commonly at least 4-6 weeks at a therapeutic dose) in the "
    "current episode (clinical-reference.md section 4)"
)
SRC_TRD_MIN_WEEKS = (
    "Clinic setting. Reference: 'commonly at least 4-6 weeks at a therapeutic dose' "
    "(clinical-reference.md section 4); default 6 weeks, the upper end."
)
SRC_NOT_TRD = (
    SRC_TRD + "; the esketamine label indication is TRD or depression with acute suicidal "
    "ideation (clinical-reference.md section 1)"
)
SRC_BP = (
    "Spravato label: if baseline BP is raised (the label's example: above 140 systolic or "
    "90 diastolic) the prescriber weighs the short-term rise against the benefit "
    "(clinical-reference.md section 3). Clinic setting, applied to every route."
)
SRC_BP_MISSING = (
    "Spravato label: blood pressure before dosing (clinical-reference.md section 3); "
    "IV ketamine raises blood pressure (section 3)"
)
SRC_ADULT = (
    "Esketamine label indication is adults; the cited ketamine trials are in adults "
    "(clinical-reference.md sections 1 and 4). Age of adulthood is a clinic setting, default 18."
)
SRC_AGE_65 = (
    "Spravato: age 65 and over, day 1 dose 28 mg (stated in the Hong Kong label; check the "
    "local label) (clinical-reference.md section 1)"
)


# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EligibilitySettings:
    """Per-clinic settings. Each default's origin is in ``SETTING_SOURCES``."""

    trd_min_weeks: float = 6
    bp_review_systolic: int = 140
    bp_review_diastolic: int = 90
    adult_age: int = 18
    esketamine_older_adult_age: int = 65

    def __post_init__(self) -> None:
        for name in (
            "trd_min_weeks",
            "bp_review_systolic",
            "bp_review_diastolic",
            "adult_age",
            "esketamine_older_adult_age",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"{name} must be a positive number")


SETTING_SOURCES = {
    "trd_min_weeks": SRC_TRD_MIN_WEEKS,
    "bp_review_systolic": SRC_BP,
    "bp_review_diastolic": SRC_BP,
    "adult_age": SRC_ADULT,
    "esketamine_older_adult_age": SRC_AGE_65,
}

DEFAULTS = EligibilitySettings()


# ---------------------------------------------------------------------------
# Case
# ---------------------------------------------------------------------------


class CaseError(ValueError):
    """An invalid case. ``field`` names the offending field, e.g. ``antidepressant_trials[1].weeks``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class AntidepressantTrial:
    drug: str
    adequate_dose: bool
    weeks: float
    current_episode: bool
    outcome: str


@dataclass(frozen=True)
class BloodPressure:
    systolic: float
    diastolic: float


@dataclass(frozen=True)
class Case:
    route: str
    age: int
    antidepressant_trials: tuple[AntidepressantTrial, ...] = ()
    conditions: frozenset[str] = frozenset()
    medication_classes: frozenset[str] = frozenset()
    blood_pressure: BloodPressure | None = None

    def __post_init__(self) -> None:
        # Guard direct construction too: the same checks parse_case applies.
        if self.route not in ROUTES:
            raise CaseError(
                "route", f"unknown route {self.route!r}; expected one of {list(ROUTES)}"
            )
        _check_age(self.age)
        object.__setattr__(self, "antidepressant_trials", tuple(self.antidepressant_trials))
        object.__setattr__(self, "conditions", frozenset(self.conditions))
        object.__setattr__(self, "medication_classes", frozenset(self.medication_classes))
        for code in self.conditions:
            if code not in CONDITIONS:
                raise CaseError("conditions", f"unknown condition code {code!r}")
        for code in self.medication_classes:
            if code not in MEDICATION_CLASSES:
                raise CaseError("medication_classes", f"unknown medication class {code!r}")
        for i, trial in enumerate(self.antidepressant_trials):
            if trial.outcome not in OUTCOMES:
                raise CaseError(f"antidepressant_trials[{i}].outcome", "unknown outcome")
            if not _is_number(trial.weeks) or trial.weeks < 0:
                raise CaseError(f"antidepressant_trials[{i}].weeks", "must be a number ≥ 0")
        if self.blood_pressure is not None:
            _check_bp(self.blood_pressure.systolic, self.blood_pressure.diastolic)


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _check_age(age: Any) -> None:
    if isinstance(age, bool) or not isinstance(age, int):
        raise CaseError("age", "must be a whole number of years")
    if not AGE_RANGE[0] <= age <= AGE_RANGE[1]:
        raise CaseError("age", f"must be between {AGE_RANGE[0]} and {AGE_RANGE[1]}")


def _check_bp(systolic: Any, diastolic: Any) -> None:
    for name, value, (low, high) in (
        ("systolic", systolic, SYSTOLIC_RANGE),
        ("diastolic", diastolic, DIASTOLIC_RANGE),
    ):
        if not _is_number(value):
            raise CaseError(f"blood_pressure.{name}", "must be a number in mmHg")
        if not low <= value <= high:
            raise CaseError(f"blood_pressure.{name}", f"must be between {low} and {high} mmHg")
    if systolic <= diastolic:
        raise CaseError("blood_pressure.systolic", "must be above the diastolic pressure")


_CASE_KEYS = (
    "route",
    "age",
    "antidepressant_trials",
    "conditions",
    "medication_classes",
    "blood_pressure",
)
_REQUIRED_CASE_KEYS = ("route", "age", "antidepressant_trials", "conditions", "medication_classes")
_TRIAL_KEYS = ("drug", "adequate_dose", "weeks", "current_episode", "outcome")


def _check_keys(
    data: Mapping[str, Any], allowed: Sequence[str], required: Sequence[str], prefix: str
) -> None:
    for key in data:
        if key not in allowed:
            raise CaseError(f"{prefix}{key}", f"unknown field; expected only {list(allowed)}")
    for key in required:
        if key not in data:
            raise CaseError(f"{prefix}{key}", "is required")


def _parse_codes(value: Any, name: str, vocabulary: Sequence[str]) -> frozenset[str]:
    if not isinstance(value, list):
        raise CaseError(name, "must be a list of codes (use [] for none)")
    seen: set[str] = set()
    for i, code in enumerate(value):
        if not isinstance(code, str):
            raise CaseError(f"{name}[{i}]", "must be a code string")
        if code not in vocabulary:
            raise CaseError(
                f"{name}[{i}]", f"unknown code {code!r}; expected one of {list(vocabulary)}"
            )
        if code in seen:
            raise CaseError(f"{name}[{i}]", f"duplicate code {code!r}")
        seen.add(code)
    return frozenset(seen)


def _parse_trial(raw: Any, i: int) -> AntidepressantTrial:
    prefix = f"antidepressant_trials[{i}]"
    if not isinstance(raw, dict):
        raise CaseError(prefix, "must be an object")
    _check_keys(raw, _TRIAL_KEYS, _TRIAL_KEYS, prefix + ".")
    drug = raw["drug"]
    if not isinstance(drug, str) or not drug.strip():
        raise CaseError(f"{prefix}.drug", "must be a non-empty drug name")
    for key in ("adequate_dose", "current_episode"):
        if not isinstance(raw[key], bool):
            raise CaseError(f"{prefix}.{key}", "must be true or false")
    weeks = raw["weeks"]
    if not _is_number(weeks):
        raise CaseError(f"{prefix}.weeks", "must be a number of weeks")
    if weeks < 0:
        raise CaseError(f"{prefix}.weeks", "must not be negative")
    outcome = raw["outcome"]
    if outcome not in OUTCOMES:
        raise CaseError(
            f"{prefix}.outcome", f"unknown outcome {outcome!r}; expected one of {list(OUTCOMES)}"
        )
    return AntidepressantTrial(
        drug=drug.strip(),
        adequate_dose=raw["adequate_dose"],
        weeks=weeks,
        current_episode=raw["current_episode"],
        outcome=outcome,
    )


def parse_case(data: Any) -> Case:
    """Validate a JSON-like dict and build a :class:`Case`.

    Every field except ``blood_pressure`` is required: an absent ``conditions`` list
    would be indistinguishable from "not screened", so "none" must be written ``[]``.
    Raises :class:`CaseError` naming the field.
    """
    if not isinstance(data, dict):
        raise CaseError("case", "must be a JSON object")
    _check_keys(data, _CASE_KEYS, _REQUIRED_CASE_KEYS, "")
    route = data["route"]
    if route not in ROUTES:
        raise CaseError("route", f"unknown route {route!r}; expected one of {list(ROUTES)}")
    _check_age(data["age"])
    trials_raw = data["antidepressant_trials"]
    if not isinstance(trials_raw, list):
        raise CaseError("antidepressant_trials", "must be a list (use [] for none)")
    trials = tuple(_parse_trial(raw, i) for i, raw in enumerate(trials_raw))
    conditions = _parse_codes(data["conditions"], "conditions", CONDITIONS)
    medications = _parse_codes(data["medication_classes"], "medication_classes", MEDICATION_CLASSES)
    bp = None
    if "blood_pressure" in data and data["blood_pressure"] is not None:
        raw_bp = data["blood_pressure"]
        if not isinstance(raw_bp, dict):
            raise CaseError("blood_pressure", "must be an object with systolic and diastolic")
        _check_keys(raw_bp, ("systolic", "diastolic"), ("systolic", "diastolic"), "blood_pressure.")
        _check_bp(raw_bp["systolic"], raw_bp["diastolic"])
        bp = BloodPressure(systolic=raw_bp["systolic"], diastolic=raw_bp["diastolic"])
    return Case(
        route=route,
        age=data["age"],
        antidepressant_trials=trials,
        conditions=conditions,
        medication_classes=medications,
        blood_pressure=bp,
    )


# ---------------------------------------------------------------------------
# Result
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Reason:
    code: str
    severity: str
    message: str
    source: str

    def as_dict(self) -> dict[str, str]:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "source": self.source,
        }


@dataclass(frozen=True)
class EligibilityResult:
    decision: str
    trd: bool
    adequate_failed_trials: int
    reasons: tuple[Reason, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "trd": self.trd,
            "adequate_failed_trials": self.adequate_failed_trials,
            "reasons": [r.as_dict() for r in self.reasons],
        }


# ---------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------

# Condition rules: code -> (severity for racemic routes, severity for esketamine,
#                           plain-language message, source racemic, source esketamine)
_CONDITION_RULES: dict[str, tuple[str, str, str, str, str]] = {
    "aneurysmal_vascular_disease": (
        ABSOLUTE,
        ABSOLUTE,
        "Aneurysmal vascular disease: a rise in blood pressure could be dangerous.",
        SRC_RACEMIC_BP_HAZARD,
        SRC_ESK_CONTRA,
    ),
    "arteriovenous_malformation": (
        ABSOLUTE,
        ABSOLUTE,
        "Arteriovenous malformation: a rise in blood pressure could be dangerous.",
        SRC_RACEMIC_BP_HAZARD,
        SRC_ESK_CONTRA,
    ),
    "intracerebral_hemorrhage_history": (
        ABSOLUTE,
        ABSOLUTE,
        "History of bleeding in the brain (intracerebral hemorrhage).",
        SRC_RACEMIC_BP_HAZARD,
        SRC_ESK_CONTRA,
    ),
    "hypersensitivity_ketamine": (
        ABSOLUTE,
        ABSOLUTE,
        "Hypersensitivity to ketamine, esketamine or an excipient.",
        SRC_RACEMIC_CONTRA,
        SRC_ESK_CONTRA,
    ),
    "schizophrenia": (
        ABSOLUTE,
        REVIEW,
        "Known or suspected schizophrenia.",
        SRC_SCHIZOPHRENIA_RACEMIC,
        SRC_SCHIZOPHRENIA_ESK,
    ),
    "psychosis_history": (
        REVIEW,
        REVIEW,
        "History of psychosis: ketamine can cause psychotic-like effects.",
        SRC_WARNINGS,
        SRC_WARNINGS,
    ),
    "mania_history": (
        REVIEW,
        REVIEW,
        "History of mania.",
        SRC_WARNINGS,
        SRC_WARNINGS,
    ),
    "substance_use_disorder": (
        REVIEW,
        REVIEW,
        "Substance use disorder (including prior ketamine, PCP or opioid misuse).",
        SRC_WARNINGS,
        SRC_WARNINGS,
    ),
    "uncontrolled_hypertension": (
        REVIEW,
        REVIEW,
        "Uncontrolled high blood pressure: ketamine raises blood pressure.",
        SRC_WARNINGS,
        SRC_WARNINGS,
    ),
    "arrhythmia": (
        REVIEW,
        REVIEW,
        "Significant heart rhythm disorder (arrhythmia).",
        SRC_WARNINGS,
        SRC_WARNINGS,
    ),
    "ischemic_heart_disease": (
        REVIEW,
        REVIEW,
        "Ischemic heart disease.",
        SRC_WARNINGS,
        SRC_WARNINGS,
    ),
    "heart_failure": (
        REVIEW,
        REVIEW,
        "Heart failure.",
        SRC_WARNINGS,
        SRC_WARNINGS,
    ),
    "cerebrovascular_disease": (
        REVIEW,
        REVIEW,
        "Cerebrovascular disease (check whether it is unstable).",
        SRC_WARNINGS,
        SRC_WARNINGS,
    ),
    "raised_intracranial_pressure": (
        REVIEW,
        REVIEW,
        "Raised pressure inside the skull (intracranial pressure).",
        SRC_WARNINGS,
        SRC_WARNINGS,
    ),
    "raised_intraocular_pressure": (
        REVIEW,
        REVIEW,
        "Raised pressure inside the eye (intraocular pressure).",
        SRC_WARNINGS,
        SRC_WARNINGS,
    ),
    "severe_hepatic_impairment": (
        REVIEW,
        REVIEW,
        "Severe liver impairment.",
        SRC_WARNINGS,
        SRC_WARNINGS,
    ),
    "pregnancy": (
        REVIEW,
        REVIEW,
        "Pregnancy.",
        SRC_WARNINGS,
        SRC_WARNINGS,
    ),
    "breastfeeding": (
        REVIEW,
        REVIEW,
        "Breastfeeding.",
        SRC_WARNINGS,
        SRC_WARNINGS,
    ),
}

# Medication class rules (all routes): code -> message. All are review reasons.
_MEDICATION_RULES: dict[str, str] = {
    "benzodiazepine": (
        "Takes a benzodiazepine: a CNS depressant (more sedation); above about 3 mg "
        "lorazepam-equivalent a day it may also blunt the response to ketamine."
    ),
    "sedative_hypnotic": "Takes a sedative-hypnotic: a CNS depressant (more sedation).",
    "opioid": "Takes an opioid: a CNS depressant (more sedation and breathing depression).",
    "psychostimulant": "Takes a psychostimulant: may raise blood pressure further.",
    "maoi": "Takes an MAO inhibitor: may raise blood pressure further.",
}


def medication_note(med_class: str) -> str:
    """The reference's interaction note for a medication class ("" for classes it names
    no interaction for), as used by the eligibility rules and shown beside medications."""
    return _MEDICATION_RULES.get(med_class, "")


_SEVERITY_RANK = {ABSOLUTE: 0, REVIEW: 1, INFO: 2}


def _route_label(route: str) -> str:
    return "esketamine" if route == ESKETAMINE else "racemic ketamine"


def _why_trial_does_not_count(
    trial: AntidepressantTrial, settings: EligibilitySettings
) -> str | None:
    """Return a plain-language reason the trial does not count towards TRD, or None if it counts."""
    problems = []
    if not trial.current_episode:
        problems.append("it was in a previous episode")
    if not trial.adequate_dose:
        problems.append("the dose was not adequate")
    if trial.weeks < settings.trd_min_weeks:
        problems.append(
            f"it lasted {trial.weeks:g} weeks, less than the clinic minimum of "
            f"{settings.trd_min_weeks:g} weeks"
        )
    if trial.outcome == "response":
        problems.append("the patient responded")
    elif trial.outcome == "intolerance":
        problems.append("it ended because of intolerance, not lack of response")
    return "; ".join(problems) if problems else None


def count_failed_trials(
    trials: Sequence[AntidepressantTrial], settings: EligibilitySettings = DEFAULTS
) -> int:
    """Number of distinct antidepressants with an adequate failed trial in the current episode."""
    drugs = {
        t.drug.strip().casefold()
        for t in trials
        if _why_trial_does_not_count(t, settings) is None and t.outcome in FAILED_OUTCOMES
    }
    return len(drugs)


def evaluate(case: Case, settings: EligibilitySettings = DEFAULTS) -> EligibilityResult:
    """Evaluate one case. Any absolute reason → ineligible; else any review → review; else eligible."""
    esk = case.route == ESKETAMINE
    reasons: list[Reason] = []

    # Conditions (reference section 4).
    for code in CONDITIONS:  # fixed order for stable output
        if code in case.conditions:
            sev_racemic, sev_esk, message, src_racemic, src_esk = _CONDITION_RULES[code]
            reasons.append(
                Reason(
                    code=code,
                    severity=sev_esk if esk else sev_racemic,
                    message=message,
                    source=src_esk if esk else src_racemic,
                )
            )

    # Concomitant medication classes (reference section 4).
    for code in MEDICATION_CLASSES:
        if code in case.medication_classes:
            reasons.append(
                Reason(f"medication_{code}", REVIEW, _MEDICATION_RULES[code], SRC_WARNINGS)
            )

    # Treatment-resistant depression (reference section 4).
    for i, trial in enumerate(case.antidepressant_trials):
        why = _why_trial_does_not_count(trial, settings)
        if trial.outcome == "intolerance":
            reasons.append(
                Reason(
                    "trial_intolerance",
                    INFO,
                    f"Trial {i + 1} ({trial.drug}) ended because of intolerance; it is listed "
                    "but does not count as a failed trial.",
                    SRC_TRD,
                )
            )
        elif why is not None:
            reasons.append(
                Reason(
                    "trial_not_counted",
                    INFO,
                    f"Trial {i + 1} ({trial.drug}) does not count towards TRD: {why}.",
                    SRC_TRD,
                )
            )
    failed = count_failed_trials(case.antidepressant_trials, settings)
    trd = failed >= 2
    if trd:
        reasons.append(
            Reason(
                "trd_met",
                INFO,
                f"Meets the TRD definition: {failed} different antidepressants failed at an "
                f"adequate dose for at least {settings.trd_min_weeks:g} weeks in this episode.",
                SRC_TRD,
            )
        )
    else:
        reasons.append(
            Reason(
                "not_trd",
                REVIEW,
                f"Does not meet the TRD definition: {failed} adequate failed antidepressant "
                f"trial(s) in this episode, 2 needed (at an adequate dose, at least "
                f"{settings.trd_min_weeks:g} weeks, no or partial response). The prescriber "
                "must confirm the indication"
                + (" (label: TRD, or depression with acute suicidal ideation)." if esk else "."),
                SRC_NOT_TRD if esk else SRC_TRD,
            )
        )

    # Baseline blood pressure (reference section 3).
    bp = case.blood_pressure
    if bp is None:
        reasons.append(
            Reason(
                "blood_pressure_missing",
                INFO,
                "No baseline blood pressure given; measure it before dosing.",
                SRC_BP_MISSING,
            )
        )
    elif bp.systolic > settings.bp_review_systolic or bp.diastolic > settings.bp_review_diastolic:
        reasons.append(
            Reason(
                "blood_pressure_raised",
                REVIEW,
                f"Baseline blood pressure {bp.systolic:g}/{bp.diastolic:g} mmHg is above "
                f"{settings.bp_review_systolic}/{settings.bp_review_diastolic}: weigh the "
                "short-term rise in blood pressure against the benefit.",
                SRC_BP,
            )
        )

    # Age (reference sections 1 and 4).
    if case.age < settings.adult_age:
        reasons.append(
            Reason(
                "age_under_adult",
                REVIEW,
                f"Age {case.age} is below adulthood ({settings.adult_age}); the {_route_label(case.route)} "
                "evidence and the esketamine label are for adults.",
                SRC_ADULT,
            )
        )
    if esk and case.age >= settings.esketamine_older_adult_age:
        reasons.append(
            Reason(
                "age_65_start_28mg",
                INFO,
                f"Age {case.age}: esketamine day-1 dose is 28 mg at age "
                f"{settings.esketamine_older_adult_age} and over (check the local label).",
                SRC_AGE_65,
            )
        )

    reasons.sort(key=lambda r: _SEVERITY_RANK[r.severity])  # stable: keeps order within a severity
    if any(r.severity == ABSOLUTE for r in reasons):
        decision = INELIGIBLE
    elif any(r.severity == REVIEW for r in reasons):
        decision = NEEDS_REVIEW
    else:
        decision = ELIGIBLE
    return EligibilityResult(decision, trd, failed, tuple(reasons))


# ---------------------------------------------------------------------------
# CLI: ketaflow eligibility check FILE
# ---------------------------------------------------------------------------


class _ArgumentError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # raise instead of sys.exit so main() returns 2
        raise _ArgumentError(message)


def main(argv: Sequence[str] | None = None) -> int:
    """``ketaflow eligibility check FILE`` (FILE may be ``-`` for stdin).

    Prints the result as JSON and returns 0; returns 2 with a message on stderr for a
    usage error, an unreadable file, bad JSON or an invalid case (naming the field).
    """
    parser = _Parser(prog="ketaflow eligibility", description="Eligibility decision support.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    check = sub.add_parser("check", help="evaluate a case given as a JSON file ('-' for stdin)")
    check.add_argument("file", metavar="FILE")
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except _ArgumentError as exc:
        print(f"ketaflow eligibility: error: {exc}", file=sys.stderr)
        print(parser.format_usage().rstrip(), file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    try:
        if args.file == "-":
            text = sys.stdin.read()
        else:
            with open(args.file, encoding="utf-8") as fh:
                text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"ketaflow eligibility: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        print(f"ketaflow eligibility: {args.file} is not valid JSON: {exc}", file=sys.stderr)
        return 2
    try:
        case = parse_case(data)
    except CaseError as exc:
        print(
            f"ketaflow eligibility: invalid case: field {exc.field}: {exc.message}", file=sys.stderr
        )
        return 2
    print(json.dumps(evaluate(case).as_dict(), indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
