"""Default appointment types. Durations are clinic settings; each default names its basis."""

from ketaflow.clinical import dosing

ESKETAMINE_PREP = (
    "Esketamine nasal spray: no food for 2 hours and no liquids for 30 minutes before your "
    "dose. You will be monitored for at least 2 hours afterwards. Arrange a ride home: do not "
    "drive until the next day after a restful sleep."
)
ESKETAMINE_PREP_SOURCE = "Spravato label (clinical-reference.md sections 1 and 3)"

TYPES = [
    # code, name, minutes, minimum, resource, route, preparation, source
    (
        "consultation",
        "Consultation",
        60,
        15,
        "room",
        "",
        "",
        "Clinic setting, default 60 min (no clinical source).",
    ),
    (
        "iv-infusion",
        "IV infusion with recovery",
        130,
        60,
        "chair",
        dosing.IV,
        "",
        "Default 130 min: 40 min infusion (section 1) + about 90 min until blood pressure is back "
        "to baseline (section 3). Clinic setting.",
    ),
    (
        "esketamine-session",
        "Esketamine session (at least 2 h monitoring)",
        135,
        130,
        "chair",
        dosing.ESKETAMINE,
        ESKETAMINE_PREP,
        "At least 120 min monitoring after dosing (label, section 3) + up to 10 min for 3 devices "
        "5 min apart (section 1); default 135 min, never below 130 min.",
    ),
    (
        "im-session",
        "IM ketamine session",
        90,
        30,
        "chair",
        dosing.IM,
        "",
        "Clinic setting, default 90 min (the reference gives no IM monitoring time).",
    ),
    (
        "sc-session",
        "Subcutaneous ketamine session",
        90,
        30,
        "chair",
        dosing.SC,
        "",
        "Clinic setting, default 90 min (the reference gives no monitoring time).",
    ),
    (
        "kap-dosing",
        "KAP dosing session",
        180,
        60,
        "room",
        dosing.ORAL,
        "",
        "Clinic setting, default 180 min (KAP practice; the reference gives no duration).",
    ),
    (
        "integration",
        "Integration therapy",
        60,
        15,
        "room",
        "",
        "",
        "Clinic setting, default 60 min.",
    ),
    (
        "kap-preparation",
        "KAP preparation session",
        60,
        15,
        "room",
        "",
        "",
        "Clinic setting, default 60 min (KAP practice, section 2; the reference gives no "
        "duration).",
    ),
    ("follow-up", "Follow-up", 30, 10, "room", "", "", "Clinic setting, default 30 min."),
    ("telehealth", "Telehealth", 30, 10, "none", "", "", "Clinic setting, default 30 min."),
]

ROUTE_TYPE = {row[5]: row[0] for row in TYPES if row[5]}

# Default minutes and the floor of each type, by code: the floor is never lowered by a clinic
# (esketamine: 120 min monitoring + up to 10 min dosing; see the type's source).
DEFAULT_MINUTES = {row[0]: row[2] for row in TYPES}
FLOOR_MINUTES = {row[0]: row[3] for row in TYPES}
MAX_MINUTES = 600

# Companion-visit kinds of ``ketaflow.clinical.protocols`` -> appointment type code.
COMPANION_TYPE = {
    "consultation": "consultation",
    "kap_preparation": "kap-preparation",
    "integration": "integration",
    "follow_up": "follow-up",
}


def ensure_types(clinic):
    """Create the default types the clinic lacks (idempotent); returns them by code."""
    from ketaflow.scheduling.models import AppointmentType

    existing = {t.code: t for t in AppointmentType.objects.filter(clinic=clinic)}
    for order, (code, name, minutes, minimum, resource, route, prep, source) in enumerate(TYPES):
        if code not in existing:
            existing[code] = AppointmentType.objects.create(
                clinic=clinic,
                code=code,
                name=name,
                minutes=minutes,
                minimum_minutes=minimum,
                resource=resource,
                route=route,
                preparation=prep,
                source=source,
                order=order,
            )
    return existing
