"""Per-clinic eligibility settings (owner): page, audit, and their effect on the rules."""

import json
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from ketaflow.audit.models import AuditEvent
from ketaflow.clinical import eligibility as rules
from ketaflow.intake import selectors, services
from ketaflow.intake.forms import EligibilitySettingsForm

from .conftest import DX, TRIALS

FIVE_WEEKS = [{**t, "weeks": 5.0} for t in TRIALS]
DEFAULT_DATA = {
    "trd_min_weeks": "6",
    "bp_review_systolic": "140",
    "bp_review_diastolic": "90",
    "adult_age": "18",
    "esketamine_older_adult_age": "65",
}


def _case_trials():
    return [
        {k: t[k] for k in ("drug", "adequate_dose", "weeks", "current_episode", "outcome")}
        for t in FIVE_WEEKS
    ]


@pytest.fixture
def five_weeks(patient, staff):
    """Two five-week trials without response: TRD only if the clinic counts 5 weeks."""
    return services.save_assessment(
        patient=patient,
        actor=staff["nurse"],
        fields={"systolic": 120, "diastolic": 78},
        diagnoses=DX,
        trials=FIVE_WEEKS,
    )


def test_defaults_are_ketaflows_with_their_sources(clinic):
    assert selectors.eligibility_settings(clinic) == rules.DEFAULTS
    table = {r["name"]: r for r in selectors.eligibility_settings_table(clinic)}
    assert set(table) == set(rules.SETTING_SOURCES)
    assert table["trd_min_weeks"]["default"] == 6
    assert table["trd_min_weeks"]["source"] == rules.SETTING_SOURCES["trd_min_weeks"]
    assert not any(r["changed"] for r in table.values())


def test_changing_trd_minimum_weeks_changes_the_decision(clinic, patient, staff, five_weeks):
    before = selectors.rule_results(five_weeks, patient)["iv-ketamine"]
    assert before["adequate_failed_trials"] == 0 and before["decision"] != "eligible"
    count = AuditEvent.objects.count()
    services.save_eligibility_settings(
        clinic=clinic, actor=staff["owner"], data={**DEFAULT_DATA, "trd_min_weeks": "4"}
    )
    event = AuditEvent.objects.latest("id")
    assert AuditEvent.objects.count() == count + 1 and event.action == "update"
    assert event.detail["fields"] == ["trd_min_weeks"]
    assert event.detail["from"] == {"trd_min_weeks": "6"}
    assert event.detail["to"] == {"trd_min_weeks": "4"}
    after = selectors.rule_results(five_weeks, patient)["iv-ketamine"]
    assert after["adequate_failed_trials"] == 2 and after["decision"] == "eligible"
    assert selectors.eligibility_settings(clinic).trd_min_weeks == 4


def test_api_check_uses_the_clinics_settings(clinic, staff, client_for):
    client = client_for(staff["nurse"])
    case = {
        "route": "iv-ketamine",
        "age": 40,
        "antidepressant_trials": _case_trials(),
        "conditions": [],
        "medication_classes": [],
        "blood_pressure": {"systolic": 120, "diastolic": 78},
    }

    def check():
        response = client.post(
            "/api/v1/eligibility/check", json.dumps(case), content_type="application/json"
        )
        assert response.status_code == 200
        return response.json()

    assert check()["adequate_failed_trials"] == 0
    services.save_eligibility_settings(
        clinic=clinic, actor=staff["owner"], data={**DEFAULT_DATA, "trd_min_weeks": "4.5"}
    )
    result = check()
    assert result["adequate_failed_trials"] == 2 and result["decision"] == "eligible"
    settings_ = rules.EligibilitySettings(trd_min_weeks=4.5)
    assert result == rules.evaluate(rules.parse_case(case), settings_).as_dict()


def test_bp_threshold_setting_applies(clinic, patient, staff):
    a = services.save_assessment(
        patient=patient,
        actor=staff["nurse"],
        fields={"systolic": 135, "diastolic": 80},
        diagnoses=DX,
        trials=TRIALS,
    )
    codes = {r["code"] for r in selectors.rule_results(a, patient)["iv-ketamine"]["reasons"]}
    assert not any("bp" in c or "blood" in c for c in codes)
    services.save_eligibility_settings(
        clinic=clinic, actor=staff["owner"], data={**DEFAULT_DATA, "bp_review_systolic": "130"}
    )
    result = selectors.rule_results(a, patient)["iv-ketamine"]
    assert result["decision"] == "review"
    assert any("130" in r["message"] for r in result["reasons"])


@pytest.mark.parametrize("role", ["prescriber", "nurse", "therapist", "front_desk"])
def test_only_the_owner_changes_settings(clinic, staff, role):
    with pytest.raises(PermissionDenied):
        services.save_eligibility_settings(clinic=clinic, actor=staff[role], data=DEFAULT_DATA)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("trd_min_weeks", "0"),
        ("trd_min_weeks", "27"),
        ("bp_review_systolic", "60"),
        ("adult_age", "30"),
        ("esketamine_older_adult_age", "17"),
    ],
)
def test_invalid_values_are_refused_naming_the_field(clinic, staff, field, value):
    with pytest.raises(ValidationError) as err:
        services.save_eligibility_settings(
            clinic=clinic, actor=staff["owner"], data={**DEFAULT_DATA, field: value}
        )
    assert field in err.value.message_dict
    assert selectors.eligibility_settings(clinic) == rules.DEFAULTS


@settings(max_examples=40, deadline=None)
@given(weeks=st.decimals(min_value=Decimal("0.1"), max_value=40, places=1))
def test_form_accepts_exactly_the_documented_range(weeks):
    form = EligibilitySettingsForm({**DEFAULT_DATA, "trd_min_weeks": str(weeks)})
    assert form.is_valid() == (1 <= weeks <= 26)


def test_settings_page_shows_defaults_sources_and_errors(clinic, staff, client_for):
    client = client_for(staff["owner"])
    page = client.get("/intake/settings/eligibility/")
    text = page.content.decode()
    assert page.status_code == 200
    assert rules.SRC_TRD_MIN_WEEKS.split("'")[0] in text and "Source of the default" in text
    bad = client.post("/intake/settings/eligibility/", {**DEFAULT_DATA, "adult_age": "40"})
    assert bad.status_code == 422 and "Between 16 and 21." in bad.content.decode()
    assert 'value="40"' in bad.content.decode()
    ok = client.post("/intake/settings/eligibility/", {**DEFAULT_DATA, "trd_min_weeks": "5"})
    assert ok.status_code == 302
    assert "changed" in client.get("/intake/settings/eligibility/").content.decode()
    assert client_for(staff["nurse"]).get("/intake/settings/eligibility/").status_code == 403


def test_api_reads_the_latest_assessment_and_audits_the_read(patient, staff, client_for):
    client = client_for(staff["nurse"])
    url = f"/api/v1/intake/patients/{patient.pk}/assessment"
    assert client.get(url).status_code == 404
    a = services.save_assessment(
        patient=patient,
        actor=staff["nurse"],
        fields={"systolic": 121, "diastolic": 79},
        diagnoses=DX,
        trials=TRIALS,
    )
    reads = AuditEvent.objects.filter(action="read", patient=patient).count()
    body = client.get(url).json()
    assert body["id"] == a.pk and body["systolic"] == 121 and body["status"] == "draft"
    assert AuditEvent.objects.filter(action="read", patient=patient).count() == reads + 1
    assert client_for(staff["front_desk"]).get(url).status_code == 403
