"""Browser tests: the real pages in headless Chromium against the live server (synthetic data)."""

import contextlib
import datetime
import re
import time

import pytest
from django.apps import apps
from django.contrib.sessions.backends.db import SessionStore
from django_otp.plugins.otp_static.models import StaticToken
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from ketaflow.accounts.middleware import LAST_SEEN
from ketaflow.accounts.roles import NURSE, PRESCRIBER
from ketaflow.audit.models import AuditEvent
from ketaflow.patients.models import Patient
from ketaflow.web.totp import current_code

pytestmark = pytest.mark.e2e

CHART_TABS = [
    ("Assessment", "assessment", "No assessment recorded yet"),
    ("Plan", "plan", "No treatment plan yet"),
    ("Sessions", "sessions", "No treatment sessions yet"),
    ("Measures", "measures", "No questionnaires scored yet"),
    ("Notes", "notes", "No notes yet"),
    ("Documents", "documents", "No documents yet"),
]
PHONE = re.compile(r"^Phone:?$")
NEUTRAL_FAILURE = re.compile(r"Sign-in failed\. Either the email or password is not right")


def _csp_problems(entries):
    return [entry for entry in entries if "content security policy" in entry[1].lower()]


def _errors(entries):
    """Console errors and uncaught exceptions."""
    return [entry for entry in entries if entry[0] in {"error", "pageerror"}]


