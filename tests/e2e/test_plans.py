"""Browser: plan from a protocol, book the induction course, see it on the calendar, and a
reschedule into a conflict refused. Screenshots: var/screenshots/plans-*.png."""

import datetime
import re

import pytest
from playwright.sync_api import expect

from ketaflow.accounts.roles import PRESCRIBER
from ketaflow.plans import gates
from ketaflow.scheduling import services as schedule
from ketaflow.scheduling.defaults import ensure_types

pytestmark = pytest.mark.e2e


def _errors(entries):
    # The refused reschedule answers 409 on purpose; Chromium logs that status as an error.
    return [e for e in entries if e[0] in {"error", "pageerror"} and "status of 409" not in e[1]]


def test_plan_course_calendar_and_refused_reschedule(
    page, live_server, auth, shoot, console_log, clinic, make_user, make_patient, monkeypatch
):
    monkeypatch.setattr(gates, "intake_installed", lambda: True)
    monkeypatch.setattr(gates, "approved_routes", lambda p: {"esketamine-nasal"})
    monkeypatch.setattr(gates, "signed_consent", lambda p, r: object())
    prescriber = make_user(clinic, PRESCRIBER)
    patient = make_patient(clinic, legal_given_name="Quinn", legal_family_name="Rossi-Synth")
    other = make_patient(clinic, legal_given_name="Sage", legal_family_name="Sato-Synth")
    tz = clinic.tz
    today = datetime.datetime.now(tz).date()
    monday = today + datetime.timedelta(days=14 - today.weekday())

    auth.sign_in(page, prescriber)
    page.goto(f"/patients/{patient.pk}/plan/")
    page.get_by_role("link", name="New plan").click()
    page.get_by_label("Protocol").select_option("esketamine-trd")
    page.get_by_label("Today's body weight (kg)").fill("72")
    page.get_by_label("Start date").fill(monday.isoformat())
    page.get_by_label("Goals").fill("Response by week 4 (synthetic)")
    page.get_by_role("button", name="Calculate").click()
    expect(page.get_by_text("56 mg ÷ 28 mg per device = 2 device(s)")).to_be_visible()
    shoot(page, "plans-01-plan-form")
    page.get_by_role("button", name="Sign and save").click()
    expect(
        page.get_by_role("heading", name=re.compile("Treatment plan: Esketamine"))
    ).to_be_visible()
    expect(page.locator("figcaption").get_by_text("Population estimate")).to_be_visible()
    page.get_by_label("New status").select_option("active")
    page.get_by_role("button", name="Change status").click()
    expect(page.get_by_text("Status changed.")).to_be_visible()
    shoot(page, "plans-02-plan-active")

    page.get_by_role("link", name="Book the course").click()
    page.get_by_label("First visit on or after").fill(monday.isoformat())
    page.get_by_role("button", name="Propose visits").click()
    expect(page.get_by_label("Visit 8 start")).to_be_visible()
    shoot(page, "plans-03-course-proposal")
    page.get_by_role("button", name="Confirm and book all").click()
    expect(page.get_by_text("8 visits booked.")).to_be_visible()
    expect(page.get_by_text(re.compile(r"0\s+completed of\s+8\s+planned"))).to_be_visible()

    page.goto(f"/scheduling/?date={monday.isoformat()}")
    expect(
        page.get_by_role("link", name=re.compile("Esketamine session .* Quinn Rossi-Synth")).first
    ).to_be_visible()
    shoot(page, "plans-04-calendar-week")

    # Someone else takes the only chair the next day at 14:00; moving visit 1 there is refused.
    types = ensure_types(clinic)
    north = clinic.locations.get(name="North")
    blocker = datetime.datetime.combine(
        monday + datetime.timedelta(days=1), datetime.time(14), tzinfo=tz
    )
    schedule.book(
        clinic=clinic,
        actor=prescriber,
        patient=other,
        type=types["esketamine-session"],
        location=north,
        start=blocker,
        chair=north.chairs.get(name="Chair 1"),
    )
    page.get_by_role(
        "link", name=re.compile("Esketamine session .* Quinn Rossi-Synth")
    ).first.click()
    page.get_by_label(re.compile("New date and time")).fill(blocker.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Reason for the move").fill("Patient asked (synthetic)")
    page.get_by_role("button", name="Reschedule").click()
    expect(page.get_by_text("Refused: the new time conflicts.")).to_be_visible()
    expect(page.get_by_text(re.compile("Chair 1 is booked"))).to_be_visible()
    shoot(page, "plans-05-reschedule-refused")
    assert _errors(console_log) == [], console_log


def test_owner_sets_staff_hours_durations_and_removes_a_closure(
    page, live_server, auth, shoot, console_log, clinic, make_user
):
    from ketaflow.accounts.roles import NURSE, OWNER

    owner = make_user(clinic, OWNER)
    nurse = make_user(clinic, NURSE)
    closed = clinic.today() + datetime.timedelta(days=200)  # within the planning window
    schedule.add_closure(clinic=clinic, actor=owner, date=closed, reason="Synthetic holiday")
    auth.sign_in(page, owner)
    page.goto("/scheduling/settings/")
    esk = page.get_by_label("Esketamine session (at least 2 h monitoring) minutes")
    esk.fill("120")
    esk.locator("xpath=..").get_by_role("button", name="Save").click()
    expect(page.get_by_text(re.compile("lasts at least 130 min"))).to_be_visible()
    shoot(page, "plans-06-scheduling-settings")
    page.get_by_role("button", name=f"Remove closure on {closed.isoformat()}").click()
    expect(page.get_by_text(f"Closure on {closed.isoformat()} removed.")).to_be_visible()
    page.get_by_role("link", name=f"Edit hours of {nurse}").click()
    page.get_by_label("Monday start").fill("09:00")
    page.get_by_label("Monday end").fill("13:00")
    page.get_by_role("button", name="Save working hours").click()
    expect(page.get_by_text("Mon 09:00-13:00")).to_be_visible()
    shoot(page, "plans-07-staff-hours")
    assert _errors(console_log) == [], console_log


def test_a_100_mg_per_kg_plan_cannot_be_signed_in_the_browser(
    page, live_server, auth, shoot, console_log, clinic, make_user, make_patient
):
    """Issue 17: the 100 mg/kg IV plan (8,200 mg for 82 kg, justification "x") is refused,
    naming the absolute ceiling, even with a justification of real length; nothing is signed."""
    from ketaflow.plans.models import PlanVersion

    prescriber = make_user(clinic, PRESCRIBER)
    patient = make_patient(clinic, legal_given_name="Rowan", legal_family_name="Ito-Synth")
    auth.sign_in(page, prescriber)
    page.goto(f"/patients/{patient.pk}/plan/")
    page.get_by_role("link", name="New plan").click()
    page.get_by_label("Protocol").select_option("iv-ketamine-clinic-6")
    page.get_by_label("Today's body weight (kg)").fill("82")
    page.locator("#id_dose_value").fill("100")
    page.get_by_label("Justification to exceed the clinic's mg/kg maximum").fill(
        "Partial response at 1.0 mg/kg after three infusions (synthetic)"
    )
    page.get_by_label("Start date").fill(datetime.date.today().isoformat())
    page.get_by_label("Goals").fill("Response (synthetic)")
    page.get_by_role("button", name="Sign and save").click()
    expect(
        page.get_by_text(re.compile("above the absolute ceiling of 2 mg/kg")).first
    ).to_be_visible()
    shoot(page, "plans-05-ceiling-refused")
    assert not PlanVersion.objects.filter(plan__patient=patient).exists()
    assert _errors(console_log) == []
