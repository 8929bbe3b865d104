"""The safety path in the browser: a patient answers PHQ-9 on a phone with item 9 = 1, sees
crisis resources; the prescriber sees the alert, acknowledges it and clears the risk flag."""

import datetime
import re

import pytest
from playwright.sync_api import expect

from ketaflow.audit.models import AuditEvent
from ketaflow.measures import services
from ketaflow.measures.models import Administration, RiskFlag, SafetyAlert

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}
# Answers for PHQ-9 items 1-8 (option labels as published), then item 9 = "Several days" (1).
ANSWERS = [
    "More than half the days",
    "Several days",
    "Nearly every day",
    "Several days",
    "Not at all",
    "More than half the days",
    "Several days",
    "Not at all",
]


def _errors(entries):
    return [e for e in entries if e[0] in {"error", "pageerror"}]


def test_phone_self_report_item9_alert_acknowledge_and_clear(
    browser, page, live_server, auth, shoot, console_log, clinic, staff, patient
):
    clinic.emergency_phone = "911"
    clinic.crisis_line = "988 Suicide & Crisis Lifeline: call or text 988"
    clinic.save()
    prescriber = staff["prescriber"]
    patient.prescriber = prescriber
    patient.save()
    _link, raw = services.create_link(patient=patient, actor=staff["nurse"], instruments=["phq9"])

    # The patient's phone: no account, small screen.
    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="en-US")
    mobile = phone.new_page()
    problems = []
    mobile.on("console", lambda m: problems.append((m.type, m.text, "")))
    mobile.on("pageerror", lambda exc: problems.append(("pageerror", str(exc), "")))
    mobile.goto(f"{live_server.url}/measures/r/{raw}/")
    expect(mobile.get_by_role("heading", level=1)).to_have_text("PHQ-9")
    expect(mobile.get_by_text("Questionnaire 1 of 1")).to_be_visible()
    expect(mobile.get_by_text(patient.legal_family_name)).to_have_count(0)
    shoot(mobile, "m01-phone-questionnaire")
    for n, label in enumerate(ANSWERS, start=1):
        mobile.locator(f"#q-{n}").get_by_label(label).check()
    mobile.locator("#q-9").get_by_label("Several days").check()
    expect(mobile.locator("[data-answered]")).to_have_text("9")  # progress follows the answers
    shoot(mobile, "m02-phone-answered")
    mobile.get_by_role("button", name="Send my answers").click()

    crisis = mobile.get_by_role("alert")
    expect(crisis.get_by_role("heading", name="Help is available right now")).to_be_visible()
    expect(crisis.get_by_role("link", name="911")).to_have_attribute("href", "tel:911")
    expect(crisis).to_contain_text("988 Suicide & Crisis Lifeline: call or text 988")
    shoot(mobile, "m03-phone-crisis-resources")
    assert _errors(problems) == [], problems
    # The link is single-use.
    mobile.goto(f"{live_server.url}/measures/r/{raw}/")
    expect(mobile.get_by_role("heading", level=1)).to_have_text("This link is not valid any more")
    shoot(mobile, "m04-phone-link-used")
    phone.close()

    adm = Administration.objects.get()
    assert (adm.total, adm.answers["9"], adm.source) == (11, 1, "self_report")
    alert = SafetyAlert.objects.get()

    # The prescriber: the alert is on Today and in Alerts.
    auth.sign_in(page, prescriber)
    expect(page).to_have_url(f"{live_server.url}/today/")
    panel = page.locator("section.alerts-panel")
    expect(panel.get_by_role("heading", name="Safety alerts")).to_be_visible()
    expect(panel).to_contain_text(patient.display_name)
    expect(panel).to_contain_text(re.compile(r"item 9 \(.*\) answered 1 \(Several days\)"))
    shoot(page, "m05-today-alert")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Alerts").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Safety alerts")
    page.get_by_role("button", name=f"Acknowledge alert for {patient.display_name}").click()
    expect(page.get_by_role("status")).to_contain_text("Alert acknowledged")
    expect(page.get_by_text("No unacknowledged safety alert.")).to_be_visible()
    shoot(page, "m06-alert-acknowledged")

    # The chart carries the risk flag on every page until cleared with a documented action.
    page.goto(f"{live_server.url}/patients/{patient.pk}/measures/")
    banner = page.locator(".risk-flag")
    expect(banner).to_contain_text(
        re.compile(r"Risk flag: suicidality, (same day|urgent|immediate)\.")
    )
    expect(page.locator("svg.trend")).to_have_count(1)
    shoot(page, "m07-chart-measures-flagged")
    page.goto(f"{live_server.url}/patients/{patient.pk}/notes/")
    expect(page.locator(".risk-flag")).to_be_visible()
    page.locator(".risk-flag").get_by_role("link", name="Review and clear").click()
    expect(page).to_have_url(re.compile(r"/measures/flags/\d+/clear/"))
    page.get_by_role("button", name="Clear the risk flag").click()  # nothing documented yet
    expect(page.locator(".errorlist").first).to_be_visible()
    page.get_by_label("Action taken").select_option("contacted")
    page.get_by_label("What was done").fill(
        "Phoned the patient within the hour; no intent or plan; safety plan reviewed."
    )
    shoot(page, "m08-clear-flag-form")
    page.get_by_role("button", name="Clear the risk flag").click()
    expect(page.get_by_role("status")).to_contain_text("Risk flag cleared")
    expect(page.locator(".risk-flag")).to_have_count(0)
    shoot(page, "m09-chart-cleared")
    assert _errors(console_log) == [], console_log

    alert.refresh_from_db()
    flag = RiskFlag.objects.get()
    assert alert.acknowledged_by == prescriber and flag.cleared_by == prescriber
    assert flag.clear_action == "contacted"
    audited = AuditEvent.objects.filter(
        object_type__in=["measures.safetyalert", "measures.riskflag"], actor=prescriber
    )
    # One write each (acknowledge, clear); the lists and the flag page are audited reads.
    assert audited.exclude(action="read").count() == 2
    assert audited.filter(action="read").exists()


