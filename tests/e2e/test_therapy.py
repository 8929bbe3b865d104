"""KAP in the browser: a therapist writes the preparation, dosing-session and integration
notes of a cycle (the dosing session itself is charted by the nurse in the treatment app),
a private psychotherapy note, goals and a practice the patient ticks through the secure link,
records the referring psychiatrist with the patient's consent, and signs and sends a progress
letter. Screenshots: var/screenshots/t09-*.png."""

import datetime
import importlib.util
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from ketaflow.therapy.models import PracticeEntry, ProgressLetter, TherapyNote
from ketaflow.treatment import builder, services

pytestmark = pytest.mark.e2e

_spec = importlib.util.spec_from_file_location(
    "therapy_conftest_e2e", Path(__file__).resolve().parents[1] / "therapy" / "conftest.py"
)
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)


@pytest.fixture(autouse=True)
def consent_on_file(monkeypatch):
    monkeypatch.setattr(services, "consent_valid", lambda session: True)


def _errors(entries):
    return [e for e in entries if e[0] in {"error", "pageerror"}]


def _fill(page, values: dict):
    for label, value in values.items():
        page.get_by_label(label).fill(value)


def test_therapist_runs_a_kap_cycle_and_sends_a_letter(
    page, auth, shoot, console_log, clinic, staff, make_patient, mailoutbox
):
    from ketaflow.measures import services as measures

    patient = make_patient(clinic, legal_given_name="Kai", legal_family_name="Kapcycle-Synth")
    plan = helpers.make_kap_plan(clinic, patient, staff["prescriber"])
    now = datetime.datetime.now(datetime.UTC)
    helpers.make_visit(
        plan, staff, "kap-preparation", now - datetime.timedelta(days=7), "completed"
    )
    dose = helpers.make_visit(plan, staff, "kap-dosing", now - datetime.timedelta(hours=5))
    session = builder.build(dose, to="signed", nurse=staff["nurse"], prescriber=staff["prescriber"])
    helpers.make_visit(plan, staff, "integration", now - datetime.timedelta(hours=1), "completed")
    for days, each in ((8, 2), (0, 1)):
        measures.record_administration(
            patient=patient,
            actor=staff["nurse"],
            instrument="phq9",
            answers={str(i): each for i in range(1, 10)} | {"9": 0},
            taken_at=session.dose_started_at
            - datetime.timedelta(days=days, hours=-1 if not days else 0),
            plan=plan.pk,
        )

    therapist = staff["therapist"]
    auth.sign_in(page, therapist)
    page.goto(f"/patients/{patient.pk}/notes/")
    expect(page.get_by_role("heading", name="Therapy notes")).to_be_visible()
    shoot(page, "t09-01-notes-tab")

    # Preparation.
    page.get_by_role("link", name=re.compile("Ketamine-assisted psychotherapy")).click()
    expect(
        page.get_by_role("heading", name=re.compile("Ketamine-assisted psychotherapy"))
    ).to_be_visible()
    page.get_by_role("link", name="Write the preparation note").click()
    _fill(
        page,
        {
            "History relevant to the work": "Two failed SSRIs; grief (synthetic).",
            "Intentions": "Feel closer to people (synthetic).",
            "Set and setting": "Quiet room, music (synthetic).",
            "Expectations": "Explained the experience (synthetic).",
            "Consent to the therapy frame": "Agreed the frame (synthetic).",
        },
    )
    page.get_by_role("button", name="Sign note").click()
    expect(page.get_by_text("Note signed.")).to_be_visible()
    shoot(page, "t09-02-preparation-signed")

    # Dosing session: route and dose come from the session record.
    page.goto(f"/therapy/courses/{plan.pk}/")
    page.get_by_role("link", name="Write the dosing-session note").click()
    _fill(
        page,
        {
            "Therapist presence": "Present throughout (synthetic).",
            "Course of the experience": "Calm, then tearful, then warm (synthetic).",
            "Interventions": "Grounding breath (synthetic).",
        },
    )
    page.get_by_role("button", name="Sign note").click()
    expect(page.get_by_text("From the session record (copied at signing)")).to_be_visible()
    expect(page.get_by_text(re.compile(r"Dose given: 160 mg"))).to_be_visible()
    shoot(page, "t09-03-dosing-note")

    # Integration.
    page.goto(f"/therapy/courses/{plan.pk}/")
    page.get_by_role("link", name="Write the integration note").click()
    _fill(page, {"Themes": "Grief held kindly (synthetic)."})
    page.locator("#f-plan").fill("Daily walk (synthetic).")
    page.get_by_role("button", name="Sign note").click()
    expect(page.get_by_text("Note signed.")).to_be_visible()
    page.get_by_label("New addendum").fill("Called the next day: sleeping better (synthetic).")
    page.get_by_role("button", name="Sign addendum").click()
    expect(page.get_by_text("Addendum signed.")).to_be_visible()

    # A private psychotherapy note.
    page.goto(f"/therapy/patients/{patient.pk}/notes/new/")
    page.get_by_role("link", name="Psychotherapy process note (private)").click()
    page.get_by_label("Process notes").fill("Watch for rescuing (synthetic).")
    page.get_by_role("button", name="Sign note").click()
    expect(page.get_by_text("Private psychotherapy note.")).to_be_visible()
    shoot(page, "t09-04-private-note")

    page.goto(f"/therapy/courses/{plan.pk}/")
    expect(page.get_by_text("Dosing session 1")).to_be_visible()
    expect(
        page.get_by_role("link", name="Patient education page for this route (printable)")
    ).to_be_visible()
    shoot(page, "t09-05-course")
    assert TherapyNote.all_kinds.filter(patient=patient, status="signed").count() == 4

    # Goals and practices; the patient ticks today through the link.
    page.goto(f"/therapy/patients/{patient.pk}/goals/new/")
    page.get_by_label("Title").fill("Depression eases")
    page.get_by_label("Measure that shows progress").select_option("phq9")
    page.get_by_label("Comparator").select_option("lt")
    page.get_by_label("Threshold").fill("10")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Goal saved.")).to_be_visible()
    page.get_by_role("link", name="New practice").click()
    page.get_by_label("Kind").select_option("exercise")
    page.get_by_label("Title").fill("Walk 20 minutes")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("button", name="Create practice link").click()
    url = page.get_by_label("Link").input_value()
    shoot(page, "t09-06-practice-link")
    page.goto(url)
    page.get_by_role("checkbox").last.check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved. Thank you.")).to_be_visible()
    shoot(page, "t09-07-patient-practices")
    assert PracticeEntry.objects.filter(patient=patient, done=True).count() == 1
    page.goto(f"/therapy/patients/{patient.pk}/plan/")
    expect(page.get_by_text("PHQ-9 below 10")).to_be_visible()
    # The therapist records a day the patient mentioned in session: the grid updates in place.
    day = patient.clinic.today() - datetime.timedelta(days=1)
    cell = f"Walk 20 minutes {day:%a} {day.day} {day:%b}: mark"
    page.get_by_role("button", name=f"{cell} done").click()
    expect(page.get_by_role("button", name=f"{cell} not done")).to_be_visible()
    assert PracticeEntry.objects.get(patient=patient, day=day).source == "clinician"
    shoot(page, "t09-08-goals-practices")

    # The referring psychiatrist with the patient's consent, then the letter.
    page.goto(f"/therapy/patients/{patient.pk}/care-team/")
    page.get_by_role("link", name="Add a clinician").click()
    page.get_by_label("Role").select_option("psychiatrist")
    page.get_by_label("Name").fill("Dr. Rhea Referrer-Synth")
    page.get_by_label("Email").fill("referrer@example.test")
    page.get_by_label("Consent to share given on").fill(patient.clinic.today().isoformat())
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Consent valid")).to_be_visible()
    page.get_by_role("link", name="Write a progress letter").click()
    page.get_by_role("button", name="Generate draft").click()
    expect(page.get_by_text("Draft letter generated from the record")).to_be_visible()
    expect(page.get_by_text(re.compile(r"160 mg"))).to_be_visible()
    page.locator("#l-plan-text").fill("One more dosing session, then review (synthetic).")
    page.get_by_role("button", name="Save draft").click()
    page.get_by_role("button", name="Sign letter").click()
    expect(page.get_by_text("Letter signed; its PDF is fixed.")).to_be_visible()
    shoot(page, "t09-09-letter-signed")
    page.get_by_role("button", name=re.compile("Send to")).click()
    expect(page.get_by_text("Letter emailed to referrer@example.test.")).to_be_visible()
    shoot(page, "t09-10-letter-sent")
    letter = ProgressLetter.objects.get(patient=patient)
    assert letter.sends.count() == 1
    assert len(mailoutbox) == 1 and mailoutbox[0].attachments[0][2] == "application/pdf"
    assert _errors(console_log) == []
