"""Reads for the calendar: week and day grids, free slots, plan visits."""

import datetime
from collections import defaultdict

from django.http import Http404

from ketaflow.scheduling.models import Appointment, AppointmentType, ScheduleSettings
from ketaflow.tenancy.models import Chair, Location

UTC = datetime.UTC


def schedule_settings(clinic) -> ScheduleSettings:
    return ScheduleSettings.objects.filter(clinic=clinic).first() or ScheduleSettings(clinic=clinic)


def types(clinic):
    from ketaflow.scheduling.defaults import ensure_types

    ensure_types(clinic)
    return list(AppointmentType.objects.filter(clinic=clinic))


def get_type(clinic, pk) -> AppointmentType:
    try:
        return AppointmentType.objects.get(clinic=clinic, pk=int(pk))
    except (AppointmentType.DoesNotExist, ValueError, TypeError):
        raise Http404("No such appointment type.") from None


def get_location(clinic, pk) -> Location:
    try:
        return Location.objects.get(clinic=clinic, pk=int(pk))
    except (Location.DoesNotExist, ValueError, TypeError):
        raise Http404("No such location.") from None


def get_chair(clinic, pk) -> Chair | None:
    if pk in (None, ""):
        return None
    try:
        return Chair.objects.get(clinic=clinic, pk=int(pk))
    except (Chair.DoesNotExist, ValueError, TypeError):
        raise Http404("No such chair or room.") from None


def appointments(clinic):
    return Appointment.objects.for_clinic(clinic).select_related(
        "patient", "type", "location", "chair", "staff"
    )


def get_appointment(clinic, pk) -> Appointment:
    try:
        return appointments(clinic).get(pk=int(pk))
    except (Appointment.DoesNotExist, ValueError, TypeError):
        raise Http404("No such appointment in this clinic.") from None


def local_bounds(clinic, first: datetime.date, days: int):
    tz = clinic.tz
    start = datetime.datetime.combine(first, datetime.time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.datetime.combine(
        first + datetime.timedelta(days=days), datetime.time(0), tzinfo=tz
    ).astimezone(UTC)
    return start, end


def in_range(clinic, first, days, *, location=None, staff=None, patient=None, include_all=False):
    start, end = local_bounds(clinic, first, days)
    qs = appointments(clinic).filter(start__lt=end, end__gt=start)
    if location is not None:
        qs = qs.filter(location=location)
    if staff is not None:
        qs = qs.filter(staff=staff)
    if patient is not None:
        qs = qs.filter(patient=patient)
    if not include_all:
        qs = qs.exclude(status=Appointment.Status.RESCHEDULED)
    return qs.order_by("start", "id")


def grid(clinic, first: datetime.date, days: int, *, location=None, staff=None):
    """Rows (chairs, or one row for a staff member) × local days, appointments in each cell.

    A constant number of queries whatever the number of appointments (chairs, then one
    ``values()`` query for the appointments); labels are built here, not in the template."""
    from django.urls import reverse

    tz = clinic.tz
    dates = [first + datetime.timedelta(days=i) for i in range(days)]
    qs = in_range(clinic, first, days, location=location, staff=staff).values_list(
        "id",
        "start",
        "end",
        "status",
        "chair_id",
        "type__name",
        "patient__preferred_name",
        "patient__legal_given_name",
        "patient__legal_family_name",
        "patient_id",
    )
    href = reverse("scheduling:appointment", args=[0])[:-2]
    labels = dict(Appointment.Status.choices)
    cells = defaultdict(list)
    count = 0
    patient_ids = []
    for pk, start, end, status, chair_id, type_name, preferred, given, family, patient_id in qs:
        count += 1
        patient_ids.append(patient_id)
        ls, le = start.astimezone(tz), end.astimezone(tz)
        text = f"{ls:%H:%M}-{le:%H:%M} {type_name} · {preferred or given} {family}"
        if status != Appointment.Status.BOOKED:
            text += f" ({labels[status]})"
        key = chair_id if location is not None else 0
        cells[(key, ls.date())].append({"href": f"{href}{pk}/", "status": status, "text": text})
    if location is not None:
        chairs = list(Chair.objects.filter(clinic=clinic, location=location).order_by("name"))
        resources = [(c.pk, str(c.name), c.get_kind_display()) for c in chairs]
        resources.append((None, "No chair or room", ""))
    else:
        resources = [(0, "Appointments", "")]
    table = [
        {"id": rid, "name": name, "kind": kind, "cells": [cells.get((rid, d), []) for d in dates]}
        for rid, name, kind in resources
    ]
    return {"dates": dates, "rows": table, "count": count, "patient_ids": patient_ids}


def plan_visits(clinic, plan) -> dict:
    rows = list(
        appointments(clinic).filter(plan=plan).exclude(status=Appointment.Status.RESCHEDULED)
    )
    count = {s: 0 for s in Appointment.Status.values}
    doses = {"completed": 0, "booked": 0}
    companions = {"completed": 0, "booked": 0}
    for a in rows:
        count[a.status] += 1
        if a.status in doses:
            (doses if a.type.route else companions)[a.status] += 1
    phase_visits = None
    try:
        from ketaflow.plans.selectors import protocol_of

        phase = protocol_of(plan.current).phase(plan.phase)
        phase_visits = phase.visits.text() if phase.visits else None
    except Exception:
        phase_visits = None
    return {
        "rows": rows,
        "completed": count["completed"],
        "booked": count["booked"],
        "planned": count["completed"] + count["booked"],
        "cancelled": count["cancelled"],
        "no_show": count["no_show"],
        "phase_visits": phase_visits,
        "doses_completed": doses["completed"],
        "doses_planned": doses["completed"] + doses["booked"],
        "companions_completed": companions["completed"],
        "companions_planned": companions["completed"] + companions["booked"],
    }
