"""The right patient, always (issue 17, item 5): the safety banner on every clinical page and
on each chair, the similar-name warning, and one patient per chair at a time."""

import datetime
import hashlib
import importlib.util
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from ketaflow.patients import chart, selectors
from ketaflow.patients.models import Patient

_spec = importlib.util.spec_from_file_location(
    "banner_treatment_helpers",
    Path(__file__).resolve().parents[1] / "treatment" / "access_matrix.py",
)
treatment = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(treatment)


@pytest.fixture(autouse=True)
def consent_on_file(monkeypatch):
    """Sessions here are built as if consent were on file (the banner reads intake's own
    records, which these tests create where they matter)."""
    from ketaflow.treatment import services

    monkeypatch.setattr(services, "consent_valid", lambda session: True)


def P(given, family, **kw):
    return Patient(legal_given_name=given, legal_family_name=family, **kw)


# ---------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "a,b",
    [
        (("José", "O'Neil"), ("jose", "ONEIL")),  # accents, case, punctuation
        (("Mary-Jane", "Smith"), ("Mary Jane", "SMITH")),
        (("Ana", "García"), ("García", "Ana")),  # first and last swapped
        (("Jon", "Smith"), ("John", "Smith")),  # one letter apart
        (("Al", "Nguyen"), ("Al", "Nguyen")),
        (("Alexander", "Lee"), ("Alex", "Lee")),  # one a prefix of the other
    ],
)
def test_similar_names(a, b):
    assert selectors.similar_names(P(*a), P(*b))
    assert selectors.similar_names(P(*b), P(*a))


@pytest.mark.parametrize(
    "a,b",
    [
        (("José", "O'Neil"), ("Maria", "O'Neil")),
        (("Ana", "García"), ("Ana", "Gomez")),
        (("Jon", "Smith"), ("Jonas", "Smithers")),
    ],
)
def test_names_that_differ_are_not_flagged(a, b):
    assert not selectors.similar_names(P(*a), P(*b))


def test_preferred_name_counts():
    assert selectors.similar_names(P("Robert", "Brown", preferred_name="Bob"), P("Bob", "Brown"))


# ---------------------------------------------------------------------------- data


def _assessment(clinic, patient, user, allergies, signed=True):
    from django.utils import timezone

    from ketaflow.intake.models import Assessment

    return Assessment.objects.create(
        clinic=clinic,
        patient=patient,
        created_by=user,
        allergies=allergies,
        status="signed" if signed else "draft",
        signed_by=user if signed else None,
        signed_at=timezone.now() if signed else None,
    )


def _consent(clinic, patient, route="iv-ketamine"):
    from ketaflow.intake.models import ConsentDocument, ConsentSignature

    doc = ConsentDocument.objects.create(
        clinic=clinic, route=route, version=1, title="Consent (synthetic)", body="Text."
    )
    return ConsentSignature.objects.create(
        clinic=clinic,
        patient=patient,
        document=doc,
        route=route,
        version=1,
        title=doc.title,
        body=doc.body,
        body_sha256=hashlib.sha256(doc.body.encode()).hexdigest(),
        typed_name="Synthetic",
        agreed=True,
        via="tablet",
    )


def _flag(staff, patient, item9=3):
    from ketaflow.measures import services

    answers = {str(k): 1 for k in range(1, 9)} | {"9": item9}
    services.record_administration(
        patient=patient, actor=staff["nurse"], instrument="phq9", answers=answers
    )


@pytest.fixture
def session_of(clinic, staff):
    from ketaflow.treatment import builder

    def make(patient, to="monitoring", route="iv"):
        appt = treatment.make_appointment(clinic, staff, patient, route=route)
        return builder.build(appt, to=to, nurse=staff["nurse"], prescriber=staff["prescriber"])

    return make


@pytest.fixture
def penicillin(clinic, staff, make_patient):
    """A patient with a signed penicillin allergy, a same-day risk flag and consent for IV."""
    p = make_patient(clinic, date_of_birth=datetime.date(1980, 6, 15))
    _assessment(clinic, p, staff["prescriber"], "Penicillin (rash, synthetic)")
    _consent(clinic, p)
    _flag(staff, p, item9=3)
    return p


def age_today(clinic, patient):
    return patient.age_on(clinic.today())


# ---------------------------------------------------------------------------- selector


def test_banner_carries_identifiers_age_allergies_worst_flag_and_consent(clinic, staff, penicillin):
    b = selectors.safety_banner(clinic, penicillin)
    assert b.age == age_today(clinic, penicillin)
    assert b.allergies == "Penicillin (rash, synthetic)" and b.allergies_signed
    assert b.flag is not None and b.flag.urgency == "immediate"
    assert b.consents == ["IV ketamine"]
    assert b.same_name == []