def test_sign_in_search_open_chart_and_register(
    page, live_server, auth, shoot, console_log, clinic, make_user, make_patient, patient
):
    nurse = make_user(clinic, NURSE)
    make_patient(clinic, legal_given_name="Morgan", legal_family_name="Okafor-Synth")

    # Sign in: password, then the authenticator code.
    page.goto("/accounts/login/")
    expect(page).to_have_title(re.compile(r"^Sign in"))
    expect(page.get_by_label("Email")).to_be_focused()  # autofocus
    shoot(page, "01-sign-in")
    assert _csp_problems(console_log) == [], console_log
    assert _errors(console_log) == [], console_log
    # Control: the policy is in force and the listener sees its reports, so the checks above can fail.
    with contextlib.suppress(PlaywrightError):  # Playwright reports the blocked script as an error
        page.add_script_tag(content="window.kfInline = true;")
    assert page.evaluate("window.kfInline") is None
    assert _csp_problems(console_log), console_log
    console_log.clear()

    auth.submit_password(page, nurse.email)
    expect(page.get_by_role("heading", name="Enter your sign-in code")).to_be_visible()
    shoot(page, "02-mfa-code")
    auth.submit_code(page, auth.totp_code(nurse))

    expect(page).to_have_url(f"{live_server.url}/today/")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Today at {clinic.name}")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Today")).to_have_attribute("aria-current", "page")
    shoot(page, "03-today")

    # Patients: live search (htmx) narrows the list without leaving the page.
    nav.get_by_role("link", name="Patients").click()
    expect(page).to_have_url(f"{live_server.url}/patients/")
    results = page.locator("#results")
    expect(results.get_by_role("link")).to_have_count(2)  # no query: every patient, by name
    page.evaluate("window.kfSamePage = true")
    with page.expect_response(
        lambda r: (
            r.request.method == "POST"
            and r.url.endswith("/patients/")
            and r.request.headers.get("hx-request") == "true"
        )
    ) as search:
        page.locator("#q").press_sequentially("alva", delay=40)
    assert search.value.status == 200
    expect(results.get_by_role("heading")).to_have_text("1 result for “alva”")
    expect(results.get_by_role("link")).to_have_count(1)
    chart_link = results.get_by_role("link", name="Alvarez-Synth, Riley")
    expect(chart_link).to_be_visible()
    expect(results).to_contain_text(patient.mrn)
    expect(results).not_to_contain_text("Okafor-Synth")
    assert page.evaluate("window.kfSamePage") is True, (
        "the search reloaded the page instead of swapping"
    )
    shoot(page, "04-patients-search")

    # The chart: Overview facts, then every tab.
    chart_link.click()
    chart_url = f"{live_server.url}/patients/{patient.pk}/"
    expect(page).to_have_url(chart_url)
    expect(page.get_by_role("heading", level=1)).to_have_text("Riley Alvarez-Synth")
    head = page.locator(".patient-head")
    expect(head).to_contain_text(f"MRN {patient.mrn}")
    expect(head).to_contain_text(f"Born {patient.date_of_birth:%Y-%m-%d}")
    demographics = page.get_by_role("region", name="Demographics")
    for term, value in [
        ("Legal name", "Riley Alvarez-Synth"),
        ("Date of birth", f"{patient.date_of_birth:%Y-%m-%d}"),
        ("Sex assigned at birth", "Female"),
        ("Gender identity", "Not recorded"),
    ]:
        expect(demographics.locator(f"dt:text-is('{term}') + dd")).to_have_text(value)
    tabs = page.get_by_role("navigation", name="Chart sections")
    expect(tabs.get_by_role("link", name="Overview")).to_have_attribute("aria-current", "page")
    shoot(page, "05-chart-overview")

    for n, (label, slug, empty_title) in enumerate(CHART_TABS, start=6):
        if slug == "notes" and apps.is_installed("ketaflow.therapy"):
            # The therapy app's section (its actions: new note, goals, other clinicians)
            # takes the place of the empty state.
            empty_title = "Therapy notes"
        tabs.get_by_role("link", name=label, exact=True).click()
        expect(page).to_have_url(f"{chart_url}{slug}/")
        expect(tabs.get_by_role("link", name=label, exact=True)).to_have_attribute(
            "aria-current", "page"
        )
        expect(page.get_by_role("heading", level=2)).to_have_text(empty_title)
        shoot(page, f"{n:02d}-chart-{slug}")

    tabs.get_by_role("link", name="Activity").click()
    expect(page).to_have_url(f"{chart_url}activity/")
    expect(page.get_by_role("heading", name="Who opened or changed this chart")).to_be_visible()
    activity = page.locator("table tbody tr")
    # Newest first: this very page view, then the earlier tab views and the overview.
    expect(activity.first).to_contain_text(nurse.email)
    expect(activity.first).to_contain_text("read")
    expect(activity.first).to_contain_text("activity")
    own_overview_read = activity.filter(has_text=nurse.email).filter(has_text="· overview")
    expect(own_overview_read).to_have_count(1)
    expect(activity.filter(has_text=nurse.email)).to_have_count(len(CHART_TABS) + 2)
    shoot(page, "12-chart-activity")

    # Register a patient: one invalid field (date of birth in the future), then fix it.
    nav.get_by_role("link", name="Patients").click()
    page.get_by_role("link", name="Register a patient").click()
    expect(page).to_have_url(f"{live_server.url}/patients/new/")
    future = datetime.date.today() + datetime.timedelta(days=400)
    page.get_by_label("Legal first name").fill("Quinn")
    page.get_by_label("Legal last name").fill("Nakamura-Synth")
    page.get_by_label("Date of birth").fill(future.isoformat())
    page.get_by_label("Sex assigned at birth").select_option("intersex")
    page.get_by_label("Email").fill("quinn.nakamura@example.test")
    page.get_by_label(PHONE).fill("+1 555 0100 200")
    shoot(page, "13-register-filled")
    page.get_by_role("button", name="Register patient").click()

    expect(page).to_have_url(f"{live_server.url}/patients/new/")
    summary = page.locator(".error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_contain_text("Please correct 1 problem:")
    expect(summary).to_contain_text("Date of birth cannot be in the future.")
    dob = page.get_by_label("Date of birth")
    expect(dob).to_have_attribute("aria-invalid", "true")
    # Next to the field: the message is tied to the date input (read out with it) and comes
    # right before it. (Where it *appears* on a wide screen: see the layout test below.)
    dob_error = page.locator(".errorlist").filter(has_text="Date of birth cannot be in the future.")
    expect(dob_error).to_have_count(1)
    error_id = dob_error.get_attribute("id")
    assert error_id
    expect(dob).to_have_attribute("aria-describedby", re.compile(rf"(^|\s){error_id}(\s|$)"))
    assert dob_error.evaluate("(el) => el.nextElementSibling?.id") == "id_date_of_birth"
    expect(page.get_by_label("Legal first name")).to_have_value("Quinn")
    expect(page.get_by_label("Legal last name")).to_have_value("Nakamura-Synth")
    expect(dob).to_have_value(future.isoformat())
    expect(page.get_by_label("Sex assigned at birth")).to_have_value("intersex")
    expect(page.get_by_label("Email")).to_have_value("quinn.nakamura@example.test")
    expect(page.get_by_label(PHONE)).to_have_value("+1 555 0100 200")
    assert not Patient.objects.filter(legal_family_name="Nakamura-Synth").exists()
    shoot(page, "14-register-error")

    dob.fill("1991-04-12")
    page.get_by_role("button", name="Register patient").click()

    created = Patient.objects.get(clinic=clinic, legal_family_name="Nakamura-Synth")
    expect(page).to_have_url(f"{live_server.url}/patients/{created.pk}/")
    assert created.mrn
    assert created.date_of_birth == datetime.date(1991, 4, 12)
    assert created.email == "quinn.nakamura@example.test"
    expect(page.locator(".messages")).to_contain_text(
        f"Quinn Nakamura-Synth is registered with MRN {created.mrn}."
    )
    expect(page.locator(".patient-head")).to_contain_text(f"MRN {created.mrn}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Quinn Nakamura-Synth")
    shoot(page, "15-registered-chart")

    assert _csp_problems(console_log) == [], console_log
    assert _errors(console_log) == [], console_log


def test_mfa_enrolment_in_browser(page, live_server, auth, shoot, clinic, make_user):
    user = make_user(clinic, PRESCRIBER, totp=False)

    page.goto("/accounts/login/")
    auth.submit_password(page, user.email)
    expect(page).to_have_url(re.compile(r"/accounts/mfa/enrol/"))
    expect(page.get_by_role("heading", name="Set up two-step sign-in")).to_be_visible()
    qr = page.get_by_role("img", name=re.compile("QR code"))
    expect(qr).to_have_attribute("src", re.compile(r"^data:image/svg\+xml"))
    assert qr.evaluate("(img) => img.complete && img.naturalWidth > 0"), (
        "the QR code did not render"
    )
    shown = page.locator("#totp-secret").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-7]{4}( [A-Z2-7]{1,4})+", shown), shown
    secret = shown.replace(" ", "")
    shoot(page, "20-mfa-enrol")

    page.get_by_label("6-digit code").fill(
        "000000" if current_code(secret) != "000000" else "111111"
    )
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator(".error-summary")).to_contain_text("The code is not right")
    expect(page.get_by_label("6-digit code")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#totp-secret")).to_have_text(shown)  # the same pending key, not a new one
    shoot(page, "21-mfa-enrol-wrong-code")

    # django-otp throttles a device for 1 s after a failed code; a person takes longer to retype.
    time.sleep(1.1)
    page.get_by_label("6-digit code").fill(current_code(secret))
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", name="Save your recovery codes")).to_be_visible()
    codes = page.locator("#recovery-codes li").all_inner_texts()
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert all(re.fullmatch(r"[0-9a-f]{10}", code) for code in codes), codes
    assert StaticToken.objects.filter(device__user=user).count() == 10
    shoot(page, "22-recovery-codes")

    page.get_by_role("link", name="I have saved them — continue").click()
    expect(page).to_have_url(f"{live_server.url}/today/")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Today at {clinic.name}")
    shoot(page, "23-today-after-enrolment")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{live_server.url}/accounts/login/")
    expect(page.locator(".messages")).to_contain_text("You are signed out.")
    page.goto("/today/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/today/"))

    # Sign in again with a recovery code instead of the authenticator.
    auth.submit_password(page, user.email)
    auth.submit_code(page, codes[3])
    expect(page).to_have_url(f"{live_server.url}/today/")
    expect(page.locator(".messages")).to_contain_text(
        "You used a recovery code. Each code works once."
    )
    shoot(page, "24-today-recovery-code")
    assert not StaticToken.objects.filter(device__user=user, token=codes[3]).exists()
    assert AuditEvent.objects.filter(
        actor=user, action="login", detail__second_factor="recovery-code"
    ).exists()


