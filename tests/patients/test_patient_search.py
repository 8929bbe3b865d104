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


def test_last_name_matches_come_before_first_name_matches(clinic, make_patient):
    by_given = make_patient(clinic, legal_given_name="Morgan", legal_family_name="Aaron-Synth")
    by_family = make_patient(clinic, legal_given_name="Zed", legal_family_name="Morgan-Synth")
    assert [p.pk for p in selectors.search(clinic, "morg")] == [by_family.pk, by_given.pk]


def test_mrn_is_case_insensitive_and_stored_in_capitals(clinic, staff):
    from ketaflow.patients import services

    patient = services.create_patient(
        clinic=clinic,
        actor=staff["owner"],
        data={
            "mrn": "ab-77",
            "legal_given_name": "A",
            "legal_family_name": "B-Synth",
            "date_of_birth": "1990-01-01",
            "sex_assigned_at_birth": "female",
        },
    )
    assert patient.mrn == "AB-77"
    assert [p.pk for p in selectors.search(clinic, "ab-77")] == [patient.pk]


def test_search_query_count_does_not_grow_with_the_registry(
    clinic, make_patient, django_assert_max_num_queries
):
    for i in range(60):
        make_patient(clinic, legal_family_name=f"Bulk{i:03d}-Synth", legal_given_name="Bulk")
    for query in ("bulk", "bulk bulk0", "T-0", "1980-01-05", "nomatch"):
        with django_assert_max_num_queries(3):
            selectors.search(clinic, query)
