"""Treatment day in the browser: a full IV session from check-in to signed note with one high
reading that raises an alert, shows at once and is acknowledged; an esketamine session ending
in a signed REMS form; the chair board updating while another page records vitals."""

import datetime
import importlib.util
import re
from pathlib import Path

import pytest
from django.db.models import F
from playwright.sync_api import expect

from ketaflow.clinical import dosing
from ketaflow.treatment import builder, services
from ketaflow.treatment.models import (
    AdministrationRecord,
    DoseEvent,
    SessionAlert,
    SessionEvent,
    SessionMeasure,
    StateChange,
    TreatmentSession,
    VitalSign,
    Waste,
)

pytestmark = pytest.mark.e2e

_spec = importlib.util.spec_from_file_location(
    "treatment_matrix_e2e", Path(__file__).resolve().parents[1] / "treatment" / "access_matrix.py"
)
matrix = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(matrix)


@pytest.fixture(autouse=True)
def consent_on_file(monkeypatch):
    monkeypatch.setattr(services, "consent_valid", lambda session: True)


def _errors(entries):
    return [e for e in entries if e[0] in {"error", "pageerror"}]


def _vitals(page, sys_="", dia="", hr="", spo2="", rr=""):
    form = page.locator("#vitals-form")
    for label, value in (
        ("Systolic", sys_),
        ("Diastolic", dia),
        ("HR", hr),
        ("SpO2", spo2),
        ("RR", rr),
    ):
        if value:
            form.get_by_label(label, exact=True).fill(value)
    form.get_by_role("button", name="Record").click()
    page.wait_for_load_state()


def _moaas(page, timing):
    page.get_by_role(
        "link", name="Pre-dose MOAA/S" if timing == "pre" else "MOAA/S after dosing"
    ).click()
    page.locator("input[name=item_1][value='5']").check()
    page.get_by_role("button", name=re.compile("Record")).click()
    page.wait_for_load_state()


def _minutes_pass(session, minutes):
    """As if ``minutes`` had passed since the charting so far: every time charted for the
    session moves that much into the past, so the chart stays consistent (check-in before the
    readings, the dose start before its end) and only the distance to now grows."""
    back = datetime.timedelta(minutes=minutes)
    TreatmentSession.objects.filter(pk=session.pk).update(
        **{
            f: F(f) - back
            for f in (
                "opened_at",
                "state_changed_at",
                "proceed_at",
                "dose_started_at",
                "dose_ended_at",
                "ready_without_rule_at",
                "last_vitals_at",
            )
        }
    )
    for model in (StateChange, VitalSign, DoseEvent, SessionMeasure, SessionEvent, Waste):
        model.objects.filter(session=session).update(at=F("at") - back)
    SessionAlert.objects.filter(session=session).update(
        **{
            f: F(f) - back
            for f in (
                "created_at",
                "acknowledged_at",
                "escalated_at",
                "recheck_by",
                "recheck_missed_at",
            )
        }
    )


