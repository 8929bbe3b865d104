"""The activation gate: a plan becomes active only with an approved eligibility decision for its
route and the patient's signed consent for that route (issue 6, item 2).

The decisions and consents belong to the intake app. This module asks it through its selectors
``approved_routes(patient) -> set[str]`` and ``signed_consent(patient, route) -> obj | None``.
If the intake app is not installed the gate REFUSES activation: without the records there is
nothing to show that treatment was approved and consented to.
"""

from dataclasses import dataclass

from django.apps import apps

INTAKE_APP = "ketaflow.intake"
NOT_INSTALLED = (
    "The intake app (eligibility decisions and consent) is not installed, so approval and "
    "consent cannot be checked: the plan cannot be activated."
)


def intake_installed() -> bool:
    return apps.is_installed(INTAKE_APP)


def approved_routes(patient) -> set[str]:
    from ketaflow.intake import selectors

    return set(selectors.approved_routes(patient))


def signed_consent(patient, route: str):
    from ketaflow.intake import selectors

    return selectors.signed_consent(patient, route)


@dataclass(frozen=True)
class GateResult:
    ok: bool
    problems: tuple[str, ...]
    consent: object = None


def check(patient, route: str) -> GateResult:
    """Whether a plan for ``route`` may become active for ``patient``; every problem named."""
    if not intake_installed():
        return GateResult(False, (NOT_INSTALLED,))
    problems = []
    if route not in approved_routes(patient):
        problems.append(
            f"No approved eligibility decision for {route}: a prescriber must record one first."
        )
    consent = signed_consent(patient, route)
    if consent is None:
        problems.append(f"No signed consent for {route}: collect the patient's consent first.")
    return GateResult(not problems, tuple(problems), consent)
