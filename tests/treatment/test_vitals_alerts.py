"""Issue 17 item 1: vital-sign alerting that cannot stay silent (services, API, chair board,
Today). The repro: IV session, baseline 165/100, then 200/124 every 10 minutes."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from ketaflow.audit.models import AuditEvent
from ketaflow.patients.scope import ChartScope
from ketaflow.treatment import selectors, services
from ketaflow.treatment.models import SessionAlert, TreatmentSession, VitalSign

S = TreatmentSession.State
API = "/api/v1/treatment"
UNCONFIRMED = SessionAlert.Status.UNCONFIRMED


def ago(minutes):
    return datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=minutes)


def vit(s, actor, minutes_ago=0, **values):
    return services.record_vitals(session=s, actor=actor, values=values, at=ago(minutes_ago))


def iv_session(appt, staff, *, dose_minutes_ago=15, baseline=(165, 100)):
    """An IV infusion running since ``dose_minutes_ago``, checked in before its baseline."""
    nurse = staff["nurse"]
    with services.charted_as_of(ago(dose_minutes_ago + 20)):
        s = services.open_session(appointment=appt(), actor=nurse)
    services.save_pre_assessment(
        session=s,
        actor=nurse,
        data={
            "food_hours": "3",
            "liquid_minutes": "40",
            "ride_home": "on",
            "pregnancy": "not pregnant",
            "weight_kg": "80",
        },
    )
    vit(s, nurse, dose_minutes_ago + 5, systolic=baseline[0], diastolic=baseline[1], heart_rate=80)
    services.record_measure(
        session=s, actor=nurse, instrument="moaas", answers={"1": 5}, timing="pre"
    )
    s.refresh_from_db()
    if services.predose_problems(s):
        services.decide_proceed(
            session=s, actor=staff["prescriber"], reason="Known hypertension, treated; proceed"
        )
    services.start_dosing(
        session=s,
        actor=nurse,
        data={
            "product": "Ketamine HCl",
            "concentration": "10 mg/mL",
            "lot_number": "L1",
            "expiry": "2099-01-01",
            "at": ago(dose_minutes_ago),
        },
    )
    s.refresh_from_db()
    return s


def test_sustained_200_124_on_an_iv_session_alerts_at_once_and_rechecks_in_5_min(appt, staff):
    s = iv_session(appt, staff)
    nurse = staff["nurse"]
    first = vit(s, nurse, 5, systolic=200, diastolic=124, heart_rate=88, spo2=97, resp_rate=14)
    [alert] = first.raised
    assert (alert.rule, alert.status) == ("bp_high", UNCONFIRMED)
    assert alert.recheck_by == first.at + datetime.timedelta(minutes=5)
    assert "unconfirmed: recheck within 5 minutes" in alert.message
    # the recheck is the next due reading, 5 minutes ahead, not the regular 10
    view = selectors.session_view(s)
    assert view.due.at == first.at + datetime.timedelta(minutes=5)
    assert "Recheck blood pressure within 5 min" in view.due.reason
    assert view.due_status == "overdue"  # 5 min ago + 5 = now: past by the time it is read
    assert "Recheck blood pressure" in view.recheck
    # the flowsheet shows the same finding (the one series function)
    [flow] = [v for v in view.vitals if v.pk == first.pk]
    assert [f.code for f in flow.series_findings] == ["bp_high"]


def test_the_confirming_recheck_upgrades_the_alert(appt, staff):
    s = iv_session(appt, staff)
    nurse = staff["nurse"]
    first = vit(s, nurse, 4, systolic=200, diastolic=124)
    second = vit(s, nurse, 0, systolic=202, diastolic=122)
    assert second.raised == []
    alert = SessionAlert.objects.get(session=s, rule="bp_high")
    assert alert.status == SessionAlert.Status.CONFIRMED and alert.is_open
    assert (alert.reading_id, alert.recheck_reading_id) == (first.pk, second.pk)
    assert "confirmed" in alert.message
    # the recheck is no longer due: back to the regular IV interval
    assert selectors.session_view(s).due.at == second.at + datetime.timedelta(minutes=10)
    event = AuditEvent.objects.filter(object_type="treatment.vitalsign").order_by("-id").first()
    assert event.detail["alerts_settled"] == [{"alert": alert.pk, "status": "confirmed"}]


def test_a_normal_recheck_resolves_it_with_both_readings_on_record(appt, staff):
    s = iv_session(appt, staff)
    nurse = staff["nurse"]
    first = vit(s, nurse, 4, systolic=200, diastolic=124)
    second = vit(s, nurse, 0, systolic=150, diastolic=92)
    alert = SessionAlert.objects.get(session=s, rule="bp_high")
    assert alert.status == SessionAlert.Status.RESOLVED and not alert.is_open
    assert (alert.reading_id, alert.recheck_reading_id) == (first.pk, second.pk)
    assert alert.acknowledged_by == nurse and alert.action == "observe"
    assert "200/124" in alert.note and "150/92" in alert.note
    assert VitalSign.objects.filter(pk__in=[first.pk, second.pk]).count() == 2
    note = selectors.note_text(s)
    [line] = [x for x in note.splitlines() if x.startswith("Resolved ")]
    assert "200/124" in line and "150/92" in line
    assert selectors.session_view(s).recheck == ""


def test_a_missed_recheck_escalates(appt, staff, mailoutbox):
    s = iv_session(appt, staff)
    nurse = staff["nurse"]
    vit(s, nurse, 6, systolic=200, diastolic=124)
    alert = SessionAlert.objects.get(session=s, rule="bp_high")
    # acknowledged at once, but the recheck is still owed
    services.acknowledge_alert(
        alert_id=alert.pk, clinic=s.clinic, actor=nurse, action="observe", note="rechecking"
    )
    assert services.escalate_due() == 1
    alert.refresh_from_db()
    assert alert.recheck_missed_at is not None and alert.escalated_at is not None
    assert [m.subject for m in mailoutbox] == [
        f"[ketaflow] Recheck not taken: patient {s.patient.mrn}"
    ]
    assert "was not taken" in mailoutbox[0].body
    assert services.escalate_due() == 0  # once
    event = AuditEvent.objects.filter(object_type="treatment.sessionalert").order_by("-id")[0]
    assert event.detail["missed_recheck"] is True


def test_a_recheck_taken_in_time_is_not_escalated_as_missed(appt, staff, mailoutbox):
    s = iv_session(appt, staff)
    nurse = staff["nurse"]
    vit(s, nurse, 6, systolic=200, diastolic=124)
    vit(s, nurse, 2, systolic=150, diastolic=90)
    assert services.escalate_due() == 0 and mailoutbox == []


def test_an_unconfirmed_alert_left_unacknowledged_escalates_like_any_alert(appt, staff, mailoutbox):
    s = iv_session(appt, staff)
    vit(s, staff["nurse"], 0, systolic=200, diastolic=124)
    later = services.now() + datetime.timedelta(minutes=5, seconds=1)
    assert services.escalate_due(later) == 1
    alert = SessionAlert.objects.get(session=s)
    assert alert.escalated_at is not None
    assert [m.subject.split(":")[0] for m in mailoutbox] == ["[ketaflow] Recheck not taken"]


def test_a_reading_cannot_be_timed_before_the_check_in_or_in_the_future(appt, staff):
    s = iv_session(appt, staff)
    with pytest.raises(ValidationError) as exc:
        services.record_vitals(
            session=s,
            actor=staff["nurse"],
            values={"spo2": 97},
            at=s.opened_at - datetime.timedelta(minutes=1),
        )
    assert "before the check-in" in exc.value.message_dict["at"][0]
    with pytest.raises(ValidationError) as exc:
        services.record_vitals(session=s, actor=staff["nurse"], values={"spo2": 97}, at=ago(-10))
    assert "future" in exc.value.message_dict["at"][0]
    at_check_in = services.record_vitals(
        session=s, actor=staff["nurse"], values={"spo2": 97}, at=s.opened_at
    )
    assert at_check_in.at == s.opened_at


def test_new_rules_follow_the_clinic_settings(appt, staff):
    s = iv_session(appt, staff, baseline=(124, 78))
    services.update_settings(
        clinic=s.clinic,
        actor=staff["owner"],
        data={"systolic_min": 100, "heart_rate_min": 55, "resp_rate_max": 25},
    )
    raised = vit(s, staff["nurse"], systolic=95, diastolic=60, heart_rate=52, resp_rate=26).raised
    assert sorted(a.rule for a in raised) == ["hr_low", "rr_high", "sbp_low"]
    with pytest.raises(ValidationError) as exc:
        services.update_settings(clinic=s.clinic, actor=staff["owner"], data={"resp_rate_max": "x"})
    assert "resp_rate_max" in exc.value.message_dict


# ---------------------------------------------------------------------------- API and pages


def post(client, url, data):
    return client.post(url, data, content_type="application/json")


def test_api_reports_the_unconfirmed_alert_findings_and_next_due(appt, staff, client_for):
    s = iv_session(appt, staff)
    c = client_for(staff["nurse"])
    r = post(c, f"{API}/sessions/{s.pk}/vitals", {"systolic": 200, "diastolic": 124})
    assert r.status_code == 201, r.content
    body = r.json()
    [finding] = body["findings"]
    assert (finding["code"], finding["level"], finding["confirmed"]) == ("bp_high", "alert", False)
    at = datetime.datetime.fromisoformat(body["at"])
    due = datetime.datetime.fromisoformat(body["next_due"]["due_at"])
    assert due - at == datetime.timedelta(minutes=5)
    alerts = c.get(f"{API}/alerts").json()
    [row] = [a for a in alerts if a["session_id"] == s.pk]
    assert row["status"] == "unconfirmed" and row["recheck_by"] is not None
    detail = c.get(f"{API}/sessions/{s.pk}").json()
    assert datetime.datetime.fromisoformat(detail["next_reading_due"]) == due
    assert [f["code"] for f in detail["vitals"][-1]["findings"]] == ["bp_high"]
    listed = c.get(f"{API}/sessions/{s.pk}/vitals").json()
    assert listed[-1]["next_due"]["due_at"] == body["next_due"]["due_at"]
    # the recheck resolves it through the API too
    ok = post(c, f"{API}/sessions/{s.pk}/vitals", {"systolic": 150, "diastolic": 90})
    assert [(f["code"], f["level"]) for f in ok.json()["findings"]] == [("bp_high", "info")]
    assert not [a for a in c.get(f"{API}/alerts").json() if a["session_id"] == s.pk]


def test_api_refuses_a_reading_before_the_check_in_naming_the_field(appt, staff, client_for):
    s = iv_session(appt, staff)
    c = client_for(staff["nurse"])
    early = (s.opened_at - datetime.timedelta(minutes=3)).isoformat()
    r = post(c, f"{API}/sessions/{s.pk}/vitals", {"spo2": 97, "at": early})
    assert r.status_code == 422, r.content
    assert r.json()["errors"][0]["field"] == "at"
    assert "check-in" in r.json()["errors"][0]["message"]


def test_chair_board_session_page_and_today_show_the_unconfirmed_alert(appt, staff, client_for):
    s = iv_session(appt, staff)
    vit(s, staff["nurse"], 0, systolic=200, diastolic=124)
    c = client_for(staff["nurse"])
    board = c.get("/treatment/board/live/").content.decode()
    assert "ALERT (unconfirmed)" in board and "recheck by" in board
    assert "Recheck blood pressure within 5 min" in board
    page = c.get(f"/treatment/sessions/{s.pk}/").content.decode()
    assert "ALERT (unconfirmed)" in page and "unconfirmed: recheck within 5 minutes" in page
    today = c.get(reverse("web:today")).content.decode()
    assert "ALERT (unconfirmed)" in today and "recheck by" in today
    rows = selectors.board(s.clinic, scope=ChartScope(staff["nurse"], s.clinic))
    [row] = [r for r in rows if r.session.pk == s.pk]
    assert row.alerts[0].is_unconfirmed and row.due.reason.startswith("Recheck")