def test_full_iv_session_to_signed_note(
    page, auth, shoot, console_log, clinic, staff, make_patient
):
    patient = make_patient(clinic, legal_given_name="Ivy", legal_family_name="Infusion-Synth")
    matrix.make_appointment(clinic, staff, patient, route="iv")
    nurse = staff["nurse"]
    auth.sign_in(page, nurse)
    page.goto("/treatment/")
    expect(page.get_by_role("heading", name="Treatment day")).to_be_visible()
    shoot(page, "tx01-treatment-day")
    page.get_by_role("button", name="Check in").click()
    expect(page.locator("#state")).to_have_text("Checked in")

    page.get_by_label("Hours since food").fill("4")
    page.get_by_label("Minutes since liquids").fill("60")
    page.get_by_label("Today's weight (kg)").fill("80")
    page.get_by_label("Ride home arranged").check()
    page.get_by_label("Pregnancy status").select_option("not pregnant")
    page.get_by_role("button", name="Save pre-assessment").click()
    expect(page.locator("#state")).to_have_text("Pre-assessment")
    expect(page.get_by_text("Today's dose: 40 mg")).to_be_visible()
    expect(page.get_by_text("Record baseline vital signs")).to_be_visible()
    _vitals(page, "124", "78", "72", "98", "14")
    _moaas(page, "pre")
    expect(page.get_by_text("Dosing is blocked")).to_have_count(0)
    shoot(page, "tx02-pre-assessment-done")
    page.get_by_label("Lot").fill("SYN-LOT-1")
    page.get_by_label("Expiry").fill("2099-12-31")
    page.get_by_role("button", name="Start dosing").click()
    expect(page.locator("#state")).to_have_text("Dosing")

    # One high reading: +44 systolic from baseline raises an alert at once.
    _vitals(page, "168", "96", "88", "97", "14")
    alert = page.get_by_role("alert").filter(has_text="from baseline")
    expect(alert).to_be_visible()
    shoot(page, "tx03-alert-raised")
    alert.get_by_label("Action taken").select_option("rate_reduced")
    alert.get_by_label("Note").fill("Rate halved (synthetic)")
    alert.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_text("Alert acknowledged.")).to_be_visible()
    expect(page.get_by_role("alert").filter(has_text="from baseline")).to_have_count(0)
    assert SessionAlert.objects.get().action == "rate_reduced"

    # The infusion runs 10 of its 40 minutes, then is stopped early: only what ran is given.
    s = TreatmentSession.objects.get()
    _minutes_pass(s, 10)
    page.get_by_label("Event", exact=True).select_option("stop")
    page.get_by_role("button", name="Record dose event").click()
    expect(page.locator("#state")).to_have_text("Monitoring")
    a = AdministrationRecord.objects.get(session=s)
    assert a.dose_mg == 40 and 0 < a.given_mg < a.dose_mg
    expect(page.locator("#dose-given")).to_contain_text(
        f"Dose given: {dosing.fmt(a.given_mg)} mg of 40 mg drawn"
    )
    outstanding = services.waste_due(s)["outstanding_text"]
    expect(page.locator("#waste-due")).to_contain_text(f"{outstanding} mg drawn but not given")
    _vitals(page, "126", "80", "74", "98", "14")
    _moaas(page, "post")
    page.get_by_label("Walks steadily").check()
    page.get_by_label("Responsible adult present").check()
    page.get_by_role("button", name="Save recovery checks").click()
    # Every other criterion is met, but the IV minimum observation after the dose is not.
    expect(page.locator("#state")).to_have_text("Recovery")
    expect(page.locator("#unmet")).to_contain_text("Minimum observation after the dose")
    expect(page.locator("#discharge-btn")).to_be_disabled()
    shoot(page, "tx04a-minimum-observation")

    # The nurse observes for the clinic's minimum (IV: 30 min by default), then rechecks.
    _minutes_pass(s, 31)
    page.reload()
    _vitals(page, "122", "78", "72", "98", "14")
    page.get_by_label("Walks steadily").check()
    page.get_by_label("Responsible adult present").check()
    page.get_by_role("button", name="Save recovery checks").click()
    expect(page.locator("#state")).to_have_text("Ready for discharge")
    expect(page.locator("#unmet")).to_have_count(0)
    expect(page.locator("#discharge-btn")).to_be_enabled()
    shoot(page, "tx04-ready-for-discharge")
    page.locator("#discharge-btn").click()
    expect(page.locator("#state")).to_have_text("Discharged")

    # The drug drawn but not given is wasted, witnessed, before the note can be signed.
    page.get_by_label("Waste (mg)").fill(outstanding)
    page.get_by_label("Reason", exact=True).fill("Infusion stopped early (synthetic)")
    page.get_by_label("Witness").select_option(str(staff["prescriber"].pk))
    page.get_by_role("button", name="Record waste").click()
    page.wait_for_load_state()
    expect(page.locator("#waste-due")).to_have_count(0)
    expect(page.get_by_text(f"Waste {outstanding}")).to_be_visible()
    page.get_by_label("Free text").fill(
        "Tolerated the infusion; BP rise settled after rate reduction."
    )
    page.get_by_role("button", name="Sign note").click()
    expect(page.locator("#state")).to_have_text("Signed")
    expect(page.get_by_text("Note signed: the session is now read-only.")).to_be_visible()
    expect(page.locator("#vitals-form")).to_have_count(0)
    shoot(page, "tx05-signed-note")
    s = TreatmentSession.objects.get()
    assert s.state == "signed" and "Rate reduced" in s.note.generated
    assert f"Dose given: {dosing.fmt(a.given_mg)} mg" in s.note.generated
    assert _errors(console_log) == []


def test_esketamine_session_to_signed_rems_form(
    page, auth, shoot, console_log, clinic, staff, make_patient
):
    patient = make_patient(clinic, legal_given_name="Esme", legal_family_name="Spray-Synth")
    appt = matrix.make_appointment(clinic, staff, patient, route="esk")
    s = builder.build(appt, to="ready", nurse=staff["nurse"], prescriber=staff["prescriber"])
    auth.sign_in(page, staff["nurse"])
    page.goto(f"/treatment/sessions/{s.pk}/")
    expect(page.locator("#state")).to_have_text("Ready for discharge")
    expect(page.locator("figcaption").filter(has_text="population estimate")).to_be_visible()
    page.locator("#discharge-btn").click()
    expect(page.locator("#state")).to_have_text("Discharged")
    page.get_by_role("link", name="REMS form").click()
    expect(
        page.get_by_role("heading", name="Esketamine REMS Patient Monitoring Form")
    ).to_be_visible()
    expect(page.get_by_label("Lot number (required)")).to_have_value("SYN-LOT-4471")
    page.get_by_label("Lot number (required)").fill("")
    page.get_by_role("button", name="Sign form").click()
    expect(page.get_by_text("Signing is blocked until these are filled")).to_be_visible()
    shoot(page, "tx06-rems-blocked")
    page.get_by_label("Lot number (required)").fill("SYN-LOT-4471")
    # What the published form asks that the session record cannot know.
    page.locator("#r-enrolled").select_option("yes")
    page.locator("#r-respiratory_depression").select_option("no")
    page.locator("#r-provider_phone").fill("555-0100")
    page.locator("#r-setting_address1").fill("1 Synthetic Way")
    page.locator("#r-setting_city").fill("Springfield")
    page.locator("#r-setting_state").fill("IL")
    page.locator("#r-setting_zip").fill("62701")
    page.get_by_role("button", name="Sign form").click()
    expect(page.get_by_text("REMS form signed.")).to_be_visible()
    shoot(page, "tx07-rems-signed")
    page.goto("/treatment/rems/")
    expect(page.get_by_text("SIGNED")).to_be_visible()
    assert _errors(console_log) == []


