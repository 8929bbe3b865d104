"""The REMS Patient Monitoring Form typed as the published form (issue 17, items 6 and 8)."""

import pytest
from django.core.exceptions import ValidationError

from ketaflow.treatment import pdf, rems, selectors, services
from ketaflow.treatment.models import RemsForm

API = "/api/v1/treatment"


def put(client, url, data):
    return client.put(url, data, content_type="application/json")


@pytest.fixture
def esk(appt, staff):
    from ketaflow.treatment import builder

    def make(patient=None):
        return builder.build(
            appt("esk", patient=patient),
            to="discharged",
            nurse=staff["nurse"],
            prescriber=staff["prescriber"],
        )

    return make


def kinds():
    return {key: kind for key, _label, kind, _req in rems.fields(rems.CURRENT)}


# ---------------------------------------------------------------------------- the field list


def test_current_version_has_the_published_forms_fields_typed():
    k = kinds()
    assert k["patient_sex"] == "choice:male|female|other"
    assert k["first_treatment"] == k["enrolled"] == "yesno"
    assert k["opioid"] == "yesno"  # concomitant opioids
    assert k["respiratory_depression"] == k["sedation"] == k["dissociation"] == "yesno"
    assert k["provider_phone"] == "text" and k["provider_email"] == "email"
    assert k["ready_minutes"] == "minutes" and k["total_minutes"] == "minutes"
    for part in ("before", "40", "completion"):
        assert k[f"bp_{part}_systolic"] == k[f"bp_{part}_diastolic"] == "number"
    assert rems.CURRENT != rems.LEGACY and rems.LEGACY in rems.VERSIONS


@pytest.mark.parametrize(
    "key,value,rule",
    [
        ("sedation", "maybe", "must be one of yes, no"),
        ("respiratory_depression", "probably not", "must be one of yes, no"),
        ("patient_sex", "x", "must be one of male, female, other"),
        ("ready_minutes", "about an hour", "must be a whole number"),
        ("total_minutes", "-5", "between 0 and 1440"),
        ("bp_40_systolic", "1400", "between 50 and 300"),
        ("patient_dob", "12/31/1980", "must be a date YYYY-MM-DD"),
        ("provider_email", "nurse at clinic", "must be an e-mail address"),
    ],
)
def test_clean_refuses_values_the_published_form_cannot_hold(key, value, rule):
    cleaned, errors = rems.clean({key: value})
    assert key not in cleaned and rule in errors[key][0]


def test_clean_stores_typed_values():
    cleaned, errors = rems.clean({"sedation": "YES", "ready_minutes": "75", "dose": "84"})
    assert errors == {} and cleaned == {"sedation": "yes", "ready_minutes": 75, "dose": "84"}


# ---------------------------------------------------------------------------- service


def test_service_refuses_sedation_maybe_naming_the_field(esk, staff):
    s = esk()
    with pytest.raises(ValidationError) as exc:
        services.save_rems(session=s, actor=staff["nurse"], data={"sedation": "maybe"})
    assert "sedation" in exc.value.message_dict
    assert "Did the patient experience sedation?" in exc.value.message_dict["sedation"][0]
    assert RemsForm.objects.get(session=s).data["sedation"] != "maybe"


