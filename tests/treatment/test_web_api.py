import datetime
import re

from django.urls import reverse

from ketaflow.treatment.models import SessionAlert, TreatmentSession, VitalSign

S = TreatmentSession.State
API = "/api/v1/treatment"


def post(client, url, data=None, method="post"):
    return getattr(client, method)(url, data or {}, content_type="application/json")


# ---------------------------------------------------------------------------- API


def test_api_vitals_use_loinc_and_ucum(build, staff, client_for):
    s = build("monitoring")
    c = client_for(staff["nurse"])
    r = post(
        c,
        f"{API}/sessions/{s.pk}/vitals",
        {"systolic": 128, "diastolic": 82, "heart_rate": 76, "spo2": 97},
    )
    assert r.status_code == 201, r.content
    obs = {o["code"]: (o["value"], o["unit"]) for o in r.json()["observations"]}
    assert obs == {
        "8480-6": (128, "mm[Hg]"),
        "8462-4": (82, "mm[Hg]"),
        "8867-4": (76, "/min"),
        "59408-5": (97, "%"),
    }
    coded = post(
        c,
        f"{API}/sessions/{s.pk}/vitals",
        {"observations": [{"code": "2708-6", "display": "SpO2", "value": 90, "unit": "%"}]},
    )
    assert coded.status_code == 201 and coded.json()["alerts"][0].startswith("SpO2 90%")
    wrong_unit = post(
        c,
        f"{API}/sessions/{s.pk}/vitals",
        {"observations": [{"code": "8867-4", "display": "HR", "value": 70, "unit": "bpm"}]},
    )
    assert wrong_unit.status_code == 422 and "/min" in wrong_unit.json()["detail"]
    bad = post(c, f"{API}/sessions/{s.pk}/vitals", {"systolic": 400, "diastolic": 80})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "systolic"


def test_api_batch_and_session_detail(build, staff, client_for):
    s = build("monitoring")
    c = client_for(staff["nurse"])
    now = datetime.datetime.now(datetime.UTC)
    r = post(
        c,
        f"{API}/sessions/{s.pk}/vitals/batch",
        {
            "readings": [
                {"at": (now - datetime.timedelta(minutes=2)).isoformat(), "spo2": 97},
                {"at": (now - datetime.timedelta(minutes=1)).isoformat(), "heart_rate": 80},
            ]
        },
    )
    assert r.status_code == 201 and len(r.json()) == 2
    d = c.get(f"{API}/sessions/{s.pk}").json()
    assert d["state"] == "monitoring" and d["next_reading_due"] and len(d["vitals"]) >= 3


def test_api_full_flow_ack_and_409s(build, staff, client_for):
    s = build("recovery")
    nurse, prescriber = client_for(staff["nurse"]), client_for(staff["prescriber"])
    r = post(nurse, f"{API}/sessions/{s.pk}/vitals", {"spo2": 89})
    alert_id = SessionAlert.objects.get(session=s).pk
    assert [a["id"] for a in nurse.get(f"{API}/alerts").json()] == [alert_id]
    first = post(
        nurse, f"{API}/alerts/{alert_id}/acknowledge", {"action": "observe", "note": "O2 on"}
    )
    assert first.status_code == 200 and first.json()["action"] == "observe"
    again = post(prescriber, f"{API}/alerts/{alert_id}/acknowledge", {"action": "prescriber"})
    assert again.status_code == 409 and "Already acknowledged by" in again.json()["detail"]
    post(nurse, f"{API}/sessions/{s.pk}/vitals", {"systolic": 125, "diastolic": 79, "spo2": 97})
    from ketaflow.treatment import services

    services.record_measure(
        session=s, actor=staff["nurse"], instrument="moaas", answers={"1": 5}, timing="post"
    )
    r = post(
        nurse,
        f"{API}/sessions/{s.pk}/recovery",
        {"walks_steadily": True, "responsible_adult": True},
    )
    assert r.json() == {"state": "ready", "unmet": []}
    assert post(nurse, f"{API}/sessions/{s.pk}/discharge", {}).json()["state"] == "discharged"
    signed = post(nurse, f"{API}/sessions/{s.pk}/note/sign", {"free_text": "Went well."})
    assert signed.status_code == 200 and signed.json()["signed_at"]
    # Sign-then-read-only at the API: 409 with the reason.
    for url, body, method in (
        (f"{API}/sessions/{s.pk}/vitals", {"spo2": 97}, "post"),
        (f"{API}/sessions/{s.pk}/note", {"free_text": "changed"}, "put"),
        (f"{API}/sessions/{s.pk}/events", {"effect": "nausea", "severity": "mild"}, "post"),
        (f"{API}/sessions/{s.pk}/note/sign", {"free_text": "again"}, "post"),
    ):
        r = post(nurse, url, body, method)
        assert r.status_code == 409 and "read-only" in r.json()["detail"], (url, r.content)
    assert nurse.get(f"{API}/sessions/{s.pk}/note").json()["free_text"] == "Went well."
    cos = post(prescriber, f"{API}/sessions/{s.pk}/note/cosign")
    assert cos.status_code == 200 and cos.json()["cosigned_at"]
    add = post(nurse, f"{API}/sessions/{s.pk}/note/addenda", {"text": "Follow-up call: well."})
    assert add.status_code == 201 and add.json()["addenda"][0]["text"] == "Follow-up call: well."