def test_chair_board_updates_while_another_page_records(
    browser, page, auth, shoot, console_log, clinic, staff, make_patient, make_user, live_server
):
    # make_patient's synthetic names (GivenN FamilyN-Synth) are one letter apart, so the safety
    # banner of each chair rightly warns of the other patient's similar name.
    one, two = make_patient(clinic), make_patient(clinic)
    first = builder.build(
        matrix.make_appointment(clinic, staff, one, route="iv"),
        to="monitoring",
        nurse=staff["nurse"],
        prescriber=staff["prescriber"],
    )
    builder.build(
        matrix.make_appointment(clinic, staff, two, route="esk"),
        to="dosing",
        nurse=staff["nurse"],
        prescriber=staff["prescriber"],
    )
    auth.sign_in(page, staff["nurse"])
    page.goto("/treatment/board/?large=1")
    expect(page.locator(".kf-chair")).to_have_count(2)
    # No treatment (vital-sign) alert yet; the only alerts are the two similar-name warnings.
    expect(page.locator(".kf-alert")).to_have_count(0)
    similar = page.get_by_role("alert").filter(has_text="Similar name in the clinic today")
    expect(similar).to_have_count(2)
    expect(page.get_by_role("alert")).to_have_count(2)
    expect(similar.filter(has_text=f"MRN {one.mrn}")).to_have_count(1)
    expect(similar.filter(has_text=f"MRN {two.mrn}")).to_have_count(1)
    shoot(page, "tx08-board-before")
    before = page.locator("#board-updated").inner_text()

    other = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    second = other.new_page()
    second.set_default_timeout(10_000)
    colleague = make_user(clinic, "nurse")
    second.goto(f"{live_server.url}/accounts/login/")
    auth.submit_password(second, colleague.email)
    auth.submit_code(second, auth.totp_code(colleague))
    second.goto(f"{live_server.url}/treatment/sessions/{first.pk}/")
    _vitals(second, spo2="89")
    expect(second.get_by_role("alert").filter(has_text="SpO2 89%")).to_be_visible()

    # The board page was not reloaded: htmx polling brings the alert within a few seconds.
    expect(page.get_by_role("alert").filter(has_text="SpO2 89%")).to_be_visible(timeout=12_000)
    assert page.locator("#board-updated").inner_text() != before
    shoot(page, "tx09-board-after")
    other.close()
    assert _errors(console_log) == []


def test_sustained_severe_bp_raises_a_visible_alert_and_a_5_minute_recheck(
    page, auth, shoot, console_log, clinic, staff, make_patient
):
    """Issue 17: 200/124 during an IV infusion alerts at once (unconfirmed) and makes the
    recheck, 5 min later, the next due reading, on the session page and the chair board."""
    import datetime

    from ketaflow.treatment.models import VitalSign

    s = builder.build(
        matrix.make_appointment(clinic, staff, make_patient(clinic), route="iv"),
        to="dosing",
        nurse=staff["nurse"],
        prescriber=staff["prescriber"],
    )
    auth.sign_in(page, staff["nurse"])
    page.goto(f"/treatment/sessions/{s.pk}/")
    expect(page.locator("#state")).to_have_text("Dosing")
    _vitals(page, "200", "124", "88", "97", "14")
    alert = page.get_by_role("alert").filter(has_text="unconfirmed: recheck within 5 minutes")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("ALERT (unconfirmed)")
    high = VitalSign.objects.filter(session=s).order_by("-at").first()
    due = (high.at + datetime.timedelta(minutes=5)).astimezone(clinic.tz).strftime("%H:%M")
    next_reading = page.locator(".kf-due")
    expect(next_reading).to_contain_text(due)
    expect(next_reading).to_contain_text("Recheck blood pressure within 5 min")
    shoot(page, "tx10-unconfirmed-alert-recheck")
    assert SessionAlert.objects.get(session=s, rule="bp_high").status == "unconfirmed"

    page.goto("/treatment/board/")
    chair = page.locator(f'.kf-chair[data-session="{s.pk}"]')
    expect(chair.get_by_role("alert").filter(has_text="ALERT (unconfirmed)").first).to_be_visible()
    expect(chair.locator(".kf-due")).to_contain_text(due)
    assert _errors(console_log) == []
