import datetime

from ketaflow.patients import selectors


def test_search_by_name_prefix_mrn_and_dob(clinic, other_clinic, make_patient):
    riley = make_patient(
        clinic, legal_given_name="Riley", legal_family_name="Ålvarez-Synth", mrn="HKC-000123"
    )
    make_patient(
        clinic, legal_given_name="Sage", legal_family_name="Brooks-Synth", preferred_name="Riles"
    )
    make_patient(other_clinic, legal_given_name="Riley", legal_family_name="Alvarez-Synth")

    assert [p.pk for p in selectors.search(clinic, "alv")] == [
        riley.pk
    ]  # accent-insensitive, scoped
    assert {p.legal_given_name for p in selectors.search(clinic, "ril")} == {
        "Riley",
        "Sage",
    }  # preferred name
    assert [p.pk for p in selectors.search(clinic, "riley alv")] == [riley.pk]
    assert [p.pk for p in selectors.search(clinic, "hkc-000123")] == [riley.pk]
    assert [p.pk for p in selectors.search(clinic, "HKC-0001")] == [riley.pk]
    dob = riley.date_of_birth
    assert [p.pk for p in selectors.search(clinic, dob.isoformat())] == [riley.pk]
    assert [p.pk for p in selectors.search(clinic, dob.strftime("%m/%d/%Y"))] == [riley.pk]
    assert list(selectors.search(clinic, "zzz")) == []


def test_search_limit_and_status(clinic, make_patient):
    for i in range(30):
        make_patient(
            clinic, legal_family_name=f"Same{i:02d}-Synth", status="paused" if i % 2 else "active"
        )
    assert len(selectors.search(clinic, "same")) == 25
    assert all(p.status == "paused" for p in selectors.search(clinic, "same", status="paused"))


def test_needing_action_lists_prospective_and_unassigned(clinic, make_patient, staff):
    prospective = make_patient(clinic, status="prospective")
    no_prescriber = make_patient(clinic, status="active")
    make_patient(clinic, status="active", prescriber=staff["prescriber"])
    assert {p.pk for p in selectors.needing_action(clinic)} == {prospective.pk, no_prescriber.pk}


def test_age(patient):
    patient.date_of_birth = datetime.date(2000, 6, 15)
    assert patient.age_on(datetime.date(2026, 6, 14)) == 25
    assert patient.age_on(datetime.date(2026, 6, 15)) == 26
