"""The esketamine REMS Patient Monitoring Form as versioned data (reference section 3).

Each version lists its fields: (key, label, kind, required). Kinds: text, yesno, number,
datetime, choice:<a|b|c>. The form may change: add a version, never edit a published one.
"""

CURRENT = "2025-ref3"

VERSIONS: dict[str, list[tuple[str, str, str, bool]]] = {
    "2025-ref3": [
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
    ]
}
SOURCE = (
    "clinical-reference.md section 3: Spravato REMS Patient Monitoring Form, per session, due "
    "within 7 days; total monitoring time must be at least 120 minutes."
)


def fields(version: str = CURRENT):
    return VERSIONS[version]


def missing(data: dict, version: str = CURRENT) -> list[str]:
    """Labels of required fields without a value; plus the 120-minute rule."""
    out = []
    for key, label, _kind, required in fields(version):
        value = data.get(key)
        if required and (value is None or str(value).strip() == ""):
            out.append(label)
    if data.get("dose") == "other" and not str(data.get("dose_other_mg") or "").strip():
        out.append("Other dose (mg)")
    try:
        if data.get("total_minutes") not in (None, "") and int(data["total_minutes"]) < 120:
            out.append("Total monitoring minutes must be at least 120 (REMS)")
    except (TypeError, ValueError):
        out.append("Total minutes must be a whole number")
    return out
