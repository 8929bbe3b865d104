"""Issue 17 item 3: what was given is what is recorded (the infusion as it ran, waste before
signing, minimum observation before discharge) and item 2 at the session."""

import datetime
from datetime import UTC
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from ketaflow.audit.models import AuditEvent
from ketaflow.treatment import selectors, services
from ketaflow.treatment.models import TreatmentSession

S = TreatmentSession.State
API = "/api/v1/treatment"
DRUG = {
    "product": "Ketamine hydrochloride injection",
    "concentration": "10 mg/mL",
    "lot_number": "SYN-LOT-1",
    "expiry": "2099-01-01",
}


def ago(minutes):
    return datetime.datetime.now(UTC) - datetime.timedelta(minutes=minutes)


def pre(s, actor, weight="81.6"):
    return services.save_pre_assessment(
        session=s,
        actor=actor,
        data={
            "food_hours": "3",
            "liquid_minutes": "40",
            "ride_home": "on",
            "pregnancy": "not pregnant",
            "weight_kg": weight,
        },
    )


def baseline(s, actor, at):
    services.record_vitals(
        session=s,
        actor=actor,
        values={"systolic": 124, "diastolic": 78, "heart_rate": 72, "spo2": 98, "resp_rate": 14},
        at=at,
    )
    services.record_measure(
        session=s, actor=actor, instrument="moaas", answers={"1": 5}, timing="pre"
    )


def started_iv(appt, staff, start):
    nurse = staff["nurse"]
    with services.charted_as_of(start - datetime.timedelta(minutes=15)):  # checked in first
        s = services.open_session(appointment=appt(), actor=nurse)
    s = pre(s, nurse)
    assert s.calculation["dose_mg"] == 40.8 and s.calculation["rate_mg_per_min"] == 1.02
    baseline(s, nurse, start - datetime.timedelta(minutes=5))
    services.start_dosing(session=s, actor=nurse, data={**DRUG, "at": start})
    s.refresh_from_db()
    return s


def test_infusion_stopped_at_4_of_40_minutes_records_4_08_mg_and_asks_for_waste(
    appt, staff, client_for
):
    nurse = staff["nurse"]
    start = ago(50)
    s = started_iv(appt, staff, start)
    services.record_dose_event(
        session=s,
        actor=nurse,
        kind="stop",
        at=start + datetime.timedelta(minutes=4),
        reason="Patient asked to stop (synthetic)",
    )
    s.refresh_from_db()
    a = s.administration
    assert (a.dose_mg, a.given_mg, a.unused_mg) == (
        Decimal("40.8"),
        Decimal("4.08"),
        Decimal("36.72"),
    )
    assert AuditEvent.objects.latest("id").detail["given_mg"] == "4.080"
    # the note says what was given, not what was drawn
    text = selectors.note_text(s)
    assert "Dose given: 4.08 mg of 40.8 mg drawn; 36.72 mg not given" in text
    # the API shows the given amount and the waste due
    detail = client_for(nurse).get(f"{API}/sessions/{s.pk}").json()
    assert detail["dose"]["given_mg"] == "4.080" or float(detail["dose"]["given_mg"]) == 4.08
    assert float(detail["dose"]["waste_due_mg"]) == 36.72
    # the page asks for the waste
    page = client_for(nurse).get(f"/treatment/sessions/{s.pk}/")
    body = page.content.decode()
    assert "Dose given: 4.08 mg of 40.8 mg drawn" in body and 'id="waste-due"' in body
    # discharge the patient (observation long past), then the note waits for the waste
    services.record_measure(
        session=s, actor=nurse, instrument="moaas", answers={"1": 5}, timing="post"
    )
    services.record_vitals(
        session=s,
        actor=nurse,
        values={"systolic": 126, "diastolic": 79, "heart_rate": 74, "spo2": 98, "resp_rate": 14},
        at=ago(1),
    )
    assert (
        services.assess_recovery(
            session=s, actor=nurse, walks_steadily=True, responsible_adult=True
        )
        == []
    )
    services.discharge(session=s, actor=nurse)
    with pytest.raises(ValidationError) as err:
        services.sign_note(session=s, actor=nurse, free_text="Stopped at 4 min.")
    assert "record the 36.72 mg not given as waste" in err.value.message_dict["waste"][0]
    services.record_waste(
        session=s,
        actor=nurse,
        amount_mg="30",
        reason="Infusion stopped at 4 min (synthetic)",
        witness=staff["prescriber"],
    )
    with pytest.raises(ValidationError, match=r"6\.72 mg not given"):
        services.sign_note(session=s, actor=nurse, free_text="Stopped at 4 min.")
    services.record_waste(
        session=s,
        actor=nurse,
        amount_mg="6.72",
        reason="Rest of the bag (synthetic)",
        witness=staff["prescriber"],
    )
    note = services.sign_note(session=s, actor=nurse, free_text="Stopped at 4 min.")
    assert "Dose given: 4.08 mg" in note.generated
    # the letter (therapy facts) shows the given amount
    from ketaflow.therapy import letters

    facts = letters.facts(s.patient)
    assert [t["dose_mg"] for t in facts["treatments"]] == ["4.08"]


def test_rate_change_and_pause_are_counted(appt, staff):
    nurse = staff["nurse"]
    start = ago(60)
    s = started_iv(appt, staff, start)
    at = lambda m: start + datetime.timedelta(minutes=m)  # noqa: E731
    services.record_dose_event(
        session=s,
        actor=nurse,
        kind="rate",
        at=at(10),
        rate_mg_per_min="0.5",
        reason="Nausea, slower",
    )
    services.record_dose_event(session=s, actor=nurse, kind="pause", at=at(20), reason="Vomiting")
    services.record_dose_event(
        session=s, actor=nurse, kind="resume", at=at(30), rate_mg_per_min="1"
    )
    services.record_dose_event(session=s, actor=nurse, kind="stop", at=at(40))
    s.refresh_from_db()
    # 10 min × 1.02 + 10 min × 0.5 + 10 min × 1 = 25.2 mg of 40.8 mg
    assert s.administration.given_mg == Decimal("25.2")
    assert services.waste_due(s)["outstanding_mg"] == Decimal("15.6")


