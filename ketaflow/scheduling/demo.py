"""Demo calendar: the current and next week at every location (idempotent).

Active patients get two dosing visits a week at their location (past ones marked completed);
prospective patients get one consultation. A patient with any appointment in the window is
skipped, so running the seed again adds nothing.
"""

import datetime

from ketaflow.accounts.roles import FRONT_DESK, NURSE, OWNER, PRESCRIBER
from ketaflow.patients.models import Patient
from ketaflow.plans.models import TreatmentPlan
from ketaflow.scheduling import services
from ketaflow.scheduling.defaults import ROUTE_TYPE, ensure_types
from ketaflow.scheduling.models import Appointment
from ketaflow.scheduling.planner import Planner, min_interval_hours
from ketaflow.tenancy.models import Chair

UTC = datetime.UTC


def seed(*, clinic, staff, rng):
    actor = staff.get(FRONT_DESK) or staff.get(OWNER)
    types = ensure_types(clinic)
    tz = clinic.tz
    now = datetime.datetime.now(UTC)
    today = now.astimezone(tz).date()
    monday = today - datetime.timedelta(days=today.weekday())
    start, end = (
        datetime.datetime.combine(monday, datetime.time(0), tzinfo=tz).astimezone(UTC),
        datetime.datetime.combine(
            monday + datetime.timedelta(days=14), datetime.time(0), tzinfo=tz
        ).astimezone(UTC),
    )
    busy = set(
        Appointment.objects.for_clinic(clinic)
        .filter(start__gte=start, start__lt=end)
        .values_list("patient_id", flat=True)
    )
    plans = {
        p.patient_id: p for p in TreatmentPlan.objects.for_clinic(clinic).select_related("current")
    }
    locations = list(clinic.locations.all())
    for location in locations:  # consultations and KAP sessions need a room
        Chair.objects.get_or_create(
            clinic=clinic, location=location, name="Consultation room", defaults={"kind": "room"}
        )
    patients = (
        Patient.objects.for_clinic(clinic)
        .filter(status__in=["active", "prospective"])
        .order_by("mrn")
    )
    for index, patient in enumerate(patients):
        if patient.pk in busy:
            continue
        location = patient.preferred_location or locations[index % len(locations)]
        plan = plans.get(patient.pk)
        if patient.status == "prospective":
            type, visits, who = (
                types["consultation"],
                [monday + datetime.timedelta(days=7 + index % 5)],
                staff.get(PRESCRIBER),
            )
        elif plan is not None:
            type, who = types[ROUTE_TYPE[plan.current.route]], staff.get(NURSE)
            first = index % 2
            visits = [
                monday + datetime.timedelta(days=d)
                for d in (first, first + 3, first + 7, first + 10)
            ]
        else:
            continue
        prefer = datetime.time(8 + rng.randrange(0, 6), 0)
        for day in visits:
            day_start = datetime.datetime.combine(day, datetime.time(0), tzinfo=tz).astimezone(UTC)
            planner = Planner(
                clinic=clinic,
                location=location,
                start=day_start,
                end=day_start + datetime.timedelta(days=1),
                patient=patient,
                staff=None,
                interval_hours=min_interval_hours(clinic, plan),
            )
            slots = planner.slots_on(day, type=type, patient_id=patient.pk, prefer=prefer, limit=1)
            if not slots:
                continue
            kwargs = dict(
                clinic=clinic,
                actor=actor,
                patient=patient,
                type=type,
                location=location,
                start=slots[0].start,
                chair=slots[0].chair,
                plan=plan if type.route else None,
            )
            try:
                a = services.book(**kwargs, staff=who)
            except services.ConflictError:
                try:
                    a = services.book(**kwargs)
                except services.ConflictError:
                    continue
            if a.end < now:
                services.complete(appointment=a, actor=actor)
