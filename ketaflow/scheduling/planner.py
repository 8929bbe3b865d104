"""Conflict detection and free-slot search over one window of the calendar.

A ``Planner`` loads everything it needs for a window in a constant number of queries (the
appointments touching the location, staff member or patient; closures; clinic and staff hours;
chairs), then answers every question in memory. Single bookings, the free-slot search and whole
course proposals all use it, so the rules live in one place.
"""

import datetime
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Q

from ketaflow.tenancy.models import Chair

UTC = datetime.UTC


@dataclass(frozen=True)
class Conflict:
    kind: str  # chair, room, staff, patient, min_interval, hours, closure, staff_hours
    message: str
    appointment_id: int | None = None

    def as_dict(self) -> dict:
        return {"kind": self.kind, "message": self.message, "appointment_id": self.appointment_id}


@dataclass
class Busy:
    id: int | None
    start: datetime.datetime
    end: datetime.datetime
    chair_id: int | None
    staff_id: int | None
    patient_id: int
    is_dose: bool
    label: str = ""


@dataclass
class Slot:
    start: datetime.datetime
    end: datetime.datetime
    chair: Chair | None

    def as_dict(self) -> dict:
        return {
            "start": self.start,
            "end": self.end,
            "chair_id": self.chair.pk if self.chair else None,
            "chair": self.chair.name if self.chair else None,
        }


def min_interval_hours(clinic, plan=None) -> Decimal:
    """The protocol's minimum interval (as signed in the plan), else the clinic's setting."""
    if plan is not None and plan.current_id:
        value = plan.current.protocol_data.get("min_interval_hours")
        if value is not None:
            return Decimal(str(value))
    from ketaflow.plans.selectors import dosing_settings

    return dosing_settings(clinic).min_interval_hours