def test_full_infusion_needs_no_waste(appt, staff):
    nurse = staff["nurse"]
    start = ago(80)
    s = started_iv(appt, staff, start)
    services.record_dose_event(
        session=s, actor=nurse, kind="stop", at=start + datetime.timedelta(minutes=40)
    )
    s.refresh_from_db()
    assert s.administration.given_mg == Decimal("40.8") and services.waste_due(s) is None


def test_stopping_the_session_during_the_infusion_counts_up_to_the_stop(appt, staff):
    nurse = staff["nurse"]
    s = started_iv(appt, staff, ago(10))
    services.stop_early(session=s, actor=nurse, reason="Patient unwell (synthetic)")
    s.refresh_from_db()
    given = s.administration.given_mg
    assert Decimal("9.9") <= given <= Decimal("10.5")  # about 10 min × 1.02 mg/min
    with pytest.raises(ValidationError, match="as waste"):
        services.sign_note(session=s, actor=nurse)


def test_esketamine_stopped_after_one_device_records_28_mg(build, staff):
    s = build("dosing", route="esk", dose_start=ago(3))
    assert s.calculation["devices"] == 2
    services.stop_early(session=s, actor=staff["nurse"], reason="Patient declined (synthetic)")
    s.refresh_from_db()
    assert (s.administration.given_mg, s.administration.unused_mg) == (Decimal(28), Decimal(28))


def test_iv_cannot_be_discharged_30_seconds_after_the_end(appt, staff):
    nurse = staff["nurse"]
    start = ago(41)
    s = started_iv(appt, staff, start)
    services.record_dose_event(session=s, actor=nurse, kind="stop", at=ago(0.5))
    services.record_measure(
        session=s, actor=nurse, instrument="moaas", answers={"1": 5}, timing="post"
    )
    services.record_vitals(
        session=s,
        actor=nurse,
        values={"systolic": 126, "diastolic": 79, "heart_rate": 74, "spo2": 98, "resp_rate": 14},
        at=ago(0.2),
    )
    unmet = services.assess_recovery(
        session=s, actor=nurse, walks_steadily=True, responsible_adult=True
    )
    assert len(unmet) == 1 and "of at least 30 min since the dose ended" in unmet[0]
    s.refresh_from_db()
    assert s.state == S.RECOVERY
    with pytest.raises(ValidationError):
        services.discharge(session=s, actor=nurse)
    # a prescriber's discharge override stays possible, with a reason, audited
    services.override_discharge(
        session=s, actor=staff["prescriber"], reason="Transfer to hospital by ambulance (synthetic)"
    )
    assert AuditEvent.objects.latest("id").detail == {"discharge_override": True}
    services.discharge(session=s, actor=nurse)


def test_session_refuses_a_plan_dose_above_the_ceiling(appt, staff, clinic):
    from ketaflow.plans import services as plans
    from ketaflow.plans.models import DosingSettingsRow

    s = services.open_session(appointment=appt(), actor=staff["nurse"])  # plan signed at 40 mg
    data = {
        name: str(getattr(DosingSettingsRow(clinic=clinic), name))
        for name in DosingSettingsRow.FIELDS
    }
    plans.save_dosing_settings(
        clinic=clinic, actor=staff["owner"], data={**data, "iv_ceiling_mg": "30"}
    )
    with pytest.raises(ValidationError) as err:
        pre(s, staff["nurse"], weight="80")  # 80 kg × 0.5 mg/kg = 40 mg > 30 mg
    assert "absolute ceiling of 30 mg" in err.value.message_dict["dose_value"][0]


def test_api_sign_refuses_while_waste_is_due_then_the_page_and_api_agree(appt, staff, client_for):
    nurse = staff["nurse"]
    s = started_iv(appt, staff, ago(10))
    c = client_for(nurse)
    stopped = c.post(
        f"{API}/sessions/{s.pk}/stop",
        {"reason": "Patient asked to stop (synthetic)"},
        content_type="application/json",
    )
    assert stopped.status_code == 200, stopped.content
    detail = c.get(f"{API}/sessions/{s.pk}").json()
    due = Decimal(str(detail["dose"]["waste_due_mg"]))
    assert due > 0 and Decimal(str(detail["dose"]["given_mg"])) < Decimal("40.8")
    refused = c.post(
        f"{API}/sessions/{s.pk}/note/sign", {"free_text": "x"}, content_type="application/json"
    )
    assert refused.status_code in (400, 422), refused.content
    errors = refused.json()["errors"]
    assert any(e["field"] == "waste" and "as waste" in e["message"] for e in errors), errors
    page = c.post(
        f"/treatment/sessions/{s.pk}/note/", {"do": "sign", "free_text": "x"}, follow=True
    )
    assert "as waste" in page.content.decode()
    s.refresh_from_db()
    assert s.state == S.STOPPED


def test_rems_form_of_an_early_stopped_esketamine_session_reports_the_devices_given(build, staff):
    s = build("dosing", route="esk", dose_start=ago(3))
    services.stop_early(session=s, actor=staff["nurse"], reason="Patient declined (synthetic)")
    s.refresh_from_db()
    # 56 mg planned (2 devices), 1 device given: the form says "other", 28 mg
    assert (s.rems.data["dose"], s.rems.data["dose_other_mg"]) == ("other", 28)