def test_api_rems_sign_blocked_while_missing(appt, staff, client_for, rems_extra):
    from ketaflow.treatment import builder

    s = builder.build(
        appt("esk"), to="discharged", nurse=staff["nurse"], prescriber=staff["prescriber"]
    )
    c = client_for(staff["nurse"])
    post(c, f"{API}/sessions/{s.pk}/rems", {"data": rems_extra}, "put")
    r = post(c, f"{API}/sessions/{s.pk}/rems", {"data": {"adverse_events": ""}}, "put")
    assert r.json()["missing"] == ["Adverse events (none, or describe)"]
    blocked = post(c, f"{API}/sessions/{s.pk}/rems/sign")
    assert blocked.status_code == 422 and "Adverse events" in blocked.json()["detail"]
    post(c, f"{API}/sessions/{s.pk}/rems", {"data": {"adverse_events": "none"}}, "put")
    assert post(c, f"{API}/sessions/{s.pk}/rems/sign").json()["signed_at"]
    assert (
        post(c, f"{API}/sessions/{s.pk}/rems", {"data": {"lot_number": "x"}}, "put").status_code
        == 409
    )


# ---------------------------------------------------------------------------- pages


def test_session_page_shows_alert_chart_and_dose_arithmetic(build, staff, client_for):
    s = build("dosing", high_reading=True)
    page = client_for(staff["nurse"]).get(f"/treatment/sessions/{s.pk}/").content.decode()
    assert 'role="alert"' in page and "confirmed" in page
    assert "kf-vitals-chart" in page and "kf-dose-band" in page
    assert "Today&#x27;s dose" in page or "Today's dose" in page
    assert 'hx-trigger="every 5s"' in page and "<script>" not in page
    assert not re.search(r'\sstyle="', page)
    assert "population estimate" in page and "<svg" in page.split("population estimate")[1]


def test_session_page_shows_concurrent_medications_with_interaction_notes(build, staff, client_for):
    from ketaflow.clinical import eligibility
    from ketaflow.intake.models import Assessment

    s = build("dosing")
    Assessment.objects.create(
        clinic=s.clinic,
        patient=s.patient,
        created_by=staff["prescriber"],
        medications=[{"name": "lorazepam-synth", "dose": "0.5 mg", "med_class": "benzodiazepine"}],
    )
    page = client_for(staff["nurse"]).get(f"/treatment/sessions/{s.pk}/").content.decode()
    assert "Concurrent medications" in page and "lorazepam-synth" in page
    assert "lorazepam-equivalent" in eligibility.medication_note("benzodiazepine")
    assert "lorazepam-equivalent a day" in page


def test_web_vitals_entry_error_and_alert_messages(build, staff, client_for):
    s = build("monitoring")
    c = client_for(staff["nurse"])
    r = c.post(
        f"/treatment/sessions/{s.pk}/vitals/", {"systolic": "400", "diastolic": "80"}, follow=True
    )
    assert "typing error" in r.content.decode()
    r = c.post(f"/treatment/sessions/{s.pk}/vitals/", {"spo2": "90", "at": ""}, follow=True)
    assert "ALERT: SpO2 90%" in r.content.decode()
    assert VitalSign.objects.filter(session=s, spo2=90).exists()


def test_discharge_button_disabled_with_unmet_listed(build, staff, client_for):
    s = build("recovery")
    page = client_for(staff["nurse"]).get(f"/treatment/sessions/{s.pk}/").content.decode()
    assert 'id="discharge-btn" disabled' in page and "Walking steadily not confirmed" in page


