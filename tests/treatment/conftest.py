import datetime
import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "treatment_access_matrix", Path(__file__).with_name("access_matrix.py")
)
matrix = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(matrix)


@pytest.fixture(autouse=True)
def consent_on_file(monkeypatch):
    """Intake's consent check is tested separately; these tests assume a signed consent."""
    from ketaflow.treatment import services

    monkeypatch.setattr(services, "consent_valid", lambda session: True)


@pytest.fixture
def appt(clinic, staff, make_patient):
    def make(route="iv", patient=None, minutes_ago=0):
        return matrix.make_appointment(
            clinic, staff, patient or make_patient(clinic), route=route, minutes_ago=minutes_ago
        )

    return make


@pytest.fixture
def build(appt, staff):
    from ketaflow.treatment import builder

    def make(to, route="iv", **kw):
        return builder.build(
            appt(route), to=to, nurse=staff["nurse"], prescriber=staff["prescriber"], **kw
        )

    return make


def ago(minutes):
    return datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=minutes)


@pytest.fixture
def rems_extra():
    """What the published REMS form asks that the session record cannot know."""
    return {
        "enrolled": "yes",
        "provider_phone": "555-0100",
        "setting_address1": "1 Synthetic Way",
        "setting_city": "Springfield",
        "setting_state": "IL",
        "setting_zip": "62701",
        "respiratory_depression": "no",
    }
