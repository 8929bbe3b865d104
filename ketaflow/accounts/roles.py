"""Staff roles. Plain data: imported by models, the permission matrix and templates."""

OWNER = "owner"
PRESCRIBER = "prescriber"
NURSE = "nurse"
THERAPIST = "therapist"
FRONT_DESK = "front_desk"

ROLE_CHOICES = [
    (OWNER, "Owner / admin"),
    (PRESCRIBER, "Prescriber"),
    (NURSE, "Nurse"),
    (THERAPIST, "Therapist"),
    (FRONT_DESK, "Front desk"),
]
ROLES = frozenset(code for code, _ in ROLE_CHOICES)
CLINICAL_ROLES = frozenset({PRESCRIBER, NURSE, THERAPIST})