@dataclass
class Planner:
    clinic: object
    location: object
    start: datetime.datetime
    end: datetime.datetime
    patient: object = None
    staff: object = None
    exclude_ids: tuple = ()
    interval_hours: Decimal = Decimal(24)
    busy: list = field(default_factory=list)

    def __post_init__(self):
        from ketaflow.scheduling.models import Appointment, Closure, WorkingHours
        from ketaflow.scheduling.selectors import schedule_settings

        tz = self.clinic.tz
        self.tz = tz
        self.settings = schedule_settings(self.clinic)
        margin = datetime.timedelta(hours=float(self.interval_hours))
        who = Q(location=self.location)
        if self.patient is not None:
            who |= Q(patient=self.patient)
        if self.staff is not None:
            who |= Q(staff=self.staff)
        rows = (
            Appointment.objects.for_clinic(self.clinic)
            .filter(who, status__in=Appointment.ACTIVE)
            .filter(start__lt=self.end + margin, end__gt=self.start - margin)
            .exclude(pk__in=self.exclude_ids)
            .values_list(
                "id",
                "start",
                "end",
                "chair_id",
                "staff_id",
                "patient_id",
                "type__route",
                "type__name",
            )
        )
        self.busy = []
        self.by_chair, self.by_staff, self.by_patient = {}, {}, {}
        for r in rows:
            self._index(Busy(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7]))
        first = self.start.astimezone(tz).date()
        last = self.end.astimezone(tz).date()
        self.closures = {
            c.date: c.reason
            for c in Closure.objects.filter(
                clinic=self.clinic, date__gte=first, date__lte=last
            ).filter(Q(location__isnull=True) | Q(location=self.location))
        }
        self.staff_hours = {}
        if self.staff is not None:
            for wh in WorkingHours.objects.filter(clinic=self.clinic, user=self.staff):
                self.staff_hours.setdefault(wh.weekday, []).append(wh)
        self.chairs = list(
            Chair.objects.filter(clinic=self.clinic, location=self.location).order_by("name")
        )

    def _index(self, b: Busy) -> None:
        self.busy.append(b)
        for index, key in (
            (self.by_chair, b.chair_id),
            (self.by_staff, b.staff_id),
            (self.by_patient, b.patient_id),
        ):
            if key is not None:
                index.setdefault(key, []).append(b)

    def _near(self, start, end, chair, staff_id, patient_id):
        """Busy entries sharing the chair, staff member or patient (deduplicated)."""
        seen = {}
        for index, key in (
            (self.by_chair, chair.pk if chair is not None else None),
            (self.by_staff, staff_id),
            (self.by_patient, patient_id),
        ):
            if key is not None:
                for b in index.get(key, ()):
                    seen[id(b)] = b
        return seen.values()

    def is_free(self, *, start, end, chair, type, patient_id, staff_id=None) -> bool:
        """Fast yes/no for the slot search (hours and closures are checked by the caller)."""
        if chair is not None:
            for b in self.by_chair.get(chair.pk, ()):
                if b.start < end and start < b.end:
                    return False
        if staff_id is not None:
            for b in self.by_staff.get(staff_id, ()):
                if b.start < end and start < b.end:
                    return False
        gap = datetime.timedelta(hours=float(self.interval_hours))
        for b in self.by_patient.get(patient_id, ()):
            if b.start < end and start < b.end:
                return False
            if type.is_dose and b.is_dose and abs(b.start - start) < gap:
                return False
        return not self._outside_staff_hours(start, end, staff_id)

    def _outside_staff_hours(self, start, end, staff_id) -> bool:
        if staff_id is None or self.staff is None or not self.staff_hours:
            return False
        ls, le = start.astimezone(self.tz), end.astimezone(self.tz)
        hours = self.staff_hours.get(ls.weekday(), [])
        return not any(wh.start <= ls.time() and le.time() <= wh.end for wh in hours)

    def _staff_hours_message(self, local_start, local_end) -> str:
        from ketaflow.scheduling.models import WEEKDAYS

        who = str(self.staff)
        day = WEEKDAYS[local_start.weekday()]
        hours = self.staff_hours.get(local_start.weekday(), [])
        when = f"{local_start:%a %Y-%m-%d %H:%M}-{local_end:%H:%M}"
        if not hours:
            return f"{when} is outside {who}'s working hours: {who} does not work on {day}s."
        spans = ", ".join(f"{wh.start:%H:%M}-{wh.end:%H:%M}" for wh in hours)
        return f"{when} is outside {who}'s working hours ({day}: {spans})."

    # --------------------------------------------------------------- checks
    def check(self, *, start, end, chair, type, patient_id, staff_id=None, label="") -> list:
        """Every conflict of a candidate booking, in words."""
        out = []
        tz = self.tz
        local_start, local_end = start.astimezone(tz), end.astimezone(tz)
        day = local_start.date()
        if day in self.closures:
            out.append(Conflict("closure", f"The clinic is closed on {day}: {self.closures[day]}."))
        s = self.settings
        if (
            local_start.weekday() not in s.days
            or local_start.time() < s.open_time
            or local_end.time() > s.close_time
            or local_end.date() != day
        ):
            out.append(
                Conflict(
                    "hours",
                    f"{local_start:%a %Y-%m-%d %H:%M}-{local_end:%H:%M} is outside clinic hours "
                    f"({s.open_time:%H:%M}-{s.close_time:%H:%M} on open days).",
                )
            )
        if self._outside_staff_hours(start, end, staff_id):
            out.append(Conflict("staff_hours", self._staff_hours_message(local_start, local_end)))
        if type.resource != "none" and chair is None:
            out.append(Conflict(type.resource, f"Choose a {type.resource} for this visit."))
        if chair is not None and type.resource != "none" and chair.kind != type.resource:
            out.append(Conflict(type.resource, f"{chair.name} is not a {type.resource}."))
        gap = datetime.timedelta(hours=float(self.interval_hours))
        for b in self._near(start, end, chair, staff_id, patient_id):
            overlap = b.start < end and start < b.end
            when = f"{b.start.astimezone(tz):%a %Y-%m-%d %H:%M}"
            if overlap and chair is not None and b.chair_id == chair.pk:
                out.append(
                    Conflict(chair.kind, f"{chair.name} is booked at {when} ({b.label}).", b.id)
                )
            if overlap and staff_id is not None and b.staff_id == staff_id:
                out.append(Conflict("staff", f"The staff member is booked at {when}.", b.id))
            if overlap and b.patient_id == patient_id:
                out.append(Conflict("patient", f"The patient already has a visit at {when}.", b.id))
            if (
                type.is_dose
                and b.is_dose
                and b.patient_id == patient_id
                and abs(b.start - start) < gap
            ):
                out.append(
                    Conflict(
                        "min_interval",
                        f"Another dose is booked at {when}: doses must be at least "
                        f"{self.interval_hours.normalize()} h apart (protocol minimum interval).",
                        b.id,
                    )
                )
        return out

    def add(self, *, start, end, chair, patient_id, staff_id, is_dose, label=""):
        self._index(
            Busy(
                None, start, end, chair.pk if chair else None, staff_id, patient_id, is_dose, label
            )
        )

    # --------------------------------------------------------------- search
    def slots_on(
        self,
        day: datetime.date,
        *,
        type,
        patient_id,
        staff_id=None,
        minutes=None,
        prefer: datetime.time | None = None,
        limit=20,
    ) -> list:
        """Free (start, chair) pairs on a local ``day``, preferred time first."""
        s = self.settings
        minutes = minutes or type.minutes
        if day in self.closures or day.weekday() not in s.days:
            return []
        t = datetime.datetime.combine(day, s.open_time, tzinfo=self.tz)
        close = datetime.datetime.combine(day, s.close_time, tzinfo=self.tz)
        times = []
        while t + datetime.timedelta(minutes=minutes) <= close:
            times.append(t)
            t += datetime.timedelta(minutes=s.slot_minutes)
        if prefer is not None:
            times.sort(
                key=lambda x: (
                    x.time() < prefer,
                    abs((x.hour * 60 + x.minute) - (prefer.hour * 60 + prefer.minute)),
                )
            )
        if type.resource == "none":
            candidates = [None]
        else:
            candidates = [c for c in self.chairs if c.kind == type.resource]
            if not candidates:
                return []
        found = []
        for local in times:
            start = local.astimezone(UTC)
            end = (local + datetime.timedelta(minutes=minutes)).astimezone(UTC)
            for chair in candidates:
                if self.is_free(
                    start=start,
                    end=end,
                    chair=chair,
                    type=type,
                    patient_id=patient_id,
                    staff_id=staff_id,
                ):
                    found.append(Slot(start, end, chair))
                    break
            if len(found) >= limit:
                break
        return found