def test_a_newer_draft_allergy_shows_beside_the_signed_one(clinic, staff, penicillin):
    _assessment(clinic, penicillin, staff["prescriber"], "Penicillin; latex", signed=False)
    b = selectors.safety_banner(clinic, penicillin)
    assert (
        b.allergies == "Penicillin (rash, synthetic)" and b.draft_allergies == "Penicillin; latex"
    )


def test_no_assessment_says_allergies_not_recorded(clinic, make_patient, staff, client_for):
    p = make_patient(clinic)
    assert selectors.safety_banner(clinic, p).allergies is None
    page = client_for(staff["nurse"]).get(f"/patients/{p.pk}/").content.decode()
    assert "Allergies: not recorded" in page and "No signed consent in force" in page


def test_banners_for_many_patients_take_a_constant_number_of_queries(
    clinic, staff, make_patient, django_assert_max_num_queries
):
    few = [make_patient(clinic) for _ in range(2)]
    many = few + [make_patient(clinic) for _ in range(8)]
    for p in many:
        _assessment(clinic, p, staff["prescriber"], "None known")
    with django_assert_max_num_queries(8):
        assert len(selectors.safety_banners(clinic, many)) == 10


# ---------------------------------------------------------------------------- pages


def _assert_banner(html, patient, clinic):
    assert 'class="safety-banner' in html, "no safety banner"
    assert f"DOB {patient.date_of_birth:%Y-%m-%d}" in html
    assert f"MRN {patient.mrn}" in html
    assert f"{age_today(clinic, patient)} y" in html
    assert "Penicillin (rash, synthetic)" in html
    assert "Risk flag: immediate" in html
    assert "Consent in force: IV" in html


def test_banner_on_every_chart_tab(clinic, staff, client_for, penicillin):
    c = client_for(staff["prescriber"])
    for tab in chart.TABS:
        r = c.get(reverse("patients:chart_tab", args=[penicillin.pk, tab.slug]))
        assert r.status_code == 200, tab.slug
        _assert_banner(r.content.decode(), penicillin, clinic)


def test_banner_on_the_session_page(clinic, staff, client_for, penicillin, session_of):
    s = session_of(penicillin)
    html = client_for(staff["nurse"]).get(f"/treatment/sessions/{s.pk}/").content.decode()
    _assert_banner(html, penicillin, clinic)


def test_banner_on_plan_assessment_and_measures_pages(clinic, staff, client_for, penicillin):
    plan = treatment.make_plan(clinic, penicillin, staff["prescriber"], "iv")
    # a reassessment in progress (the signed one's page redirects to the chart tab)
    _assessment(clinic, penicillin, staff["prescriber"], "Penicillin (rash, synthetic)", False)
    c = client_for(staff["prescriber"])
    for url in (
        reverse("plans:detail", args=[plan.pk]),
        reverse("intake:assessment_edit", args=[penicillin.pk]),
        reverse("measures:record", args=[penicillin.pk]),
    ):
        r = c.get(url)
        assert r.status_code == 200, url
        _assert_banner(r.content.decode(), penicillin, clinic)


def test_banner_on_the_rems_form(clinic, staff, client_for, penicillin, session_of):
    s = session_of(penicillin, to="discharged", route="esk")
    html = client_for(staff["nurse"]).get(f"/treatment/sessions/{s.pk}/rems/").content.decode()
    _assert_banner(html, penicillin, clinic)


# ---------------------------------------------------------------------------- same names


def test_similar_names_in_the_clinic_today_are_warned_on_the_session_page_and_the_board(
    clinic, staff, client_for, make_patient, session_of
):
    a = make_patient(
        clinic,
        legal_given_name="José",
        legal_family_name="O'Neil-Synth",
        date_of_birth=datetime.date(1970, 3, 1),
    )
    b = make_patient(
        clinic,
        legal_given_name="jose",
        legal_family_name="ONEIL SYNTH",
        date_of_birth=datetime.date(1991, 9, 9),
    )
    other = make_patient(clinic, legal_given_name="Maria", legal_family_name="Lopez-Synth")
    sa, sb, so = session_of(a), session_of(b), session_of(other)
    assert sa.chair_id != sb.chair_id  # two chairs side by side
    c = client_for(staff["nurse"])
    page = c.get(f"/treatment/sessions/{sa.pk}/").content.decode()
    assert "Similar name in the clinic today" in page
    assert f"MRN {b.mrn}" in page and "DOB 1991-09-09" in page
    quiet = c.get(f"/treatment/sessions/{so.pk}/").content.decode()
    assert "Similar name in the clinic today" not in quiet

    from ketaflow.audit.models import AuditEvent

    before = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
    board = c.get(reverse("treatment:board_partial")).content.decode()
    (read,) = AuditEvent.objects.filter(pk__gt=before, action="read")
    assert {a.pk, b.pk} <= set(read.detail["patients"])  # the board's read names them
    chairs = board.split('<article class="kf-chair')[1:]
    by_session = {
        s.pk: next(ch for ch in chairs if f'data-session="{s.pk}"' in ch) for s in (sa, sb, so)
    }
    assert "Similar name in the clinic today" in by_session[sa.pk]
    assert f"MRN {a.mrn}" in by_session[sb.pk]  # each chair names the other patient
    assert "Similar name in the clinic today" not in by_session[so.pk]
    for s, p in ((sa, a), (sb, b)):
        assert f"DOB {p.date_of_birth:%Y-%m-%d}" in by_session[s.pk]
        assert f"{age_today(clinic, p)} y" in by_session[s.pk]


