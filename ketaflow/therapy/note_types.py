"""The structure of each therapy note type: its sections, as data.

Labels describe what the clinician records; they are headings, not clinical rules. The
dosing-session note also carries facts copied from the treatment session record (route,
dose, times, safety events) when it is signed.
"""

from dataclasses import dataclass

PREPARATION = "preparation"
DOSING = "dosing"
INTEGRATION = "integration"
PROGRESS = "progress"
PSYCHOTHERAPY = "psychotherapy"

SOAP = "soap"
DAP = "dap"
FORMAT_CHOICES = [
    (SOAP, "SOAP (subjective, objective, assessment, plan)"),
    (DAP, "DAP (data, assessment, plan)"),
]


@dataclass(frozen=True)
class Section:
    key: str
    label: str
    help: str = ""
    required: bool = False


KIND_CHOICES = [
    (PREPARATION, "KAP intake / preparation note"),
    (DOSING, "KAP dosing-session note"),
    (INTEGRATION, "KAP integration note"),
    (PROGRESS, "Psychotherapy progress note"),
    (PSYCHOTHERAPY, "Psychotherapy process note (private)"),
]
KIND_LABELS = dict(KIND_CHOICES)
RECORD_KINDS = (PREPARATION, DOSING, INTEGRATION, PROGRESS)

SECTIONS: dict[str, tuple[Section, ...]] = {
    PREPARATION: (
        Section("history", "History relevant to the work", required=True),
        Section("intentions", "Intentions", "What the patient hopes to explore or change."),
        Section("set_setting", "Set and setting", "Mindset, environment, music, support."),
        Section("expectations", "Expectations", "What the patient expects; what was explained."),
        Section(
            "frame_consent",
            "Consent to the therapy frame",
            "Touch, boundaries, roles during dosing; what the patient agreed to.",
            required=True,
        ),
    ),
    DOSING: (
        Section(
            "presence",
            "Therapist presence",
            "Who was present and for how long.",
            required=True,
        ),
        Section("course", "Course of the experience", required=True),
        Section("interventions", "Interventions"),
        Section(
            "safety",
            "Safety events",
            "Events noticed by the therapist (the session record's events are added on signing).",
        ),
    ),
    INTEGRATION: (
        Section("themes", "Themes", required=True),
        Section("insights", "Insights"),
        Section("difficulties", "Difficulties"),
        Section("plan", "Plan", required=True),
    ),
    PSYCHOTHERAPY: (
        Section(
            "process",
            "Process notes",
            "The therapist's private notes on the session. Kept apart from the record.",
            required=True,
        ),
    ),
}
PROGRESS_SECTIONS: dict[str, tuple[Section, ...]] = {
    SOAP: (
        Section("subjective", "Subjective", required=True),
        Section("objective", "Objective"),
        Section("assessment", "Assessment", required=True),
        Section("plan", "Plan", required=True),
    ),
    DAP: (
        Section("data", "Data", required=True),
        Section("assessment", "Assessment", required=True),
        Section("plan", "Plan", required=True),
    ),
}


def sections(kind: str, fmt: str = SOAP) -> tuple[Section, ...]:
    if kind == PROGRESS:
        return PROGRESS_SECTIONS[fmt if fmt in PROGRESS_SECTIONS else SOAP]
    return SECTIONS[kind]


# Names the note form uses for its own controls: no section key may take one of them.
CONTROL_NAMES = frozenset(
    {"kind", "session", "appointment", "treatment_course", "go", "csrfmiddlewaretoken"}
)
