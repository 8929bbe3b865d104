import datetime

import pytest


@pytest.fixture
def plan_data(staff):
    def make(**extra):
        data = {
            "protocol": "iv-ketamine-clinic-6",
            "prescriber": staff["prescriber"].pk,
            "weight_kg": "80",
            "start_date": datetime.date(2030, 1, 7).isoformat(),
            "goals": "PHQ-9 response (synthetic)",
            "step": "1",
        }
        data.update(extra)
        return data

    return make


@pytest.fixture
def gate_open(monkeypatch):
    from ketaflow.plans import gates

    monkeypatch.setattr(gates, "intake_installed", lambda: True)
    monkeypatch.setattr(
        gates, "approved_routes", lambda patient: {"iv-ketamine", "esketamine-nasal"}
    )
    monkeypatch.setattr(gates, "signed_consent", lambda patient, route: object())


@pytest.fixture
def settings_data():
    """The whole dosing settings form at its defaults, with changes (the page posts every field)."""
    from ketaflow.clinical import dosing
    from ketaflow.plans.models import DosingSettingsRow

    def make(**changes):
        data = {name: str(getattr(dosing.DEFAULTS, name)) for name in DosingSettingsRow.FIELDS}
        data.update({k: str(v) for k, v in changes.items()})
        return data

    return make
