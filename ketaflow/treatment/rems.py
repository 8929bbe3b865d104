"""The esketamine REMS Patient Monitoring Form as versioned, typed data.

Each version lists its fields: ``(key, label, kind, required)``. Kinds:

- ``text``: free text (names, lot number, adverse events);
- ``yesno``: exactly "yes" or "no";
- ``number``: a whole number within ``BOUNDS[key]`` (blood pressures, other dose in mg);
- ``minutes``: a whole number of minutes within ``BOUNDS[key]``;
- ``date``: an ISO date (YYYY-MM-DD);
- ``email``: an e-mail address;
- ``choice:a|b|c``: one of the listed values.

The published form changes: add a version, never edit one. A form keeps the version it was
created under (``RemsForm.form_version``) and is always shown, validated and exported with
that version's own field list, so a form signed under an older version stays readable as it
was signed.

Source: SPRAVATO REMS Patient Monitoring Form (Outpatient Use), Janssen, and its published
instructions: completed after every treatment session, submitted within 7 days; total
monitoring at least 2 hours (120 minutes) from the first device.
"""

import datetime
import re

LEGACY = "2025-ref3"
CURRENT = "2021-11-outpatient"

YES_NO = ("yes", "no")

VERSIONS: dict[str, list[tuple[str, str, str, bool]]] = {
    # ketaflow's first field list (free text where the published form has typed fields).
    # Kept only so that forms signed under it are shown and exported as they were signed.
    LEGACY: [
        ("patient_name", "Patient name", "text", True),
        ("patient_dob", "Patient date of birth", "text", True),
        ("benzodiazepine", "Concomitant benzodiazepine", "yesno", True),
        ("sedative_hypnotic", "Concomitant non-benzodiazepine sedative-hypnotic", "yesno", True),
        ("psychostimulant", "Concomitant psychostimulant", "yesno", True),
        ("maoi", "Concomitant MAOI", "yesno", True),
        ("monitoring_clinician", "Monitoring clinician", "text", True),
        ("setting", "Healthcare setting", "text", True),
        ("date", "Date of treatment session", "text", True),
        ("dose", "Dose", "choice:56|84|other", True),
        ("dose_other_mg", "Other dose (mg)", "number", False),
        ("lot_number", "Lot number", "text", True),
        ("total_minutes", "Total minutes from first device to end of monitoring", "number", True),
        (
            "ready_without_rule",
            "When the patient would have been ready to leave without the 2-hour rule",
            "text",
            True,
        ),
        ("vitals_ok_before", "Vital signs acceptable before dosing", "yesno", True),
        ("vitals_ok_discharge", "Vital signs acceptable before discharge", "yesno", True),
        ("bp_before", "Blood pressure before dosing", "text", True),
        ("bp_40", "Blood pressure at about 40 minutes", "text", True),
        ("bp_discharge", "Blood pressure before discharge", "text", True),
        ("sedation", "Sedation occurred", "yesno", True),
        ("dissociation", "Dissociation occurred", "yesno", True),
        ("adverse_events", "Adverse events (none, or describe)", "text", True),
    ],
    # The published Patient Monitoring Form (Outpatient Use), its sections in order.
    CURRENT: [
        # Patient information
        ("patient_first_name", "Patient first name", "text", True),
        ("patient_last_name", "Patient last name", "text", True),
        ("patient_dob", "Patient birthdate", "date", True),
        ("patient_sex", "Patient sex", "choice:male|female|other", True),
        ("first_treatment", "Is this the patient's first treatment?", "yesno", True),
        (
            "enrolled",
            "If first treatment: is the patient enrolled in the SPRAVATO REMS?",
            "yesno",
            False,
        ),
        # Concomitant medication that may cause sedation, respiratory depression or BP changes
        ("benzodiazepine", "Concomitant benzodiazepines", "yesno", True),
        ("sedative_hypnotic", "Concomitant non-benzodiazepine sedative hypnotics", "yesno", True),
        ("opioid", "Concomitant opioids", "yesno", True),
        ("psychostimulant", "Concomitant psychostimulants", "yesno", True),
        ("maoi", "Concomitant monoamine oxidase inhibitors (MAOIs)", "yesno", True),
        # Healthcare provider conducting patient monitoring
        ("provider_first_name", "Monitoring provider first name", "text", True),
        ("provider_last_name", "Monitoring provider last name", "text", True),
        ("provider_phone", "Monitoring provider telephone", "text", True),
        ("provider_email", "Monitoring provider email", "email", True),
        # Healthcare setting
        ("setting_name", "Healthcare setting name", "text", True),
        ("setting_address1", "Healthcare setting address 1", "text", True),
        ("setting_address2", "Healthcare setting address 2", "text", False),
        ("setting_city", "Healthcare setting city", "text", True),
        ("setting_state", "Healthcare setting state", "text", True),
        ("setting_zip", "Healthcare setting ZIP", "text", True),
        # Treatment session (administration and monitoring)
        ("treatment_date", "Treatment date", "date", True),
        ("dose", "Dose administered (mg)", "choice:56|84|other", True),
        ("dose_other_mg", "Other dose (mg)", "number", False),
        ("lot_number", "Lot number", "text", True),
        (
            "total_minutes",
            "Total time in minutes (from 1st device administration to completion of monitoring)",
            "minutes",
            True,
        ),
        (
            "ready_minutes",
            "Without the 2-hour minimum, ready to leave / no longer require monitoring at "
            "(minutes from start of administration)",
            "minutes",
            True,
        ),
        (
            "vitals_ok_before",
            "Vital signs in acceptable range prior to administration",
            "yesno",
            True,
        ),
        (
            "vitals_ok_completion",
            "Vital signs in acceptable range prior to treatment session completion",
            "yesno",
            True,
        ),
        (
            "bp_before_systolic",
            "Blood pressure prior to administration, systolic (mmHg)",
            "number",
            True,
        ),
        (
            "bp_before_diastolic",
            "Blood pressure prior to administration, diastolic (mmHg)",
            "number",
            True,
        ),
        (
            "bp_40_systolic",
            "Blood pressure 40 min post-administration, systolic (mmHg)",
            "number",
            True,
        ),
        (
            "bp_40_diastolic",
            "Blood pressure 40 min post-administration, diastolic (mmHg)",
            "number",
            True,
        ),
        (
            "bp_completion_systolic",
            "Blood pressure prior to session completion, systolic (mmHg)",
            "number",
            True,
        ),
        (
            "bp_completion_diastolic",
            "Blood pressure prior to session completion, diastolic (mmHg)",
            "number",
            True,
        ),
        # Monitored events
        ("sedation", "Did the patient experience sedation?", "yesno", True),
        ("dissociation", "Did the patient experience dissociation?", "yesno", True),
        (
            "respiratory_depression",
            "Did the patient experience respiratory depression?",
            "yesno",
            True,
        ),
        ("adverse_events", "Adverse events (none, or describe)", "text", True),
    ],
}

