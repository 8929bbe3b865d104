"""The permission matrix: the one place that says which role may do what.

Views, API routes and services all ask ``can`` / ``require_permission``. An action that
is not listed here is denied to everyone (deny by default). docs/security.md prints this
table; tests/accounts/test_permissions.py checks every cell.
"""

from django.core.exceptions import PermissionDenied

from ketaflow.accounts.roles import FRONT_DESK, NURSE, OWNER, PRESCRIBER, THERAPIST

ALL_STAFF = frozenset({OWNER, PRESCRIBER, NURSE, THERAPIST, FRONT_DESK})
CLINICIANS = frozenset({OWNER, PRESCRIBER, NURSE, THERAPIST})

MATRIX: dict[str, frozenset[str]] = {
    # Patient registry: demographics are needed by everyone who works with patients.
    "patients.view": ALL_STAFF,
    "patients.create": frozenset({OWNER, PRESCRIBER, NURSE, FRONT_DESK}),
    "patients.edit_demographics": frozenset({OWNER, PRESCRIBER, NURSE, FRONT_DESK}),
    # The clinical chart (assessment, plan, sessions, measures, notes, documents, activity).
    "chart.view": CLINICIANS,
    "chart.emergency_access": frozenset({PRESCRIBER, NURSE, THERAPIST}),
    "vitals.chart": frozenset({PRESCRIBER, NURSE}),
    "notes.sign": frozenset({PRESCRIBER, NURSE, THERAPIST}),
    "eligibility.decide": frozenset({PRESCRIBER}),
    # Measurement-based care.
    "measures.record": frozenset({PRESCRIBER, NURSE, THERAPIST}),
    "measures.send": ALL_STAFF - {OWNER},
    "alerts.respond": frozenset({PRESCRIBER, NURSE, THERAPIST}),
    # Intake: consultation requests, assessment, consent.
    "intake.view": ALL_STAFF,
    "intake.manage": frozenset({OWNER, PRESCRIBER, NURSE, FRONT_DESK}),
    "assessment.edit": frozenset({PRESCRIBER, NURSE}),
    "assessment.sign": frozenset({PRESCRIBER}),
    "consent.collect": frozenset({PRESCRIBER, NURSE, FRONT_DESK}),
    "consent.manage": frozenset({OWNER}),
    # Plans and scheduling.
    "plans.edit": frozenset({PRESCRIBER}),
    "protocols.manage": frozenset({OWNER}),
    "schedule.view": ALL_STAFF,
    "schedule.book": ALL_STAFF,
    # Treatment day.
    "treatment.prescriber_decision": frozenset({PRESCRIBER}),
    "notes.cosign": frozenset({PRESCRIBER}),
    "rems.sign": frozenset({PRESCRIBER, NURSE}),
    # Psychotherapy (KAP) and integrated care. Psychotherapy process notes are further limited
    # to their author and the clinicians the author shares them with (ketaflow/therapy).
    "therapy.write": frozenset({PRESCRIBER, THERAPIST}),
    "care_team.manage": frozenset({PRESCRIBER, NURSE, THERAPIST, FRONT_DESK}),
    "letters.sign": frozenset({PRESCRIBER, THERAPIST}),
    # Administration.
    "users.manage": frozenset({OWNER}),
    "clinic.settings": frozenset({OWNER}),
    "audit.view": frozenset({OWNER}),
    "export": frozenset({OWNER, PRESCRIBER}),
    # Every member may hold personal API tokens; a token never exceeds its owner's roles.
    "api.tokens": ALL_STAFF,
}

ACTION_LABELS = {
    "patients.view": "Find patients and see demographics",
    "patients.create": "Register patients",
    "patients.edit_demographics": "Edit demographics",
    "chart.view": "View the clinical chart",
    "chart.emergency_access": "Emergency access to a chart outside one's locations",
    "vitals.chart": "Chart vital signs",
    "notes.sign": "Sign clinical notes",
    "eligibility.decide": "Decide eligibility",
    "measures.record": "Record questionnaires for a patient",
    "measures.send": "Send questionnaire links to patients",
    "alerts.respond": "Acknowledge and clear safety alerts",
    "intake.view": "See consultation requests",
    "intake.manage": "Work the intake queue",
    "assessment.edit": "Write the clinical assessment",
    "assessment.sign": "Sign the clinical assessment",
    "consent.collect": "Collect the patient's informed consent",
    "consent.manage": "Edit the clinic's consent documents",
    "plans.edit": "Create and sign treatment plans",
    "protocols.manage": "Edit the clinic's protocol library",
    "schedule.view": "See the calendar",
    "schedule.book": "Book, move and cancel appointments",
    "treatment.prescriber_decision": "Proceed despite a pre-dose block, override discharge",
    "notes.cosign": "Co-sign session notes",
    "rems.sign": "Sign esketamine REMS monitoring forms",
    "therapy.write": "Write therapy notes, goals and practices",
    "care_team.manage": "Record the patient's other clinicians and sharing consent",
    "letters.sign": "Write, sign and send progress letters",
    "users.manage": "Manage users and roles",
    "clinic.settings": "Change clinic settings",
    "audit.view": "View the audit report",
    "export": "Export records",
    "api.tokens": "Hold personal API tokens",
}


def roles_can(roles, action: str) -> bool:
    allowed = MATRIX.get(action)
    if allowed is None:
        return False
    return any(role in allowed for role in roles or ())


def membership_for(user, clinic):
    """The active membership of ``user`` in ``clinic`` (cached on the user object), or None."""
    if user is None or not getattr(user, "is_authenticated", False) or clinic is None:
        return None
    cache = user.__dict__.setdefault("_kf_memberships", {})
    if clinic.pk not in cache:
        cache[clinic.pk] = (
            user.memberships.filter(clinic=clinic, is_active=True)
            .prefetch_related("locations")
            .first()
        )
    return cache[clinic.pk]


def can(user, action: str, clinic) -> bool:
    membership = membership_for(user, clinic)
    return membership is not None and roles_can(membership.roles, action)


def require_permission(user, action: str, clinic) -> None:
    """Raise PermissionDenied unless ``user`` may do ``action`` in ``clinic``."""
    if action not in MATRIX:
        raise PermissionDenied(f"Unknown action {action!r}: denied by default.")
    if not can(user, action, clinic):
        raise PermissionDenied("Your role does not allow this action.")
