"""Clinician pages: Measures tab, Overview chart, risk banner, alerts, record form, settings."""

import datetime
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ketaflow.measures import services
from ketaflow.measures.models import Administration, OnCall, RiskFlag, SafetyAlert

UTC = datetime.UTC


def _history(clinic, patient, n, make_plan, dosing_visit, *, start=None):
    """A course (plan) with n PHQ-9 administrations (scored by the package) and two
    completed dosing visits."""
    from ketaflow.clinical import instruments

    start = start or datetime.datetime(2026, 1, 1, 9, tzinfo=UTC)
    plan = make_plan(patient)
    rows = []
    for i in range(n):
        value = max(0, 3 - i // 3) if i else 3
        answers = {str(k): value for k in range(1, 9)} | {"9": 0}
        result = instruments.score("phq9", answers)
        rows.append(
            Administration(
                clinic=clinic,
                patient=patient,
                instrument="phq9",
                instrument_version="1",
                answers=result.items,
                total=result.total,
                severity=result.severity,
                flags=list(result.flags),
                source="self_report",
                taken_at=start + datetime.timedelta(days=i),
                plan=plan,
            )
        )
    Administration.objects.bulk_create(rows)
    for d in (1, 3):
        dosing_visit(plan, start + datetime.timedelta(days=d, hours=-1))
    return plan


def test_measures_tab_chart_badges_and_items(
    clinic, staff, patient, client_for, make_plan, dosing_visit
):
    _history(clinic, patient, 12, make_plan, dosing_visit)
    page = client_for(staff["nurse"]).get(f"/patients/{patient.pk}/measures/")
    text = page.content.decode()
    assert page.status_code == 200
    assert "<svg" in text and "0–4 minimal" in text and "20–27 severe" in text
    assert "Baseline 24" in text and "Response ≤ 12" in text and "Remission &lt; 5" in text
    assert text.count('class="treatment"') == 2
    assert "Response: yes" in text and "Response: PHQ-9 fell ≥50% from baseline 24" in text
    assert "Rapid response (24 h)" in text and "Relapse after response" in text
    assert "Item answers, latest 10 of 12" in text
    assert "Record a questionnaire" in text


def test_measures_tab_queries_do_not_grow_with_history(
    clinic, staff, patient, make_patient, client_for, make_plan, dosing_visit
):
    client = client_for(staff["nurse"])
    _history(clinic, patient, 5, make_plan, dosing_visit)
    other = make_patient(clinic)
    _history(clinic, other, 120, make_plan, dosing_visit)
    counts = []
    for p in (patient, other):
        client.get(f"/patients/{p.pk}/measures/")  # warm per-session caches
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(f"/patients/{p.pk}/measures/").status_code == 200
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1], counts
    counts = []
    for p in (patient, other):
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(f"/patients/{p.pk}/").status_code == 200
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1], counts


def test_empty_measures_tab_keeps_the_empty_state(staff, patient, client_for):
    text = client_for(staff["nurse"]).get(f"/patients/{patient.pk}/measures/").content.decode()
    assert re.findall(r"<h2[^>]*>(.*?)</h2>", text) == ["No questionnaires scored yet"]
    assert "Send a secure link" in text


def test_overview_shows_compact_chart_to_clinicians_only(
    clinic, staff, patient, client_for, make_plan, dosing_visit
):
    _history(clinic, patient, 6, make_plan, dosing_visit)
    text = client_for(staff["nurse"]).get(f"/patients/{patient.pk}/").content.decode()
    assert 'aria-labelledby="mo-h"' in text and "<svg" in text
    front = client_for(staff["front_desk"]).get(f"/patients/{patient.pk}/").content.decode()
    assert "<svg" not in front and "PHQ-9" not in front