VERSION_LABELS = {
    LEGACY: "first ketaflow field list, before the published form was typed",
    CURRENT: "SPRAVATO REMS Patient Monitoring Form, Outpatient Use (published form)",
}

# Plausible limits for numbers (physiological ranges for BP, one session for minutes). They
# catch typing errors only; a value outside them is refused naming the field and the range.
BOUNDS: dict[str, tuple[int, int]] = {
    "dose_other_mg": (28, 112),
    "total_minutes": (0, 24 * 60),
    "ready_minutes": (0, 24 * 60),
    "bp_before_systolic": (50, 300),
    "bp_before_diastolic": (20, 200),
    "bp_40_systolic": (50, 300),
    "bp_40_diastolic": (20, 200),
    "bp_completion_systolic": (50, 300),
    "bp_completion_diastolic": (20, 200),
}
MIN_MONITORING_MINUTES = 120  # Spravato label and REMS: at least 2 hours
TEXT_MAX = 500

SOURCE = (
    "SPRAVATO REMS Patient Monitoring Form (Outpatient Use) and its instructions: complete "
    "after every treatment session and submit within 7 days; the patient must be monitored for "
    "at least 2 hours (120 minutes from the first device)."
)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def fields(version: str = CURRENT):
    return VERSIONS[version]


def label_of(version: str) -> str:
    return VERSION_LABELS.get(version, version)


def choices(kind: str) -> tuple[str, ...]:
    if kind == "yesno":
        return YES_NO
    if kind.startswith("choice:"):
        return tuple(kind.split(":", 1)[1].split("|"))
    return ()


def _blank(value) -> bool:
    return value is None or str(value).strip() == ""


