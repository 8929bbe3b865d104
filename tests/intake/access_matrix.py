"""The intake app's routes for tests/security/test_access_matrix.py."""

PUBLIC = "public"


def _assessment(world):
    from ketaflow.intake import services

    return services.save_assessment(
        patient=world["patient"],
        actor=world["staff"]["prescriber"],
        fields={"systolic": 120, "diastolic": 80},
        diagnoses=[{"code": "F33.2", "description": "MDD, recurrent, severe"}],
    ).pk


def _assessed_patient(world):
    from ketaflow.intake.models import Assessment

    if not Assessment.objects.filter(patient=world["patient"]).exists():
        _assessment(world)
    return world["patient"].pk


def _request(world):
    from ketaflow.intake.models import ConsultationRequest

    return ConsultationRequest.objects.create(
        clinic=world["clinic"],
        given_name="Matrix",
        family_name="Request-Synth",
        date_of_birth="1980-01-01",
        phone="555 010 1234",
        summary="review",
    ).pk


def _signature(world):
    from ketaflow.intake import services

    services.ensure_default_documents(clinic=world["clinic"])
    patient = world["patient"]
    return services.sign_consent(
        patient=patient,
        actor=world["staff"]["nurse"],
        route="iv-ketamine",
        typed_name=patient.legal_name,
        agreed=True,
    ).pk


def _token(world):
    from ketaflow.intake import services

    services.ensure_default_documents(clinic=world["clinic"])
    _, raw = services.create_consent_link(
        patient=world["patient"], actor=world["staff"]["nurse"], route="esketamine-nasal"
    )
    return raw


WEB = {
    "intake:queue": ("get", "intake.view", {}),
    "intake:public_request": ("get", PUBLIC, {"slug": "clinic_slug"}),
    "intake:public_thanks": ("get", PUBLIC, {"slug": "clinic_slug"}),
    "intake:consent_by_link": ("get", PUBLIC, {"token": "consent_token"}),
    "intake:request_detail": ("get", "intake.view", {"pk": "consultation_request"}),
    "intake:request_status": ("post", "intake.manage", {"pk": "consultation_request"}),
    "intake:request_convert": ("post", "intake.manage", {"pk": "consultation_request"}),
    "intake:assessment_edit": ("get", "assessment.edit", {"pk": "patient"}),
    "intake:assessment_sign": ("post", "assessment.sign", {"pk": "intake_assessment"}),
    "intake:assessment_addendum": ("post", "assessment.edit", {"pk": "intake_assessment"}),
    "intake:decision": ("get", "eligibility.decide", {"pk": "patient"}),
    "intake:consent_collect": ("get", "consent.collect", {"pk": "patient", "route": "iv-ketamine"}),
    "intake:consent_link_create": ("post", "consent.collect", {"pk": "patient"}),
    "intake:consent_view": ("get", "chart.view", {"pk": "consent_signature"}),
    "intake:consent_pdf": ("get", "chart.view", {"pk": "consent_signature"}),
    "intake:consent_withdraw": ("post", "consent.collect", {"pk": "consent_signature"}),
    "intake:documents": ("get", "consent.manage", {}),
    "intake:eligibility_settings": ("get", "clinic.settings", {}),
    "intake:document_edit": ("get", "consent.manage", {"route": "iv-ketamine"}),
}
API = {
    "ketaflow_intake_api_eligibility_check": ("chart.view", {}),
    "ketaflow_intake_api_list_requests": ("intake.view", {}),
    "ketaflow_intake_api_get_request": ("intake.view", {"request_id": "consultation_request"}),
    "ketaflow_intake_api_set_request_status": (
        "intake.manage",
        {"request_id": "consultation_request"},
    ),
    "ketaflow_intake_api_convert_request": (
        "intake.manage",
        {"request_id": "consultation_request"},
    ),
    "ketaflow_intake_api_patient_eligibility": ("chart.view", {"patient_id": "patient"}),
    "ketaflow_intake_api_record_decision": ("eligibility.decide", {"patient_id": "patient"}),
    "ketaflow_intake_api_patient_consents": ("chart.view", {"patient_id": "patient"}),
    "ketaflow_intake_api_patient_assessment": (
        "chart.view",
        {"patient_id": "intake_assessed_patient"},
    ),
}
OBJECTS = {
    "clinic_slug": lambda world: world["clinic"].slug,
    "consultation_request": _request,
    "intake_assessment": _assessment,
    "intake_assessed_patient": _assessed_patient,
    "consent_signature": _signature,
    "consent_token": _token,
}
BODIES = {
    "intake:request_status": {"status": "contacted"},
    "intake:consent_link_create": {"route": "iv-ketamine", "hours": "24"},
    "intake:consent_withdraw": {"reason": "Changed their mind"},
    "intake:assessment_addendum": {"text": "Addendum text"},
    "ketaflow_intake_api_eligibility_check": {
        "route": "iv-ketamine",
        "age": 40,
        "antidepressant_trials": [],
        "conditions": [],
        "medication_classes": [],
    },
    "ketaflow_intake_api_set_request_status": {"status": "contacted"},
    "ketaflow_intake_api_record_decision": {"decision": "defer", "reason": "Need more history"},
}