def test_risk_flag_banner_on_every_chart_page_until_cleared(clinic, staff, patient, client_for):
    client = client_for(staff["prescriber"])
    services.record_administration(
        patient=patient,
        actor=staff["nurse"],
        instrument="phq9",
        answers={str(k): 1 for k in range(1, 10)},
    )
    for tab in ("", "measures/", "notes/", "activity/"):
        text = client.get(f"/patients/{patient.pk}/{tab}").content.decode()
        assert "Risk flag: suicidality, same day." in text, tab
    adm = Administration.objects.get()
    assert (
        "Risk flag: suicidality, same day."
        in client.get(f"/measures/administrations/{adm.pk}/").content.decode()
    )
    # Acknowledge from the alert list, then clear with a documented action.
    alert = SafetyAlert.objects.get()
    flag = RiskFlag.objects.get()
    assert "Acknowledge" in client.get("/measures/alerts/").content.decode()
    client.post(f"/measures/alerts/{alert.pk}/acknowledge/")
    repeat = client.post(f"/measures/alerts/{alert.pk}/acknowledge/", follow=True)
    assert "Already acknowledged by" in repeat.content.decode()
    bad = client.post(f"/measures/flags/{flag.pk}/clear/", {"action": "", "note": "x"})
    assert bad.status_code == 200 and "errorlist" in bad.content.decode()
    ok = client.post(
        f"/measures/flags/{flag.pk}/clear/",
        {"action": "contacted", "note": "Phoned the patient; safe, plan in place"},
    )
    assert ok.status_code == 302
    assert "Risk flag: suicidality" not in client.get(f"/patients/{patient.pk}/").content.decode()


def test_today_panel_lists_open_alerts(clinic, staff, patient, client_for):
    services.record_administration(
        patient=patient,
        actor=staff["nurse"],
        instrument="phq9",
        answers={str(k): 0 for k in range(1, 9)} | {"9": 2},
    )
    text = client_for(staff["nurse"]).get("/today/").content.decode()
    assert "Safety alerts" in text and patient.display_name in text and "Acknowledge" in text
    front = client_for(staff["front_desk"]).get("/today/").content.decode()
    assert "Safety alerts" not in front
    nav = client_for(staff["nurse"]).get("/today/").content.decode()
    assert 'href="/measures/alerts/"' in nav


def test_record_form_keeps_input_and_shows_errors_next_to_items(
    staff, patient, client_for, make_plan, make_patient, clinic
):
    plan = make_plan(patient)
    other_plan = make_plan(make_patient(clinic))
    client = client_for(staff["nurse"])
    choose = client.get(f"/measures/patients/{patient.pk}/record/")
    assert "Patient Health Questionnaire-9" in choose.content.decode()
    form = client.get(f"/measures/patients/{patient.pk}/record/?instrument=phq9").content
    # The active plan is the default course.
    assert f'<option value="{plan.pk}" selected>' in form.decode()
    data = {"instrument": "phq9", "item_1": "2", "item_2": "3", "plan": str(plan.pk)}
    page = client.post(f"/measures/patients/{patient.pk}/record/", data)
    text = page.content.decode()
    assert page.status_code == 200 and 'id="err-3"' in text
    assert 'name="item_2" value="3" checked' in text
    assert f'<option value="{plan.pk}" selected>' in text
    data |= {f"item_{k}": "0" for k in range(3, 10)}
    foreign = client.post(
        f"/measures/patients/{patient.pk}/record/", data | {"plan": str(other_plan.pk)}
    )
    assert foreign.status_code == 200 and 'id="err-plan"' in foreign.content.decode()
    assert "Choose a treatment course (plan) of this patient." in foreign.content.decode()
    assert not Administration.objects.exists()
    saved = client.post(f"/measures/patients/{patient.pk}/record/", data)
    assert saved.status_code == 302
    adm = Administration.objects.get()
    assert (adm.total, adm.plan, adm.entered_by) == (5, plan, staff["nurse"])


def test_record_refuses_future_time(staff, patient, client_for):
    data = {"instrument": "gad7", **{f"item_{k}": "0" for k in range(1, 8)}}
    data["taken_at"] = "2999-01-01T10:00"
    text = client_for(staff["nurse"]).post(f"/measures/patients/{patient.pk}/record/", data)
    assert "cannot be in the future" in text.content.decode()
    assert not Administration.objects.exists()


def test_send_link_shows_qr_once(staff, patient, client_for):
    page = client_for(staff["front_desk"]).post(
        f"/measures/patients/{patient.pk}/send/", {"instruments": ["phq9"]}
    )
    text = page.content.decode()
    assert page.status_code == 200 and "data:image/svg+xml" in text
    raw = re.search(r"/measures/r/([A-Za-z0-9_-]+)/", text).group(1)
    assert services.find_link(raw) is not None
    assert "no-store" in page["Cache-Control"]