def clean_value(key: str, label: str, kind: str, value):
    """The stored form of one answer, or ValueError naming the rule. Blank stays ""."""
    if _blank(value):
        return ""
    text = str(value).strip()
    if kind == "yesno" or kind.startswith("choice:"):
        allowed = choices(kind)
        if text.lower() not in allowed:
            raise ValueError(f"{label}: must be one of {', '.join(allowed)} (got {text!r}).")
        return text.lower()
    if kind in ("number", "minutes"):
        if isinstance(value, bool) or not re.fullmatch(r"[+-]?\d+", text):
            raise ValueError(f"{label}: must be a whole number (got {text!r}).")
        number = int(text)
        low, high = BOUNDS.get(key, (0, 100_000))
        if not low <= number <= high:
            raise ValueError(f"{label}: must be between {low} and {high} (got {number}).")
        return number
    if kind == "date":
        try:
            return datetime.date.fromisoformat(text).isoformat()
        except ValueError:
            raise ValueError(f"{label}: must be a date YYYY-MM-DD (got {text!r}).") from None
    if kind == "email":
        if not _EMAIL.match(text) or len(text) > 254:
            raise ValueError(f"{label}: must be an e-mail address (got {text!r}).")
        return text
    if len(text) > TEXT_MAX:
        raise ValueError(f"{label}: at most {TEXT_MAX} characters.")
    return text


def clean(data: dict, version: str = CURRENT) -> tuple[dict, dict[str, list[str]]]:
    """(cleaned values of the known fields present in ``data``, errors by field key)."""
    out, errors = {}, {}
    for key, label, kind, _required in fields(version):
        if key not in data:
            continue
        try:
            out[key] = clean_value(key, label, kind, data[key])
        except ValueError as exc:
            errors[key] = [str(exc)]
    return out, errors


def missing(data: dict, version: str = CURRENT) -> list[str]:
    """What stops signing: required fields without a valid value, the conditional fields,
    and the 120-minute rule."""
    out = []
    for key, label, kind, required in fields(version):
        value = data.get(key)
        if _blank(value):
            if required:
                out.append(label)
            continue
        try:
            clean_value(key, label, kind, value)
        except ValueError as exc:
            out.append(str(exc))
    if data.get("dose") == "other" and _blank(data.get("dose_other_mg")):
        out.append("Other dose (mg)")
    if version != LEGACY and data.get("first_treatment") == "yes" and _blank(data.get("enrolled")):
        out.append("If first treatment: is the patient enrolled in the SPRAVATO REMS?")
    try:
        if not _blank(data.get("total_minutes")) and int(data["total_minutes"]) < 120:
            out.append(f"Total monitoring minutes must be at least {MIN_MONITORING_MINUTES} (REMS)")
    except (TypeError, ValueError):
        if version == LEGACY:
            out.append("Total minutes must be a whole number")
    return out


def upgrade_legacy(data: dict) -> dict:
    """An unsigned form of the first field list carried to the current version: values that
    map one to one are kept if valid; free text that the current form types (BP, the time
    ready to leave) is split only where it parses; everything else is left blank for the
    clinician. Signed forms are never upgraded."""
    out: dict = {}
    name = str(data.get("patient_name") or "").strip().split()
    if name:
        out["patient_first_name"] = name[0]
        out["patient_last_name"] = " ".join(name[1:])
    for old, new in (
        ("patient_dob", "patient_dob"),
        ("benzodiazepine", "benzodiazepine"),
        ("sedative_hypnotic", "sedative_hypnotic"),
        ("psychostimulant", "psychostimulant"),
        ("maoi", "maoi"),
        ("setting", "setting_name"),
        ("date", "treatment_date"),
        ("dose", "dose"),
        ("dose_other_mg", "dose_other_mg"),
        ("lot_number", "lot_number"),
        ("total_minutes", "total_minutes"),
        ("vitals_ok_before", "vitals_ok_before"),
        ("vitals_ok_discharge", "vitals_ok_completion"),
        ("sedation", "sedation"),
        ("dissociation", "dissociation"),
        ("adverse_events", "adverse_events"),
    ):
        out[new] = data.get(old, "")
    clinician = str(data.get("monitoring_clinician") or "").strip().split()
    if clinician:
        out["provider_first_name"] = clinician[0]
        out["provider_last_name"] = " ".join(clinician[1:])
    for old, new in (
        ("bp_before", "bp_before"),
        ("bp_40", "bp_40"),
        ("bp_discharge", "bp_completion"),
    ):
        m = re.fullmatch(r"\s*(\d{2,3})\s*/\s*(\d{2,3})\s*", str(data.get(old) or ""))
        if m:
            out[f"{new}_systolic"], out[f"{new}_diastolic"] = m.group(1), m.group(2)
    kept = {}
    by_key = {k: (label, kind) for k, label, kind, _r in fields(CURRENT)}
    for key, value in out.items():
        label, kind = by_key[key]
        try:
            kept[key] = clean_value(key, label, kind, value)
        except ValueError:
            kept[key] = ""  # not valid under the typed form: the clinician answers again
    return kept
