"""Routes of the scheduling app for tests/security/test_access_matrix.py."""

import datetime


def make_appointment(world):
    from ketaflow.scheduling.defaults import ensure_types
    from ketaflow.scheduling.models import Appointment

    clinic = world["clinic"]
    location = clinic.locations.get(name="North")
    start = datetime.datetime(2030, 1, 7, 14, 0, tzinfo=datetime.UTC)
    a = Appointment.objects.create(
        clinic=clinic,
        patient=world["patient"],
        type=ensure_types(clinic)["consultation"],
        location=location,
        chair=None,
        start=start,
        end=start + datetime.timedelta(hours=1),
        booked_by=world["staff"]["owner"],
    )
    return a.pk


def make_feed(world):
    from ketaflow.scheduling.models import FeedToken
    from ketaflow.scheduling.services import hash_token

    token = "kfcal_matrix-test-token"
    FeedToken.objects.create(
        clinic=world["clinic"],
        user=world["staff"]["nurse"],
        token_hash=hash_token(token),
        prefix=token[:12],
    )
    return token


def make_plan(world):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "plans" / "access_matrix.py"
    spec = importlib.util.spec_from_file_location("plans_matrix_for_scheduling", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_plan(world)


WEB = {
    "scheduling:week": ("get", "schedule.view", {}),
    "scheduling:day": ("get", "schedule.view", {}),
    "scheduling:book": ("get", "schedule.book", {}),
    "scheduling:book_course": ("get", "schedule.book", {"pk": "course_plan"}),
    "scheduling:appointment": ("get", "schedule.view", {"pk": "appointment"}),
    "scheduling:appointment_ics": ("get", "schedule.view", {"pk": "appointment"}),
    "scheduling:appointment_action": (
        "post",
        "schedule.book",
        {"pk": "appointment", "action": "cancel"},
    ),
    "scheduling:settings": ("get", "clinic.settings", {}),
    "scheduling:staff_hours": ("get", "clinic.settings", {"pk": "schedule_staff_member"}),
    "scheduling:type_minutes": ("post", "clinic.settings", {"pk": "appointment_type"}),
    "scheduling:closure_delete": ("post", "clinic.settings", {"pk": "closure"}),
    "scheduling:feed_token": ("get", "schedule.view", {}),
    "scheduling:feed": ("get", "public", {"token": "feed"}),
}
API = {
    "ketaflow_scheduling_api_list_types": ("schedule.view", {}),
    "ketaflow_scheduling_api_list_appointments": ("schedule.view", {}),
    "ketaflow_scheduling_api_create_appointment": ("schedule.book", {}),
    "ketaflow_scheduling_api_get_appointment": ("schedule.view", {"appointment_id": "appointment"}),
    "ketaflow_scheduling_api_reschedule_appointment": (
        "schedule.book",
        {"appointment_id": "appointment"},
    ),
    "ketaflow_scheduling_api_cancel_appointment": (
        "schedule.book",
        {"appointment_id": "appointment"},
    ),
    "ketaflow_scheduling_api_no_show_appointment": (
        "schedule.book",
        {"appointment_id": "appointment"},
    ),
    "ketaflow_scheduling_api_free_slots": ("schedule.view", {}),
}


def make_type(world):
    from ketaflow.scheduling.defaults import ensure_types

    return ensure_types(world["clinic"])["follow-up"].pk


def make_closure(world):
    from ketaflow.scheduling.models import Closure

    return Closure.objects.create(
        clinic=world["clinic"], date=datetime.date(2030, 1, 1), reason="Synthetic holiday"
    ).pk


OBJECTS = {
    "appointment": make_appointment,
    "feed": make_feed,
    "course_plan": make_plan,
    "schedule_staff_member": lambda world: world["staff"]["nurse"].pk,
    "appointment_type": make_type,
    "closure": make_closure,
}
BODIES = {
    "scheduling:appointment_action": {"reason": ""},
    "scheduling:type_minutes": {"minutes": "30"},
    "ketaflow_scheduling_api_create_appointment": {
        "patient_id": 0,
        "type_id": 0,
        "location_id": 0,
        "start": "2030-01-07T14:00:00Z",
    },
    "ketaflow_scheduling_api_reschedule_appointment": {
        "start": "2030-01-07T16:00:00Z",
        "reason": "Synthetic",
    },
    "ketaflow_scheduling_api_cancel_appointment": {"reason": "Synthetic"},
    "ketaflow_scheduling_api_no_show_appointment": {"reason": "Synthetic"},
}
