import pytest

VALID = {
    "given_name": "Jamie",
    "family_name": "Request-Synth",
    "date_of_birth": "1984-05-06",
    "email": "jamie@example.test",
    "phone": "555 010 2222",
    "contact_time": "morning",
    "seeking": ["depression"],
    "diagnosed_depression": "yes",
    "antidepressants_tried": "3",
    "antidepressant_helped": "no",
    "antidepressant_intolerance": "no",
    "therapy_tried": "yes",
    "referred": "no",
    "pregnant": "no",
    "heart_bp": "no",
    "psychosis_mania": "no",
    "substance_use": "no",
    "consent_to_contact": "on",
}

TRIALS = [
    {
        "drug": "sertraline",
        "dose": "150 mg",
        "weeks": 8.0,
        "adequate_dose": True,
        "current_episode": True,
        "outcome": "no_response",
    },
    {
        "drug": "bupropion",
        "dose": "300 mg",
        "weeks": 8.0,
        "adequate_dose": True,
        "current_episode": True,
        "outcome": "partial_response",
    },
]
DX = [{"code": "F33.2", "description": "Major depressive disorder, recurrent, severe"}]


@pytest.fixture
def request_data():
    return dict(VALID)


@pytest.fixture
def assessed(patient, staff):
    """A patient with a signed assessment that meets TRD, normal BP, no contraindications."""
    from ketaflow.intake import services

    assessment = services.save_assessment(
        patient=patient,
        actor=staff["nurse"],
        fields={"systolic": 122, "diastolic": 78, "weight_kg": 70, "height_cm": 175},
        diagnoses=DX,
        trials=TRIALS,
    )
    services.sign_assessment(assessment=assessment, actor=staff["prescriber"])
    return patient