def test_board_and_partial(build, staff, client_for, clinic, django_assert_max_num_queries):
    s = build("dosing", high_reading=True)
    build("monitoring")
    c = client_for(staff["nurse"])
    page = c.get("/treatment/board/").content.decode()
    assert 'hx-get="/treatment/board/live/' in page and 'hx-trigger="every 5s"' in page
    partial = c.get("/treatment/board/live/").content.decode()
    assert "<html" not in partial and s.patient.display_name in partial and "ALERT" in partial
    assert "Reading" in partial
    assert "kf-board-large" in c.get("/treatment/board/?large=1").content.decode()


def test_board_names_the_location_and_shows_only_what_was_measured(build, staff, client_for):
    from ketaflow.treatment import services

    s = build("monitoring")
    services.record_vitals(session=s, actor=staff["nurse"], values={"spo2": 95})
    c = client_for(staff["nurse"])
    partial = c.get("/treatment/board/live/").content.decode()
    assert f"{s.location.name} · {s.chair.name}: {s.patient.display_name}" in partial
    assert "SpO2 95 %</span>" in partial and "HR –" not in partial
    one_place = c.get(f"/treatment/board/live/?location={s.location_id}").content.decode()
    assert f"{s.location.name} · " not in one_place


def test_today_panel_nav_and_chart_tabs(build, staff, client_for, make_patient):
    s = build("signed")
    build("monitoring")
    c = client_for(staff["nurse"])
    s_alert = build("monitoring")
    from ketaflow.treatment import services

    services.record_vitals(session=s_alert, actor=staff["nurse"], values={"spo2": 90})
    today = c.get(reverse("web:today")).content.decode()
    assert "Treatment day" in today and "Treatment alerts" in today and "SpO2 90%" in today
    sessions_tab = c.get(f"/patients/{s.patient_id}/sessions/").content.decode()
    assert f"/treatment/sessions/{s.pk}/" in sessions_tab and "IV ketamine" in sessions_tab
    assert "No treatment sessions yet" not in sessions_tab
    never = make_patient(s.clinic)
    empty = c.get(f"/patients/{never.pk}/sessions/").content.decode()
    assert "No treatment sessions yet" in empty and "Check in" in empty
    notes_tab = c.get(f"/patients/{s.patient_id}/notes/").content.decode()
    assert f"/treatment/sessions/{s.pk}/note.pdf" in notes_tab


def test_note_pdf_and_rems_exports(appt, staff, client_for):
    from ketaflow.treatment import builder

    s = builder.build(
        appt("esk"), to="signed", nurse=staff["nurse"], prescriber=staff["prescriber"]
    )
    c = client_for(staff["nurse"])
    pdf = c.get(f"/treatment/sessions/{s.pk}/note.pdf")
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    csv = c.get(f"/treatment/sessions/{s.pk}/rems.csv").content.decode()
    assert "form_version,field,label,value" in csv and "lot_number" in csv
    assert c.get(f"/treatment/sessions/{s.pk}/rems.pdf").content.startswith(b"%PDF")
    listing = c.get("/treatment/rems/").content.decode()
    assert "DUE" in listing


def test_rems_list_marks_overdue(appt, staff, client_for):
    from ketaflow.treatment import builder
    from ketaflow.treatment.models import RemsForm

    s = builder.build(
        appt("esk"), to="discharged", nurse=staff["nurse"], prescriber=staff["prescriber"]
    )
    RemsForm.objects.filter(session=s).update(due_by=datetime.date(2020, 1, 1))
    assert "OVERDUE" in client_for(staff["nurse"]).get("/treatment/rems/").content.decode()


def test_settings_page_shows_sources_and_validates(staff, client_for, clinic):
    c = client_for(staff["owner"])
    page = c.get("/treatment/settings/").content.decode()
    assert "Clinic default, set by the medical director" in page and "section 3" in page
    r = c.post("/treatment/settings/", {"esketamine_monitoring_minutes": "60"})
    assert "cannot be below 120" in r.content.decode()
    from ketaflow.treatment.models import TreatmentSettings
    from ketaflow.treatment.models import TreatmentSettings as TS

    data = {name: getattr(TS(), name) for name in TS.FIELDS}
    data["spo2_min"] = 94
    assert c.post("/treatment/settings/", data).status_code == 302
    assert TreatmentSettings.objects.get(clinic=clinic).spo2_min == 94


def test_check_in_from_day_page(appt, staff, client_for):
    a = appt()
    c = client_for(staff["nurse"])
    assert a.patient.display_name in c.get("/treatment/").content.decode()
    r = c.post(f"/treatment/appointments/{a.pk}/check-in/")
    s = TreatmentSession.objects.get(appointment=a)
    assert r["Location"] == f"/treatment/sessions/{s.pk}/"