def test_measures_tab_shows_one_block_per_course_with_markers_and_record_form_course(
    page, live_server, auth, shoot, console_log, clinic, staff, patient
):
    """Two courses (treatment plans) with completed dosing visits: each has its own baseline,
    badges with their rules and ▲ markers; the record form offers the patient's plans."""
    from decimal import Decimal

    from ketaflow.clinical import instruments, protocols
    from ketaflow.plans.models import PlanVersion, TreatmentPlan
    from ketaflow.scheduling.defaults import ROUTE_TYPE, ensure_types
    from ketaflow.scheduling.models import Appointment

    t0 = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=60)
    plans = []
    for n, code in enumerate(("iv-ketamine-clinic-6", "esketamine-trd")):
        protocol = protocols.get(code)
        plan = TreatmentPlan.objects.create(
            clinic=clinic, patient=patient, phase="induction", status="active"
        )
        plan.current = PlanVersion.objects.create(
            clinic=clinic,
            plan=plan,
            number=1,
            protocol_code=code,
            protocol_name=protocol.name,
            protocol_source=protocol.source,
            protocol_data=protocols.to_dict(protocol),
            route=protocol.route,
            prescriber=staff["prescriber"],
            phase="induction",
            dose_value=Decimal("0.5"),
            dose_unit="mg/kg",
            dose_mg=Decimal(40),
            weight_kg=Decimal(80),
            calculation={},
            start_date=(t0 + datetime.timedelta(days=30 * n)).date(),
            goals="Response (synthetic)",
            signed_by=staff["prescriber"],
            signed_at=t0,
        )
        plan.save()
        plans.append(plan)
        start = t0 + datetime.timedelta(days=30 * n)
        kind = ensure_types(clinic)[ROUTE_TYPE[protocol.route]]
        for d in (0, 3, 7):
            Appointment.objects.create(
                clinic=clinic,
                patient=patient,
                type=kind,
                location=clinic.locations.first(),
                start=start + datetime.timedelta(days=d),
                end=start + datetime.timedelta(days=d, hours=2),
                status="completed",
                plan=plan,
                booked_by=staff["front_desk"],
            )
        for hours, level in ((-2, 3), (20, 1), (24 * 8, 1 if n == 0 else 2)):
            answers = {str(k): level for k in range(1, 9)} | {"9": 0}
            result = instruments.score("phq9", answers)
            Administration.objects.create(
                clinic=clinic,
                patient=patient,
                plan=plan,
                instrument="phq9",
                instrument_version="1",
                answers=result.items,
                total=result.total,
                severity=result.severity,
                source="self_report",
                taken_at=start + datetime.timedelta(hours=hours),
            )
    auth.sign_in(page, staff["nurse"])
    page.goto(f"{live_server.url}/patients/{patient.pk}/measures/")
    courses = page.locator("section.course")
    expect(courses).to_have_count(2)
    expect(courses.nth(0).get_by_role("heading", level=2)).to_contain_text("Course: Plan")
    expect(courses.nth(0)).to_contain_text("3 completed treatments")
    first_labels = courses.nth(0).locator(".ob-yes .ob-label")
    expect(first_labels.filter(has_text=re.compile(r"^Response: yes$"))).to_have_count(1)
    expect(first_labels.filter(has_text=re.compile(r"^Baseline 24")).first).to_be_visible()
    second_labels = courses.nth(1).locator(".ob-no .ob-label")
    expect(second_labels.filter(has_text=re.compile(r"^Response: no$"))).to_have_count(1)
    expect(courses.nth(0).locator(".treatment")).to_have_count(3)
    shoot(page, "m10-measures-per-course")
    page.goto(f"{live_server.url}/measures/patients/{patient.pk}/record/?instrument=phq9")
    course = page.get_by_label("Treatment course")
    expect(course.locator("option")).to_have_count(3)  # no course + both plans
    shoot(page, "m11-record-with-course")
    assert _errors(console_log) == [], console_log