def test_lockout_after_repeated_failures(page, live_server, auth, shoot, clinic, make_user):
    user = make_user(clinic, NURSE)
    page.goto("/accounts/login/")
    for attempt in range(5):
        auth.submit_password(page, user.email, f"wrong password {attempt}")
        expect(page).to_have_url(re.compile(r"/accounts/login/"))
        expect(page.locator(".error-summary")).to_contain_text(NEUTRAL_FAILURE)
        expect(page.get_by_label("Email")).to_have_value(user.email)
    shoot(page, "30-sign-in-wrong-password")
    wrong_text = page.locator(".error-summary").inner_text()

    auth.submit_password(page, user.email, auth.password)
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    expect(page.locator(".error-summary")).to_have_text(wrong_text)  # nothing tells it apart
    expect(page.get_by_label("Code")).to_have_count(0)
    shoot(page, "31-sign-in-locked")

    page.goto("/today/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))  # not signed in

    events = AuditEvent.objects.filter(actor=user)
    assert events.filter(action="login-failed").count() == 6
    assert events.filter(action="lockout").count() == 1
    assert events.filter(action="login").count() == 0
    last = events.filter(action="login-failed").order_by("-seq").first()
    assert last.detail == {"stage": "locked", "locked": True}


def test_idle_timeout_returns_to_place(page, live_server, auth, shoot, clinic, staff, patient):
    nurse = staff[NURSE]
    auth.sign_in(page, nurse)
    expect(page).to_have_url(f"{live_server.url}/today/")

    chart_url = f"{live_server.url}/patients/{patient.pk}/measures/"
    page.goto(chart_url)
    expect(page.get_by_role("heading", level=1)).to_have_text("Riley Alvarez-Synth")
    shoot(page, "40-chart-before-idle")

    # Idle for longer than the clinic's limit (15 minutes by default).
    assert clinic.idle_timeout_minutes == 15
    cookie = next(c for c in page.context.cookies() if c["name"] == "sessionid")
    session = SessionStore(session_key=cookie["value"])
    assert LAST_SEEN in session
    session[LAST_SEEN] = time.time() - 16 * 60
    session.save()

    page.reload()
    expect(page).to_have_url(re.compile(r"/accounts/login/\?"))
    assert "expired=idle" in page.url
    assert f"next=%2Fpatients%2F{patient.pk}%2Fmeasures%2F" in page.url
    expect(
        page.get_by_role("status").filter(
            has_text="You were signed out after a period of inactivity."
        )
    ).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_have_count(0)
    shoot(page, "41-sign-in-after-idle")

    auth.sign_in(page, nurse, start=None)
    expect(page).to_have_url(chart_url)
    expect(page.get_by_role("heading", level=1)).to_have_text("Riley Alvarez-Synth")
    shoot(page, "42-chart-after-idle")


def test_other_clinic_chart_is_not_found(
    page, live_server, auth, shoot, other_clinic, make_user, patient
):
    outsider = make_user(other_clinic, NURSE)
    auth.sign_in(page, outsider)
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Today at {other_clinic.name}")

    response = page.goto(f"/patients/{patient.pk}/")
    assert response is not None
    assert response.status == 404
    expect(page).to_have_title(re.compile(r"^Not found"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    expect(page.locator("main")).not_to_contain_text("Alvarez")
    shoot(page, "50-other-clinic-not-found")

    response = page.goto(f"/patients/{patient.pk}/activity/")
    assert response.status == 404
    assert not AuditEvent.objects.filter(patient=patient, actor=outsider).exists()


@pytest.mark.parametrize("viewport", [{"width": 390, "height": 844}])
def test_phone_viewport_patient_list(
    browser, live_server, auth, shoot, clinic, make_user, make_patient, patient, viewport
):
    context = browser.new_context(
        base_url=live_server.url,
        viewport=viewport,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    page = context.new_page()
    try:
        make_patient(
            clinic,
            legal_given_name="Alexandria-Josephine",
            legal_family_name="Montgomery-Fitzwilliam-Synth",
            preferred_name="Alex",
        )
        nurse = make_user(clinic, NURSE)

        def fits() -> tuple[int, int]:
            return page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")

        page.goto("/accounts/login/")
        width, inner = fits()
        assert inner == 390
        assert width <= inner + 1, f"sign-in page overflows: {width} > {inner}"
        shoot(page, "60-phone-sign-in")

        auth.sign_in(page, nurse, start=None)
        page.goto("/patients/")
        expect(page.locator("#results").get_by_role("link")).to_have_count(2)
        width, inner = fits()
        assert width <= inner + 1, f"patient list overflows: {width} > {inner}"
        # The search box and button are on screen and usable at this width.
        for control in (page.locator("#q"), page.get_by_role("button", name="Search")):
            box = control.bounding_box()
            assert box is not None
            assert box["x"] >= 0
            assert box["x"] + box["width"] <= inner + 1
        page.locator("#q").fill("montg")
        page.get_by_role("button", name="Search").click()
        expect(page.locator("#results").get_by_role("heading")).to_have_text("1 result for “montg”")
        width, inner = fits()
        assert width <= inner + 1, f"patient search results overflow: {width} > {inner}"
        shoot(page, "61-phone-patients")
    finally:
        context.close()


FIELD_LAYOUT_JS = """
(form) => {
  const problems = [];
  for (const control of form.querySelectorAll('.form-grid input, .form-grid select, .form-grid textarea')) {
    const label = form.querySelector(`label[for="${control.id}"]`);
    if (!label) { problems.push(`${control.id}: no label`); continue; }
    const l = label.getBoundingClientRect(), c = control.getBoundingClientRect();
    const stacked = Math.abs(l.left - c.left) <= 2 && l.bottom <= c.top + 1 && c.top - l.bottom < 90;
    if (!stacked) {
      problems.push(`${control.id}: label at (${l.left|0},${l.top|0}), control at (${c.left|0},${c.top|0})`);
    }
    const error = document.getElementById(`${control.id}_error`);
    if (error) {
      const e = error.getBoundingClientRect();
      if (Math.abs(e.left - c.left) > 2 || e.top < l.bottom - 1 || e.bottom > c.top + 1) {
        problems.push(`${control.id}: error at (${e.left|0},${e.top|0}) is not between its label and field`);
      }
    }
  }
  return problems;
}
"""


def test_register_form_fields_sit_under_their_labels(
    page, live_server, auth, shoot, clinic, make_user
):
    nurse = make_user(clinic, NURSE)
    auth.sign_in(page, nurse)
    page.goto("/patients/new/")
    page.get_by_label("Legal first name").fill("Quinn")
    page.get_by_label("Legal last name").fill("Layout-Synth")
    page.get_by_label("Date of birth").fill(
        (datetime.date.today() + datetime.timedelta(days=30)).isoformat()
    )
    page.get_by_label("Sex assigned at birth").select_option("unknown")
    page.get_by_role("button", name="Register patient").click()
    expect(page.locator(".error-summary")).to_contain_text("Date of birth cannot be in the future.")
    shoot(page, "16-register-layout")
    problems = page.locator("form.stack").evaluate(FIELD_LAYOUT_JS)
    assert problems == [], "\n".join(problems)
