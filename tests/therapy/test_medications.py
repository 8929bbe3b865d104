"""Concurrent medications from the assessment, with the reference's interaction notes, on the
therapy pages and through the template tag."""

from django.template import Context, Template

from ketaflow.intake.models import Assessment
from ketaflow.therapy import selectors


def _assessment(patient, user):
    return Assessment.objects.create(
        clinic=patient.clinic,
        patient=patient,
        created_by=user,
        medications=[
            {"name": "lorazepam", "dose": "0.5 mg at night", "med_class": "benzodiazepine"},
            {"name": "phenelzine", "dose": "15 mg", "med_class": "maoi"},
            {"name": "sertraline", "dose": "100 mg", "med_class": "other"},
        ],
    )


def test_interaction_notes_use_the_reference_wording(staff, patient):
    from ketaflow.clinical import eligibility

    _assessment(patient, staff["prescriber"])
    rows = {m.name: m for m in selectors.concurrent_medications(patient)}
    assert rows["lorazepam"].note == eligibility.medication_note("benzodiazepine")
    assert "3 mg lorazepam-equivalent" in rows["lorazepam"].note
    assert "blood pressure" in rows["phenelzine"].note and rows["phenelzine"].class_label == "MAOI"
    assert rows["sertraline"].note == ""


def test_shown_on_the_note_pages_and_by_the_template_tag(staff, patient, client_for, note_factory):
    _assessment(patient, staff["prescriber"])
    note = note_factory(patient, staff["therapist"])
    page = client_for(staff["therapist"]).get(f"/therapy/notes/{note.pk}/").content.decode()
    assert "Concurrent medications" in page and "lorazepam" in page and "MAO inhibitor" in page
    html = Template("{% load therapy_tags %}{% concurrent_medications patient %}").render(
        Context({"patient": patient})
    )
    assert "phenelzine" in html and "Interaction:" in html