def test_prefill_is_typed_and_times_ready_from_the_start_of_administration(esk, staff):
    s = esk()
    form = s.rems
    assert form.form_version == rems.CURRENT
    d = form.data
    assert d["patient_first_name"] == s.patient.legal_given_name
    assert d["patient_last_name"] == s.patient.legal_family_name
    assert d["patient_dob"] == s.patient.date_of_birth.isoformat()
    assert d["first_treatment"] == "yes"
    assert isinstance(d["total_minutes"], int) and d["total_minutes"] >= 120
    assert isinstance(d["bp_before_systolic"], int)
    if s.ready_without_rule_at:
        expected = int((s.ready_without_rule_at - s.dose_started_at).total_seconds() // 60)
        assert d["ready_minutes"] == expected
    # Nothing the record cannot know is guessed: the clinician answers it.
    assert d["respiratory_depression"] == "" and d["provider_phone"] == ""
    second = esk(patient=s.patient)
    assert second.rems.data["first_treatment"] == "no"


def test_first_treatment_needs_the_enrolment_answer_before_signing(esk, staff, rems_extra):
    s = esk()
    data = {k: v for k, v in rems_extra.items() if k != "enrolled"}
    services.save_rems(session=s, actor=staff["nurse"], data=data)
    with pytest.raises(ValidationError, match="enrolled in the SPRAVATO REMS"):
        services.sign_rems(session=s, actor=staff["nurse"])
    services.save_rems(session=s, actor=staff["nurse"], data={"enrolled": "yes"})
    assert services.sign_rems(session=s, actor=staff["nurse"]).signed_at


def test_respiratory_depression_must_be_answered_before_signing(esk, staff, rems_extra):
    s = esk()
    data = {k: v for k, v in rems_extra.items() if k != "respiratory_depression"}
    services.save_rems(session=s, actor=staff["nurse"], data=data)
    with pytest.raises(ValidationError, match="respiratory depression"):
        services.sign_rems(session=s, actor=staff["nurse"])


def test_a_legacy_value_that_no_longer_validates_blocks_signing():
    assert "Did the patient experience sedation?: must be one of yes, no" in " ".join(
        rems.missing({"sedation": "maybe"})
    )


# ---------------------------------------------------------------------------- API and web


def test_api_refuses_maybe_with_a_field_error(esk, staff, client_for):
    s = esk()
    c = client_for(staff["nurse"])
    r = put(c, f"{API}/sessions/{s.pk}/rems", {"data": {"sedation": "maybe"}})
    assert r.status_code == 422, r.content
    assert "sedation" in r.content.decode() and "yes, no" in r.content.decode()
    ok = put(c, f"{API}/sessions/{s.pk}/rems", {"data": {"sedation": "no", "ready_minutes": 70}})
    assert ok.status_code == 200 and ok.json()["data"]["ready_minutes"] == 70


def test_web_form_offers_only_yes_or_no_and_refuses_maybe(esk, staff, client_for):
    s = esk()
    c = client_for(staff["nurse"])
    page = c.get(f"/treatment/sessions/{s.pk}/rems/").content.decode()
    assert '<select id="r-sedation" name="sedation">' in page
    assert '<select id="r-respiratory_depression"' in page
    assert "minutes from start of administration" in page
    r = c.post(
        f"/treatment/sessions/{s.pk}/rems/", {"sedation": "maybe", "do": "sign"}, follow=True
    )
    assert "must be one of yes, no" in r.content.decode()
    form = RemsForm.objects.get(session=s)
    assert form.signed_at is None and form.data["sedation"] != "maybe"


# ---------------------------------------------------------------------------- versions


def _legacy_signed(s, staff):
    RemsForm.objects.filter(session=s).update(
        form_version=rems.LEGACY,
        data={"patient_name": "Old Form", "sedation": "maybe", "bp_before": "124/78"},
        signed_by=staff["nurse"],
        signed_at=s.discharged_at,
    )
    return RemsForm.objects.get(session=s)


def test_a_form_signed_under_the_old_field_list_is_shown_and_exported_under_it(
    esk, staff, client_for, monkeypatch
):
    s = esk()
    form = _legacy_signed(s, staff)
    labels = [label for label, _v, _r in selectors.rems_rows(form)]
    assert "Patient name" in labels and "Did the patient experience sedation?" not in labels
    c = client_for(staff["nurse"])
    page = c.get(f"/treatment/sessions/{s.pk}/rems/").content.decode()
    assert rems.label_of(rems.LEGACY) in page and "Old Form" in page
    assert "r-respiratory_depression" not in page
    csv = c.get(f"/treatment/sessions/{s.pk}/rems.csv").content.decode()
    assert f"{rems.LEGACY},patient_name,Patient name,Old Form" in csv
    assert "respiratory_depression" not in csv

    # The PDF prints the form's own version, label and rows.
    printed = []
    real = pdf.document

    def capture(**kw):
        doc, line, family = real(**kw)
        return doc, (lambda text, *a, **k: printed.append(text) or line(text, *a, **k)), family

    monkeypatch.setattr(pdf, "document", capture)
    assert c.get(f"/treatment/sessions/{s.pk}/rems.pdf").content.startswith(b"%PDF")
    text = "\n".join(printed)
    assert rems.label_of(rems.LEGACY) in text and "Patient name: Old Form" in text


def test_the_current_forms_pdf_and_csv_carry_the_typed_fields(
    esk, staff, client_for, rems_extra, monkeypatch
):
    s = esk()
    services.save_rems(session=s, actor=staff["nurse"], data=rems_extra)
    services.sign_rems(session=s, actor=staff["nurse"])
    c = client_for(staff["nurse"])
    csv = c.get(f"/treatment/sessions/{s.pk}/rems.csv").content.decode()
    assert f"{rems.CURRENT},respiratory_depression," in csv and ",no\r\n" in csv
    assert f"{rems.CURRENT},opioid,Concomitant opioids," in csv
    printed = []
    real = pdf.document

    def capture(**kw):
        doc, line, family = real(**kw)
        return doc, (lambda text, *a, **k: printed.append(text) or line(text, *a, **k)), family

    monkeypatch.setattr(pdf, "document", capture)
    assert c.get(f"/treatment/sessions/{s.pk}/rems.pdf").content.startswith(b"%PDF")
    text = "\n".join(printed)
    assert "Did the patient experience respiratory depression?: no" in text
    assert "Monitoring provider telephone: 555-0100" in text


def test_an_unsigned_old_form_is_carried_to_the_current_version_keeping_valid_answers():
    new = rems.upgrade_legacy(
        {
            "patient_name": "Ada Lovelace",
            "sedation": "maybe",
            "dissociation": "yes",
            "bp_before": "124/78",
            "bp_40": "high",
            "total_minutes": "130",
            "ready_without_rule": "around 3pm",
        }
    )
    assert new["patient_first_name"] == "Ada" and new["patient_last_name"] == "Lovelace"
    assert new["sedation"] == "" and new["dissociation"] == "yes"
    assert (new["bp_before_systolic"], new["bp_before_diastolic"]) == (124, 78)
    assert "bp_40_systolic" not in new and new["total_minutes"] == 130
    assert "ready_minutes" not in new
    assert set(new) <= {k for k, *_ in rems.fields(rems.CURRENT)}