def test_settings_page_saves_on_call(clinic, staff, client_for):
    client = client_for(staff["owner"])
    page = client.get("/measures/settings/")
    text = page.content.decode()
    assert page.status_code == 200
    assert "esketamine trials used 12 or less" in text and "range of 5–10 points" in text
    assert '<option value="10" selected>' in text and '<option value="33" selected>' in text
    assert 'name="pcl5_reliable_change"' in text and "not assessed" in text
    response = client.post(
        "/measures/settings/",
        {
            "link_expiry_hours": "72",
            "escalation_minutes": "20",
            "reminder_hours": "24",
            "pre_treatment_hours": "24",
            "madrs_remission_cutoff": "12",
            "pcl5_ptsd_cutoff": "33",
            "pcl5_reliable_change": "",
            "on_call": [str(staff["nurse"].pk)],
        },
    )
    assert response.status_code == 302
    assert list(OnCall.objects.values_list("user_id", flat=True)) == [staff["nurse"].pk]
    from ketaflow.measures.models import MeasuresSettings

    saved = MeasuresSettings.objects.get(clinic=clinic)
    assert (saved.madrs_remission_cutoff, saved.pcl5_reliable_change) == (12, None)
    out_of_range = client.post(
        "/measures/settings/",
        {
            "link_expiry_hours": "72",
            "escalation_minutes": "20",
            "reminder_hours": "24",
            "pre_treatment_hours": "24",
            "madrs_remission_cutoff": "11",
            "pcl5_ptsd_cutoff": "30",
            "pcl5_reliable_change": "11",
        },
    )
    errors = out_of_range.content.decode()
    assert out_of_range.status_code == 200
    assert (
        "Select a valid choice. 11 is not" in errors
        and "Select a valid choice. 30 is not" in errors
    )
    assert "less than or equal to 10" in errors
    bad = client.post(
        "/measures/settings/",
        {
            "link_expiry_hours": "0",
            "escalation_minutes": "20",
            "reminder_hours": "24",
            "pre_treatment_hours": "24",
            "madrs_remission_cutoff": "12",
            "pcl5_ptsd_cutoff": "33",
            "pcl5_reliable_change": "",
        },
    )
    assert bad.status_code == 200 and "errorlist" in bad.content.decode()


@pytest.mark.parametrize("role", ["therapist"])
def test_location_scope_applies_to_record(clinic, make_user, patient, client_for, role):
    patient.preferred_location = clinic.locations.get(name="South")
    patient.save()
    user = make_user(clinic, role, locations=["North"])
    assert client_for(user).get(f"/measures/patients/{patient.pk}/record/").status_code == 403


def test_measures_tab_has_one_block_per_course_and_no_course(
    clinic, staff, patient, client_for, make_plan, dosing_visit
):
    first = _history(clinic, patient, 4, make_plan, dosing_visit)
    second = _history(
        clinic,
        patient,
        3,
        make_plan,
        dosing_visit,
        start=datetime.datetime(2026, 3, 1, 9, tzinfo=UTC),
    )
    services.record_administration(
        patient=patient,
        actor=staff["nurse"],
        instrument="gad7",
        answers=dict.fromkeys("1234567", 1),
    )
    text = client_for(staff["nurse"]).get(f"/patients/{patient.pk}/measures/").content.decode()
    headings = re.findall(r"<h2[^>]*>(.*?)</h2>", text)
    assert [h.split(":")[0] for h in headings] == ["Course", "Course", "No course"]
    assert f"Plan {first.pk}:" in headings[0] and f"Plan {second.pk}:" in headings[1]
    blocks = text.split('<section class="course"')[1:]
    # Each course shows only its own questionnaires and its own two treatment markers.
    assert [b.count('class="card measure"') for b in blocks] == [1, 1, 1]
    assert "4 administrations" in blocks[0] and "3 administrations" in blocks[1]
    assert [b.count('class="treatment"') for b in blocks] == [2, 2, 0]
    assert "GAD-7" in blocks[2] and "not linked to a treatment course" in blocks[2]
