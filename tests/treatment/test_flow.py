import pytest

from ketaflow.treatment.models import TreatmentSession

S = TreatmentSession.State


@pytest.mark.parametrize("route", ["iv", "esk"])
@pytest.mark.parametrize(
    "to",
    [
        "checked_in",
        "pre_assessment",
        "dosing",
        "monitoring",
        "recovery",
        "ready",
        "discharged",
        "signed",
        "cancelled",
    ],
)
def test_builder_reaches_every_state(build, route, to):
    s = build(to, route=route)
    s.refresh_from_db()
    assert s.state == to
