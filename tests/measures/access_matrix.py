"""Routes of the measures app for tests/security/test_access_matrix.py."""

import datetime

PUBLIC = "public"


def _alert(world):
    from ketaflow.measures import services

    adm = services.record_administration(
        patient=world["patient"],
        actor=world["staff"]["prescriber"],
        instrument="phq9",
        answers={"1": 1, "2": 1, "3": 1, "4": 1, "5": 1, "6": 1, "7": 1, "8": 1, "9": 1},
    )
    return adm.alerts.get().pk


def _flag(world):
    from ketaflow.measures.models import RiskFlag

    flag = RiskFlag.objects.filter(patient=world["patient"], cleared_at__isnull=True).first()
    if flag is None:
        _alert(world)
        flag = RiskFlag.objects.get(patient=world["patient"], cleared_at__isnull=True)
    return flag.pk


def _administration(world):
    from ketaflow.measures import services

    return services.record_administration(
        patient=world["patient"],
        actor=world["staff"]["nurse"],
        instrument="gad7",
        answers={"1": 1, "2": 1, "3": 1, "4": 1, "5": 1, "6": 1, "7": 1},
    ).pk


def _link(world):
    from ketaflow.measures import services

    link, _raw = services.create_link(
        patient=world["patient"], actor=world["staff"]["nurse"], instruments=["phq9"]
    )
    return link.pk


def _token(world):
    from ketaflow.measures import services

    _link_obj, raw = services.create_link(
        patient=world["patient"], actor=world["staff"]["nurse"], instruments=["gad7"]
    )
    return raw


def _schedule(world):
    from ketaflow.measures import services

    patient = world["patient"]
    patient.email = "riley.alvarez@example.test"
    patient.save()
    return services.create_schedule(
        patient=patient,
        actor=world["staff"]["nurse"],
        instruments=["phq9"],
        cadence="weekly",
        first_due=datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC),
    ).pk


WEB = {
    "measures:alerts": ("get", "chart.view", {}),
    "measures:acknowledge": ("post", "alerts.respond", {"pk": "measures_alert"}),
    "measures:clear_flag": ("get", "alerts.respond", {"pk": "measures_flag"}),
    "measures:record": ("get", "measures.record", {"pk": "patient"}),
    "measures:send": ("get", "measures.send", {"pk": "patient"}),
    "measures:schedule": ("get", "measures.send", {"pk": "patient"}),
    "measures:revoke_link": ("post", "measures.send", {"pk": "measures_link"}),
    "measures:stop_schedule": ("post", "measures.send", {"pk": "measures_schedule"}),
    "measures:administration": ("get", "chart.view", {"pk": "measures_administration"}),
    "measures:settings": ("get", "clinic.settings", {}),
    "measures:respond": ("get", PUBLIC, {"token": "measures_token"}),
}
API = {
    "ketaflow_measures_api_list_instruments": ("patients.view", {}),
    "ketaflow_measures_api_get_instrument": ("patients.view", {"code": "phq9"}),
    "ketaflow_measures_api_instrument_questionnaire": ("patients.view", {"code": "phq9"}),
    "ketaflow_measures_api_score": ("measures.record", {}),
    "ketaflow_measures_api_create_administration": ("measures.record", {}),
    "ketaflow_measures_api_patient_administrations": ("chart.view", {"patient_id": "patient"}),
    "ketaflow_measures_api_get_administration": (
        "chart.view",
        {"administration_id": "measures_administration"},
    ),
    "ketaflow_measures_api_administration_fhir": (
        "chart.view",
        {"administration_id": "measures_administration"},
    ),
    "ketaflow_measures_api_list_alerts": ("chart.view", {}),
    "ketaflow_measures_api_acknowledge_alert": ("alerts.respond", {"alert_id": "measures_alert"}),
}
OBJECTS = {
    "measures_alert": _alert,
    "measures_flag": _flag,
    "measures_administration": _administration,
    "measures_link": _link,
    "measures_token": _token,
    "measures_schedule": _schedule,
}
BODIES = {
    "ketaflow_measures_api_score": {
        "instrument": "gad7",
        "answers": {"1": 0, "2": 1, "3": 2, "4": 3, "5": 0, "6": 1, "7": 2},
    },
    "ketaflow_measures_api_create_administration": {
        "patient_id": 0,
        "instrument": "nope",
        "answers": {},
    },
    "ketaflow_measures_api_acknowledge_alert": {"note": "Called the patient"},
}
