import datetime

from django.db import connection
from django.test.utils import CaptureQueriesContext

from ketaflow.audit import services as audit
from ketaflow.audit.models import AuditEvent
from ketaflow.patients.chart import TABS, sections_for
from ketaflow.patients.models import Patient


def test_register_with_invalid_field_keeps_input_then_saves(clinic, staff, client_for):
    client = client_for(staff["front_desk"])
    future = (datetime.date.today() + datetime.timedelta(days=3)).isoformat()
    data = {
        "legal_given_name": "Quinn",
        "legal_family_name": "Okafor-Synth",
        "date_of_birth": future,
        "sex_assigned_at_birth": "intersex",
        "email": "quinn@example.test",
    }
    page = client.post("/patients/new/", data)
    html = page.content.decode()
    assert page.status_code == 200
    assert "Date of birth cannot be in the future." in html
    assert 'value="Okafor-Synth"' in html and 'aria-invalid="true"' in html
    assert not Patient.objects.exists()
    saved = client.post("/patients/new/", {**data, "date_of_birth": "1991-02-03"})
    patient = Patient.objects.get()
    assert saved["Location"] == f"/patients/{patient.pk}/"
    assert "is registered with MRN" in client.get(saved["Location"]).content.decode()


def test_edit_demographics(clinic, staff, patient, client_for):
    client = client_for(staff["nurse"])
    form = client.get(f"/patients/{patient.pk}/edit/")
    data = {k: ("" if v is None else v) for k, v in form.context["form"].initial.items()}
    data["pronouns"] = "she/her"
    assert (
        client.post(f"/patients/{patient.pk}/edit/", data)["Location"] == f"/patients/{patient.pk}/"
    )
    patient.refresh_from_db()
    assert patient.pronouns == "she/her"


def test_search_is_a_post_and_renders_partial_for_htmx(clinic, staff, patient, client_for):
    client = client_for(staff["front_desk"])
    full = client.post("/patients/", {"q": "alv"})
    assert "<html" in full.content.decode() and patient.legal_family_name in full.content.decode()
    partial = client.post("/patients/", {"q": "alv"}, headers={"HX-Request": "true"})
    body = partial.content.decode()
    assert "<html" not in body and 'id="results"' in body and patient.mrn in body
    empty = client.post("/patients/", {"q": "zzzz"}, headers={"HX-Request": "true"})
    assert "No patient of this clinic matches" in empty.content.decode()


def test_every_tab_renders_with_one_read_event(clinic, staff, patient, client_for):
    client = client_for(staff["prescriber"])
    for tab in TABS:
        before = AuditEvent.objects.filter(action="read").count()
        url = (
            f"/patients/{patient.pk}/"
            if tab.slug == "overview"
            else f"/patients/{patient.pk}/{tab.slug}/"
        )
        response = client.get(url)
        assert response.status_code == 200, tab.slug
        if tab.empty_title and not sections_for(response.wsgi_request, patient, tab.slug):
            assert tab.empty_title in response.content.decode()
            assert "How it starts:" in response.content.decode()
        assert AuditEvent.objects.filter(action="read").count() == before + 1
    assert client.get(f"/patients/{patient.pk}/nonsense/").status_code == 404


def test_activity_tab_lists_who_opened_the_chart(clinic, staff, patient, client_for):
    client_for(staff["nurse"]).get(f"/patients/{patient.pk}/")
    page = client_for(staff["owner"]).get(f"/patients/{patient.pk}/activity/")
    assert staff["nurse"].email in page.content.decode()


def test_front_desk_sees_demographics_not_the_clinical_chart(clinic, staff, patient, client_for):
    client = client_for(staff["front_desk"])
    assert client.get(f"/patients/{patient.pk}/").status_code == 200
    assert client.get(f"/patients/{patient.pk}/measures/").status_code == 403


def test_chart_query_count_does_not_grow_with_history(clinic, staff, patient, client_for):
    client = client_for(staff["prescriber"])
    client.get(f"/patients/{patient.pk}/")

    def count(url):
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    first = {
        url: count(url) for url in (f"/patients/{patient.pk}/", f"/patients/{patient.pk}/activity/")
    }
    for _ in range(120):
        audit.record(
            action="read", clinic=clinic, actor=staff["nurse"], patient=patient, obj=patient
        )
    later = {url: count(url) for url in first}
    assert later == first
    # 20, plus the safety banner's constant 4 (allergies, consent, risk flag, who is in today)
    assert max(first.values()) <= 24


def test_today_lists_patients_needing_action(clinic, staff, make_patient, client_for):
    waiting = make_patient(clinic, status="prospective")
    page = client_for(staff["front_desk"]).get("/today/")
    assert waiting.legal_family_name in page.content.decode()
    assert page.context["counts"]["prospective"] == 1


def test_security_headers_and_csp(clinic, staff, client_for):
    response = client_for(staff["nurse"]).get("/today/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Request-ID"]
    assert "<script>" not in response.content.decode()  # no inline script anywhere


def test_user_with_two_clinics_switches_explicitly(
    clinic, other_clinic, make_user, make_patient, client_for
):
    from ketaflow.tenancy.models import Membership

    user = make_user(clinic, "nurse")
    Membership.objects.create(user=user, clinic=other_clinic, roles=["nurse"])
    theirs = make_patient(other_clinic)
    client = client_for(user)
    assert client.get("/today/")["Location"] == "/clinic/choose/"
    client.post("/clinic/choose/", {"clinic": clinic.pk})
    assert client.get(f"/patients/{theirs.pk}/").status_code == 404
    page = client.post(
        "/clinic/choose/", {"clinic": other_clinic.pk, "next": "/today/"}, follow=True
    )
    assert other_clinic.name in page.content.decode()
    assert client.get(f"/patients/{theirs.pk}/").status_code == 200
    assert client.post("/clinic/choose/", {"clinic": 999999}).status_code == 400
