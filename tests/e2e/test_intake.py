"""Browser test of the intake flow: public request → patient → assessment → decision → consent."""

import re

import pytest
from playwright.sync_api import expect

from ketaflow.accounts.roles import FRONT_DESK, PRESCRIBER
from ketaflow.intake import selectors
from ketaflow.intake.models import ConsultationRequest
from ketaflow.patients.models import Patient

pytestmark = pytest.mark.e2e


def _errors(entries):
    return [
        e for e in entries if e[0] in {"error", "pageerror"} or "security policy" in e[1].lower()
    ]


def _signed_in_page(browser, live_server, auth, user):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    auth.sign_in(page, user)
    return page


def test_request_to_consent(
    page, browser, live_server, auth, shoot, console_log, clinic, make_user
):
    front_desk = make_user(clinic, FRONT_DESK)
    prescriber = make_user(clinic, PRESCRIBER)

    # 1. The public page, without signing in.
    page.goto(f"/intake/request/{clinic.slug}/")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Request a consultation at {clinic.name}"
    )
    page.get_by_label("First name").fill("Jamie")
    page.get_by_label("Last name").fill("Browser-Synth")
    page.get_by_label("Date of birth").fill("1985-04-03")
    page.get_by_label("Phone:", exact=True).fill("555 010 7777")
    page.get_by_label("Email:", exact=True).fill("jamie.browser@example.test")
    page.get_by_label("Depression", exact=True).check()
    for name, value in [
        ("diagnosed_depression", "yes"),
        ("antidepressant_helped", "no"),
        ("antidepressant_intolerance", "no"),
        ("therapy_tried", "yes"),
        ("referred", "no"),
        ("pregnant", "no"),
        ("heart_bp", "no"),
        ("psychosis_mania", "no"),
        ("substance_use", "no"),
    ]:
        page.locator(f'input[name="{name}"][value="{value}"]').check()
    page.get_by_label("How many different antidepressant medicines have you tried?").fill("3")
    expect(page.get_by_label("Leave this field empty")).not_to_be_in_viewport()  # the honeypot
    shoot(page, "i01-public-request")
    page.get_by_role("button", name="Send my request").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Request a consultation")
    expect(page.get_by_text("Please tick the box so that we may contact you")).to_have_count(2)
    expect(page.get_by_label("First name")).to_have_value("Jamie")
    page.get_by_label("I agree that the clinic may contact me").check()
    page.get_by_role("button", name="Send my request").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Thank you: your request has been received"
    )
    shoot(page, "i02-public-thanks")
    item = ConsultationRequest.objects.get(family_name="Browser-Synth")
    assert item.summary == "likely"

    # 2. Front desk: Today panel, queue, one click to a prospective patient.
    desk = _signed_in_page(browser, live_server, auth, front_desk)
    expect(
        desk.get_by_role("heading", name=re.compile(r"New consultation requests \(1\)"))
    ).to_be_visible()
    desk.get_by_role("navigation", name="Main").get_by_role("link", name="Intake").click()
    expect(desk.get_by_role("cell", name=re.compile("Likely candidate"))).to_be_visible()
    shoot(desk, "i03-intake-queue")
    desk.get_by_role("link", name="Jamie Browser-Synth").click()
    expect(desk.get_by_text("Unconfirmed:")).to_be_visible()
    shoot(desk, "i04-request-detail")
    desk.get_by_role("button", name="Create prospective patient").click()
    expect(desk.get_by_text(re.compile(r"registered as a prospective patient"))).to_be_visible()
    patient = Patient.objects.get(legal_family_name="Browser-Synth")
    assert patient.status == "prospective" and patient.phone == "555 010 7777"

    # 3. Prescriber: the assessment with trials, medications and vitals; the rules show reasons.
    doc = _signed_in_page(browser, live_server, auth, prescriber)
    doc.goto(f"/patients/{patient.pk}/assessment/")
    doc.get_by_role("link", name="Start assessment").click()
    doc.locator('[name="dx-0-code"]').fill("F33.2")
    doc.locator('[name="dx-0-description"]').fill("Major depressive disorder, recurrent, severe")
    for i, (drug, outcome) in enumerate(
        [("sertraline", "no_response"), ("bupropion", "partial_response")]
    ):
        doc.locator(f'[name="trial-{i}-drug"]').fill(drug)
        doc.locator(f'[name="trial-{i}-weeks"]').fill("8")
        doc.locator(f'[name="trial-{i}-adequate_dose"]').select_option("yes")
        doc.locator(f'[name="trial-{i}-current_episode"]').select_option("yes")
        doc.locator(f'[name="trial-{i}-outcome"]').select_option(outcome)
    doc.locator('[name="med-0-name"]').fill("clonazepam")
    doc.locator('[name="med-0-med_class"]').select_option("benzodiazepine")
    doc.get_by_label("Systolic BP (mmHg)").fill("128")
    doc.get_by_label("Diastolic BP (mmHg)").fill("82")
    doc.get_by_label("Weight (kg)").fill("70")
    doc.get_by_label("Height (cm)").fill("175")
    shoot(doc, "i05-assessment-form")
    doc.get_by_role("button", name="Save draft").click()
    expect(doc.get_by_text("Draft saved.")).to_be_visible()
    expect(doc.get_by_text("22.9 kg/m² (computed)")).to_be_visible()
    expect(doc.get_by_text("Baseline measures (PHQ-9, GAD-7, C-SSRS)")).to_be_visible()
    expect(doc.get_by_text(re.compile("Takes a benzodiazepine")).first).to_be_visible()
    expect(doc.get_by_text(re.compile("Meets the TRD definition")).first).to_be_visible()
    doc.get_by_role("button", name="Sign assessment").click()
    expect(doc.get_by_text(re.compile("Assessment signed"))).to_be_visible()
    shoot(doc, "i06-assessment-signed-rules")

    # 4. The decision: approving against a review reason needs a justification.
    doc.get_by_role("link", name="Record the decision").click()
    doc.get_by_role("radio", name="Approve").check()
    doc.get_by_role("checkbox", name="IV ketamine").check()
    doc.get_by_role("button", name="Sign decision").click()
    expect(doc.get_by_text(re.compile("needs a written justification")).first).to_be_visible()
    doc.get_by_label(re.compile("Written justification")).fill(
        "Clonazepam 0.5 mg at night only; held the evening before each infusion."
    )
    shoot(doc, "i07-decision-justification")
    doc.get_by_role("button", name="Sign decision").click()
    expect(doc.get_by_text("Decision signed.")).to_be_visible()
    assert selectors.approved_routes(patient) == {"iv-ketamine"}

    # 5. Consent on the clinic tablet.
    desk.goto(f"/intake/patients/{patient.pk}/consent/iv-ketamine/")
    expect(desk.get_by_role("heading", level=1)).to_have_text("Consent to IV ketamine treatment")
    desk.get_by_label("Type your full name").fill("Jamie Browser-Synth")
    desk.get_by_label(re.compile("I have read this consent form")).check()
    shoot(desk, "i08-consent-sign")
    desk.get_by_role("button", name="Sign consent").click()
    expect(desk.get_by_role("heading", level=1)).to_have_text("Thank you: your consent is signed")
    assert selectors.signed_consent(patient, "iv-ketamine") is not None
    doc.goto(f"/patients/{patient.pk}/assessment/")
    expect(doc.locator(".safety-consent")).to_contain_text("Consent in force: ")
    expect(doc.locator("main").get_by_text(re.compile("in force")).last).to_be_visible()
    shoot(doc, "i09-chart-consent-in-force")
    assert _errors(console_log) == []
