"""The tabs of the patient chart, what each says while empty, and the hooks other apps fill.

Domain apps add content without touching the chart view:

    from ketaflow.patients import chart

    @chart.section("measures")
    def measures_section(request, patient):   # returns HTML (SafeString) or None
        ...

    @chart.banner
    def risk_banner(request, patient):        # shown under the header on every chart page
        ...

Register them in the app's ``AppConfig.ready``. Providers must issue a constant number of
queries whatever the patient's history.
"""

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Tab:
    slug: str
    label: str
    clinical: bool
    empty_title: str = ""
    empty_text: str = ""
    empty_action: str = ""


TABS = [
    Tab("overview", "Overview", clinical=False),
    Tab(
        "assessment",
        "Assessment",
        clinical=True,
        empty_title="No assessment recorded yet",
        empty_text=(
            "The consultation's clinical assessment appears here: diagnoses, psychiatric history, "
            "antidepressant trials (with the treatment-resistance count), current medications, "
            "contraindications, baseline PHQ-9, GAD-7 and C-SSRS, the prescriber's signed eligibility "
            "decision and the patient's signed informed consent."
        ),
        empty_action="A prescriber creates it with “Start assessment” during the consultation visit.",
    ),
    Tab(
        "plan",
        "Plan",
        clinical=True,
        empty_title="No treatment plan yet",
        empty_text=(
            "The treatment plan appears here: protocol and route, the weight-based dose with its "
            "arithmetic, induction and maintenance phases, and the booked visits."
        ),
        empty_action=(
            "The prescriber creates it with “New plan” once eligibility is approved and consent for "
            "the route is signed."
        ),
    ),
    Tab(
        "sessions",
        "Sessions",
        clinical=True,
        empty_title="No treatment sessions yet",
        empty_text=(
            "Each treatment day appears here: pre-checks, administration record, vital signs with "
            "alerts, dissociation and sedation scores, side effects, discharge and the signed note "
            "(with the REMS form for esketamine)."
        ),
        empty_action="A nurse opens a session with “Check in” from the day's appointment.",
    ),
    Tab(
        "measures",
        "Measures",
        clinical=True,
        empty_title="No questionnaires scored yet",
        empty_text=(
            "Scored questionnaires (PHQ-9, GAD-7, C-SSRS, QIDS-SR16 and others) appear here with "
            "trend charts, response and remission badges."
        ),
        empty_action=(
            "A clinician records one with “Record a questionnaire”, or sends the patient a secure "
            "link to fill it in from a phone."
        ),
    ),
    Tab(
        "notes",
        "Notes",
        clinical=True,
        empty_title="No notes yet",
        empty_text=(
            "Signed clinical notes appear here: session notes, KAP preparation, dosing-session and "
            "integration notes, and progress notes, each with its addenda."
        ),
        empty_action="A clinician writes one with “New note”; once signed it can only gain addenda.",
    ),
    Tab(
        "documents",
        "Documents",
        clinical=True,
        empty_title="No documents yet",
        empty_text=(
            "Signed consent forms, REMS monitoring forms, discharge instructions and progress letters "
            "appear here as PDFs."
        ),
        empty_action="They are produced by the assessment, session and letter workflows when signed.",
    ),
    Tab("activity", "Activity", clinical=True),
]
TAB_BY_SLUG = {tab.slug: tab for tab in TABS}


Provider = Callable[..., str | None]
_sections: dict[str, list[Provider]] = {}
_banners: list[Provider] = []


def section(tab_slug: str):
    """Register a provider of HTML for one chart tab (in registration order)."""
    if tab_slug not in TAB_BY_SLUG:
        raise ValueError(f"Unknown chart tab {tab_slug!r}.")

    def register(fn: Provider) -> Provider:
        if fn not in _sections.setdefault(tab_slug, []):
            _sections[tab_slug].append(fn)
        return fn

    return register


def banner(fn: Provider) -> Provider:
    """Register a provider of a banner shown under the patient header on every chart page."""
    if fn not in _banners:
        _banners.append(fn)
    return fn


def sections_for(request, patient, tab_slug: str) -> list[str]:
    return [html for fn in _sections.get(tab_slug, []) if (html := fn(request, patient))]


def banners_for(request, patient) -> list[str]:
    return [html for fn in _banners if (html := fn(request, patient))]
