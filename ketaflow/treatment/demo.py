"""Demo treatment day (idempotent): sessions in every state, exactly one open alert, and
esketamine sessions with REMS forms due.

Sessions are opened from the booked dosing appointments nearest to now (today's first), one
patient each, and charted through the services with synthetic readings timed relative to now.
A clinic that already has a session opened today is left alone."""

import datetime

from ketaflow.accounts.roles import NURSE, OWNER, PRESCRIBER
from ketaflow.clinical import dosing
from ketaflow.scheduling.models import Appointment
from ketaflow.treatment import builder, selectors, services
from ketaflow.treatment.models import TreatmentSession

PLAN = [
    # (route, state)
    (dosing.IV, "checked_in"),
    (dosing.IV, "pre_assessment"),
    (dosing.IV, "dosing"),
    (dosing.IV, "monitoring"),  # carries the one open alert
    (dosing.ESKETAMINE, "recovery"),
    (dosing.IV, "ready"),
    (dosing.IV, "discharged"),
    (dosing.IV, "signed"),
    (dosing.IV, "cancelled"),
    (dosing.ESKETAMINE, "discharged"),  # REMS form due
    (dosing.ESKETAMINE, "stopped"),
]


def _candidates(clinic):
    now = datetime.datetime.now(datetime.UTC)
    taken = set(
        TreatmentSession.objects.for_clinic(clinic).values_list("appointment_id", flat=True)
    )
    appts = [
        a
        for a in Appointment.objects.for_clinic(clinic)
        .filter(status="booked", plan__status="active", plan__current__isnull=False)
        .exclude(type__route="")
        .select_related("plan__current", "patient", "type")
        if a.pk not in taken
        and services.consent_valid_for(a.patient, a.plan.current.route) is not False
    ]
    appts.sort(key=lambda a: abs((a.start - now).total_seconds()))
    return appts


def seed(*, clinic, staff, rng):
    start, _end = selectors.local_day_bounds(clinic)
    if TreatmentSession.objects.for_clinic(clinic).filter(opened_at__gte=start).exists():
        return
    nurse = staff.get(NURSE) or staff.get(PRESCRIBER) or staff.get(OWNER)
    prescriber = staff.get(PRESCRIBER) or nurse
    if nurse is None:
        return
    used_patients = set()
    held_chairs = set(  # one patient per chair at a time: skip visits in a held chair
        TreatmentSession.objects.for_clinic(clinic)
        .filter(state__in=TreatmentSession.ACTIVE, chair__isnull=False)
        .values_list("chair_id", flat=True)
    )
    appts = _candidates(clinic)
    for route, state in PLAN:
        appt = next(
            (
                a
                for a in appts
                if a.plan.current.route == route
                and a.patient_id not in used_patients
                and (a.chair_id is None or a.chair_id not in held_chairs)
            ),
            None,
        )
        if appt is None:
            continue
        used_patients.add(appt.patient_id)
        if appt.chair_id is not None:
            held_chairs.add(appt.chair_id)
        if state == "stopped":
            s = builder.build(appt, to="dosing", nurse=nurse, prescriber=prescriber)
            services.stop_early(
                session=s,
                actor=nurse,
                reason="Vomiting after the first device, stopped early (synthetic)",
            )
            due = services.waste_due(s)
            if due is not None:  # the devices not given are wasted, witnessed
                services.record_waste(
                    session=s,
                    actor=nurse,
                    amount_mg=due["outstanding_mg"],
                    reason="Devices not given after the early stop (synthetic)",
                    witness=prescriber,
                )
            continue
        s = builder.build(appt, to=state, nurse=nurse, prescriber=prescriber)
        if state == "monitoring":
            services.record_vitals(
                session=s,
                actor=nurse,
                values={"systolic": 132, "diastolic": 84, "heart_rate": 82, "spo2": 90},
            )