def test_a_similar_name_booked_today_is_warned_before_check_in(
    clinic, staff, client_for, make_patient, session_of
):
    a = make_patient(clinic, legal_given_name="Ana", legal_family_name="Garcia-Synth")
    swapped = make_patient(clinic, legal_given_name="Garcia-Synth", legal_family_name="Ana")
    treatment.make_appointment(clinic, staff, swapped)  # booked today, not checked in
    s = session_of(a)
    c = client_for(staff["nurse"])
    html = c.get(f"/treatment/sessions/{s.pk}/").content.decode()
    assert "Similar name in the clinic today" in html and f"MRN {swapped.mrn}" in html
    # Not in a chair, but named on the board's chair of ``a``: the board's read names them.
    from ketaflow.audit.models import AuditEvent

    before = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
    board = c.get(reverse("treatment:board_partial")).content.decode()
    assert f"MRN {swapped.mrn}" in board
    (read,) = AuditEvent.objects.filter(pk__gt=before, action="read")
    assert swapped.pk in read.detail["patients"]


def test_similar_name_outside_the_members_scope_is_warned_without_identity(
    clinic, make_user, staff, client_for, make_patient, session_of
):
    south = clinic.locations.get(name="South")
    north_nurse = make_user(clinic, "nurse", locations=["North"])
    a = make_patient(
        clinic,
        legal_given_name="Lee",
        legal_family_name="Kim-Synth",
        preferred_location=clinic.locations.get(name="North"),
    )
    b = make_patient(
        clinic, legal_given_name="Lee", legal_family_name="Kim-Synth", preferred_location=south
    )
    s = session_of(a)
    treatment.make_appointment(clinic, staff, b)
    html = client_for(north_nurse).get(f"/treatment/sessions/{s.pk}/").content.decode()
    assert "Similar name in the clinic today" in html
    assert "a patient outside your scope" in html and b.mrn not in html


# ---------------------------------------------------------------------------- one per chair


def test_a_second_patient_cannot_be_checked_into_an_occupied_chair(
    clinic, staff, make_patient, session_of
):
    from ketaflow.treatment import services

    first = session_of(make_patient(clinic), to="checked_in")
    second = treatment.make_appointment(clinic, staff, make_patient(clinic))
    second.chair = first.chair
    second.save(update_fields=["chair"])
    with pytest.raises(ValidationError) as exc:
        services.open_session(appointment=second, actor=staff["nurse"])
    msg = exc.value.message_dict["chair"][0]
    assert first.chair.name in msg and first.patient.display_name in msg
    assert first.patient.mrn in msg
    # Free again once that session ends.
    services.cancel_session(session=first, actor=staff["nurse"], reason="Fever (synthetic)")
    second.refresh_from_db()
    assert (
        services.open_session(appointment=second, actor=staff["nurse"]).chair_id == first.chair_id
    )


def test_web_and_api_check_in_into_an_occupied_chair_name_the_chair_and_patient(
    clinic, staff, make_patient, session_of, client_for
):
    first = session_of(make_patient(clinic))
    second = treatment.make_appointment(clinic, staff, make_patient(clinic))
    second.chair = first.chair
    second.save(update_fields=["chair"])
    c = client_for(staff["nurse"])
    r = c.post(f"/treatment/appointments/{second.pk}/check-in/", follow=True)
    html = r.content.decode()
    assert f"{first.chair.name} is occupied" in html and first.patient.mrn in html
    api = c.post(
        "/api/v1/treatment/sessions", {"appointment_id": second.pk}, content_type="application/json"
    )
    assert api.status_code in (409, 422), api.content
    assert f"{first.chair.name} is occupied" in api.content.decode()
    from ketaflow.treatment.models import TreatmentSession

    assert not TreatmentSession.objects.filter(appointment=second).exists()
