import contextlib
import datetime

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from ketaflow.accounts.models import User
from ketaflow.audit import services as audit
from ketaflow.patients import selectors as patient_selectors
from ketaflow.scheduling import ics, selectors, services
from ketaflow.scheduling.forms import ScheduleSettingsForm
from ketaflow.scheduling.models import Appointment, Closure, FeedToken
from ketaflow.scheduling.planner import Planner, min_interval_hours
from ketaflow.web import bounds
from ketaflow.web.decorators import clinic_required

UTC = datetime.UTC


def _date(value, default):
    """A date from the query string, or ``default`` when it is malformed or outside the
    clinic's window (bounds.check_clinic_date), so far dates never reach the calendar."""
    try:
        return bounds.check_clinic_date(datetime.date.fromisoformat(value)) if value else default
    except ValueError:
        return default


def _local(clinic, value: str) -> datetime.datetime:
    """'YYYY-MM-DDTHH:MM' in the clinic's time zone -> aware UTC datetime."""
    try:
        naive = datetime.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValidationError({"start": ["Give the date and time (YYYY-MM-DD HH:MM)."]}) from None
    try:
        bounds.check_planning_date(naive)
    except ValueError as exc:
        raise ValidationError({"start": [f"The {exc}."]}) from None
    return naive.replace(tzinfo=clinic.tz).astimezone(UTC)


def _staff(clinic, pk):
    if pk in (None, ""):
        return None
    try:
        return User.objects.get(pk=int(pk), memberships__clinic=clinic, memberships__is_active=True)
    except (User.DoesNotExist, ValueError, TypeError):
        raise Http404("No such staff member.") from None


def _staff_list(clinic):
    return User.objects.filter(memberships__clinic=clinic, memberships__is_active=True).order_by(
        "full_name"
    )


# ---------------------------------------------------------------------------
# Calendar
# ---------------------------------------------------------------------------


def _calendar(request, days: int):
    clinic = request.clinic
    locations = list(clinic.locations.all())
    staff = _staff(clinic, request.GET.get("staff"))
    location = None
    if staff is None:
        location = (
            selectors.get_location(clinic, request.GET["location"])
            if request.GET.get("location")
            else (locations[0] if locations else None)
        )
    day = _date(request.GET.get("date"), clinic.today())
    first = day - datetime.timedelta(days=day.weekday()) if days == 7 else day
    data = selectors.grid(clinic, first, days, location=location, staff=staff)
    # Patient names are on the page: one list read naming the patients shown. The calendar is
    # clinic-wide, like an appointment's own page (booking is not limited to one's locations).
    audit.record_list_read(
        request,
        patient_ids=data["patient_ids"],
        object_type="scheduling.calendar",
        detail={
            "filters": {
                "first": str(first),
                "days": days,
                "location": location.pk if location else None,
                "staff": staff.pk if staff else None,
            },
            "appointments": data["count"],
        },
    )
    return render(
        request,
        "scheduling/calendar.html",
        {
            **data,
            "days": days,
            "first": first,
            "prev": first - datetime.timedelta(days=days),
            "next": first + datetime.timedelta(days=days),
            "location": location,
            "staff_member": staff,
            "locations": locations,
            "staff_list": _staff_list(clinic),
            "tzname": clinic.timezone,
        },
    )


@clinic_required("schedule.view")
def week(request):
    return _calendar(request, 7)


@clinic_required("schedule.view")
def day(request):
    return _calendar(request, 1)


@clinic_required("schedule.view")
def appointment_detail(request, pk):
    a = selectors.get_appointment(request.clinic, pk)
    audit.record_read(request, patient=a.patient, obj=a)
    a.local_start = a.start.astimezone(request.clinic.tz)
    a.local_end = a.end.astimezone(request.clinic.tz)
    chairs = list(request.clinic.chairs.filter(location=a.location))
    return render(request, "scheduling/appointment.html", {"a": a, "chairs": chairs, "errors": {}})


def _conflict_messages(exc):
    return [c.message for c in exc.conflicts]


@clinic_required("schedule.book")
@require_POST
def appointment_action(request, pk, action):
    a = selectors.get_appointment(request.clinic, pk)
    reason = request.POST.get("reason", "")
    try:
        if action == "cancel":
            services.cancel(appointment=a, actor=request.user, reason=reason)
        elif action == "no-show":
            services.no_show(appointment=a, actor=request.user, reason=reason)
        elif action == "complete":
            services.complete(appointment=a, actor=request.user)
        elif action == "reschedule":
            new = services.reschedule(
                appointment=a,
                actor=request.user,
                start=_local(request.clinic, request.POST.get("start", "")),
                reason=reason,
                chair=selectors.get_chair(request.clinic, request.POST.get("chair")),
            )
            messages.success(request, "Visit moved.")
            return redirect("scheduling:appointment", pk=new.pk)
        else:
            raise Http404("No such action.")
    except services.ConflictError as exc:
        a.local_start = a.start.astimezone(request.clinic.tz)
        a.local_end = a.end.astimezone(request.clinic.tz)
        return render(
            request,
            "scheduling/appointment.html",
            {
                "a": a,
                "chairs": list(request.clinic.chairs.filter(location=a.location)),
                "conflicts": _conflict_messages(exc),
                "posted": request.POST,
                "errors": {},
            },
            status=409,
        )
    except ValidationError as exc:
        for errors in exc.message_dict.values():
            for error in errors:
                messages.error(request, error)
    else:
        messages.success(request, "Saved.")
    return redirect("scheduling:appointment", pk=a.pk)


@clinic_required("schedule.view")
def appointment_ics(request, pk):
    a = selectors.get_appointment(request.clinic, pk)
    response = HttpResponse(ics.patient_ics(a), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="appointment-{a.pk}.ics"'
    return response


@clinic_required("schedule.book")
@require_http_methods(["GET", "POST"])
def book(request):
    """Booking form with suggested free slots (no dragging): choose a slot or type a time."""
    clinic = request.clinic
    src = request.POST if request.method == "POST" else request.GET
    types = selectors.types(clinic)
    locations = list(clinic.locations.all())
    patient = patient_selectors.get_patient(clinic, src["patient"]) if src.get("patient") else None
    type = selectors.get_type(clinic, src["type"]) if src.get("type") else types[0]
    location = (
        selectors.get_location(clinic, src["location"])
        if src.get("location")
        else (
            patient.preferred_location if patient and patient.preferred_location else locations[0]
        )
    )
    staff = _staff(clinic, src.get("staff"))
    day = _date(src.get("date"), clinic.today())
    plan = None
    if src.get("plan"):
        from ketaflow.plans.selectors import get_plan

        plan = get_plan(clinic, src["plan"])
    conflicts, errors = [], {}
    if request.method == "POST" and patient is not None:
        try:
            a = services.book(
                clinic=clinic,
                actor=request.user,
                patient=patient,
                type=type,
                location=location,
                start=_local(clinic, src.get("start", "")),
                chair=selectors.get_chair(clinic, src.get("chair")),
                staff=staff,
                plan=plan,
                notes=src.get("notes", ""),
            )
        except services.ConflictError as exc:
            conflicts = _conflict_messages(exc)
        except ValidationError as exc:
            errors = exc.message_dict
        else:
            messages.success(request, "Visit booked.")
            return redirect("scheduling:appointment", pk=a.pk)
    slots = []
    if patient is not None:
        tz = clinic.tz
        start = datetime.datetime.combine(day, datetime.time(0), tzinfo=tz).astimezone(UTC)
        planner = Planner(
            clinic=clinic,
            location=location,
            start=start,
            end=start + datetime.timedelta(days=1),
            patient=patient,
            staff=staff,
            interval_hours=min_interval_hours(clinic, plan),
        )
        slots = planner.slots_on(
            day, type=type, patient_id=patient.pk, staff_id=staff.pk if staff else None, limit=12
        )
        for s in slots:
            s.local = s.start.astimezone(tz)
    return render(
        request,
        "scheduling/book.html",
        {
            "patient": patient,
            "type": type,
            "types": types,
            "location": location,
            "locations": locations,
            "staff_member": staff,
            "staff_list": _staff_list(clinic),
            "day": day,
            "slots": slots,
            "conflicts": conflicts,
            "errors": errors,
            "chairs": list(clinic.chairs.filter(location=location)),
            "plan": plan,
            "posted": src,
        },
        status=409 if conflicts else (422 if errors else 200),
    )


@clinic_required("schedule.book")
@require_http_methods(["GET", "POST"])
def book_course(request, pk):
    """Propose every visit of the plan's current phase; adjust; confirm in one step."""
    from ketaflow.plans.selectors import get_plan, protocol_of

    clinic = request.clinic
    plan = get_plan(clinic, pk)
    protocol = protocol_of(plan.current)
    phase = protocol.phase(plan.phase)
    src = request.POST if request.method == "POST" else request.GET
    location = (
        selectors.get_location(clinic, src["location"])
        if src.get("location")
        else (plan.patient.preferred_location or clinic.locations.first())
    )
    staff = _staff(clinic, src.get("staff"))
    start_date = _date(src.get("start_date"), max(plan.current.start_date, clinic.today()))
    try:
        prefer = datetime.time.fromisoformat(src.get("prefer") or "09:00")
    except ValueError:
        prefer = datetime.time(9, 0)
    spacing = {}
    for name in ("per_week", "visits", "interval_weeks", "interval_days"):
        if src.get(name, "").strip().isdigit():
            spacing[name] = int(src[name])
    if src.get("weekly_counts"):
        with contextlib.suppress(ValueError):
            spacing["weekly_counts"] = [int(x) for x in src["weekly_counts"].split(",")]
    errors, conflicts, proposals = {}, [], []
    if request.method == "POST" and "confirm" in request.POST:
        visits = []
        try:
            count = int(request.POST.get("count", "0"))
            for i in range(count):
                if request.POST.get(f"skip_{i}"):
                    continue
                visit = request.POST.get(f"visit_{i}", "")
                visits.append(
                    {
                        "start": _local(clinic, request.POST.get(f"start_{i}", "")),
                        "chair": selectors.get_chair(clinic, request.POST.get(f"chair_{i}")),
                        "visit": int(visit) if visit.isdigit() else None,
                        "type": selectors.get_type(clinic, request.POST[f"type_{i}"])
                        if request.POST.get(f"type_{i}")
                        else None,
                    }
                )
            booked = services.book_course(
                clinic=clinic,
                actor=request.user,
                plan=plan,
                location=location,
                visits=visits,
                staff=staff,
            )
        except services.ConflictError as exc:
            conflicts = [f"Row {(exc.index or 0) + 1}: {m}" for m in _conflict_messages(exc)]
        except ValidationError as exc:
            errors = exc.message_dict
        else:
            messages.success(request, f"{len(booked)} visits booked.")
            return redirect("plans:detail", pk=plan.pk)
    if request.method == "POST" or src.get("propose"):
        try:
            proposals = services.propose_course(
                clinic=clinic,
                plan=plan,
                location=location,
                start_date=start_date,
                prefer=prefer,
                staff=staff,
                **spacing,
            )
        except ValidationError as exc:
            errors = {**errors, **exc.message_dict}
        for p in proposals:
            if p["slot"]:
                p["local"] = p["slot"].start.astimezone(clinic.tz)
    return render(
        request,
        "scheduling/course.html",
        {
            "plan": plan,
            "patient": plan.patient,
            "protocol": protocol,
            "phase": phase,
            "location": location,
            "locations": list(clinic.locations.all()),
            "staff_member": staff,
            "staff_list": _staff_list(clinic),
            "start_date": start_date,
            "prefer": prefer,
            "spacing": spacing,
            "proposals": proposals,
            "errors": errors,
            "conflicts": conflicts,
            "chairs": list(clinic.chairs.filter(location=location)) if location else [],
            "companion_window": selectors.schedule_settings(clinic).companion_window_days,
        },
        status=409 if conflicts else 200,
    )


# ---------------------------------------------------------------------------
# Settings, feeds, Today panel
# ---------------------------------------------------------------------------


def _types_with_defaults(clinic):
    from ketaflow.scheduling.defaults import DEFAULT_MINUTES, FLOOR_MINUTES

    rows = selectors.types(clinic)
    for t in rows:
        t.default_minutes = DEFAULT_MINUTES.get(t.code)
        t.floor = max(t.minimum_minutes, FLOOR_MINUTES.get(t.code, 0))
    return rows


def _staff_hours_rows(clinic):
    from ketaflow.scheduling.models import WEEKDAYS, WorkingHours

    hours = {}
    for wh in WorkingHours.objects.filter(clinic=clinic).order_by("weekday", "start"):
        hours.setdefault(wh.user_id, []).append(
            f"{WEEKDAYS[wh.weekday][:3]} {wh.start:%H:%M}-{wh.end:%H:%M}"
        )
    return [{"user": u, "hours": hours.get(u.pk, [])} for u in _staff_list(clinic)]


@clinic_required("clinic.settings")
@require_http_methods(["GET", "POST"])
def settings_view(request):
    clinic = request.clinic
    row = selectors.schedule_settings(clinic)
    form = ScheduleSettingsForm(request.POST or None, instance=row)
    if request.method == "POST":
        try:
            if request.POST.get("closure_date"):
                services.add_closure(
                    clinic=clinic,
                    actor=request.user,
                    date=_date(request.POST["closure_date"], None),
                    reason=request.POST.get("closure_reason", ""),
                    location=selectors.get_location(clinic, request.POST["closure_location"])
                    if request.POST.get("closure_location")
                    else None,
                )
                messages.success(request, "Closure added.")
            else:
                services.save_settings(clinic=clinic, actor=request.user, data=request.POST)
                messages.success(request, "Scheduling settings saved.")
        except ValidationError as exc:
            form.is_valid()
            for errors in exc.message_dict.values():
                for error in errors:
                    messages.error(request, error)
        else:
            return redirect("scheduling:settings")
    return render(
        request,
        "scheduling/settings.html",
        {
            "form": form,
            "sources": row.SOURCES,
            "types": _types_with_defaults(clinic),
            "closures": Closure.objects.filter(
                clinic=clinic, date__gte=clinic.today()
            ).select_related("location"),
            "locations": list(clinic.locations.all()),
            "staff_rows": _staff_hours_rows(clinic),
        },
    )


def _parse_time(value):
    try:
        return datetime.time.fromisoformat(value) if value else None
    except ValueError:
        return "invalid"


@clinic_required("clinic.settings")
@require_http_methods(["GET", "POST"])
def staff_hours(request, pk):
    """A staff member's weekly working hours (one span a day; both times empty: not working).
    With no hours recorded at all the member is bookable at any time in clinic hours."""
    from ketaflow.scheduling.models import WEEKDAYS, WorkingHours

    clinic = request.clinic
    member = _staff(clinic, pk)
    errors = {}
    if request.method == "POST":
        hours = []
        for d in range(7):
            start = _parse_time(request.POST.get(f"start_{d}", ""))
            end = _parse_time(request.POST.get(f"end_{d}", ""))
            if start is None and end is None:
                continue
            if "invalid" in (start, end) or None in (start, end):
                errors.setdefault(f"end_{d}", []).append(
                    f"{WEEKDAYS[d]}: give both a start and an end time (HH:MM), or neither."
                )
                continue
            hours.append((d, start, end))
        if not errors:
            try:
                services.set_working_hours(
                    clinic=clinic, actor=request.user, user=member, hours=hours
                )
            except ValidationError as exc:
                errors = exc.message_dict
            else:
                messages.success(request, f"Working hours of {member} saved.")
                return redirect("scheduling:settings")
    current = {}
    for wh in WorkingHours.objects.filter(clinic=clinic, user=member):
        current.setdefault(wh.weekday, wh)
    rows = []
    for d, name in enumerate(WEEKDAYS):
        wh = current.get(d)
        rows.append(
            {
                "day": d,
                "name": name,
                "start": request.POST.get(f"start_{d}", "")
                if request.method == "POST"
                else (f"{wh.start:%H:%M}" if wh else ""),
                "end": request.POST.get(f"end_{d}", "")
                if request.method == "POST"
                else (f"{wh.end:%H:%M}" if wh else ""),
                "errors": errors.get(f"end_{d}", []),
            }
        )
    return render(
        request,
        "scheduling/staff_hours.html",
        {
            "member": member,
            "rows": rows,
            "errors": errors,
            "settings": selectors.schedule_settings(clinic),
        },
        status=422 if errors else 200,
    )


@clinic_required("clinic.settings")
@require_POST
def type_minutes(request, pk):
    type = selectors.get_type(request.clinic, pk)
    try:
        services.set_type_minutes(
            clinic=request.clinic,
            actor=request.user,
            type=type,
            minutes=request.POST.get("minutes"),
        )
    except ValidationError as exc:
        for errors in exc.message_dict.values():
            for error in errors:
                messages.error(request, error)
    else:
        messages.success(request, f"{type.name}: {type.minutes} min.")
    return redirect("scheduling:settings")


@clinic_required("clinic.settings")
@require_POST
def closure_delete(request, pk):
    try:
        closure = Closure.objects.get(clinic=request.clinic, pk=pk)
    except Closure.DoesNotExist:
        raise Http404("No such closure in this clinic.") from None
    services.remove_closure(clinic=request.clinic, actor=request.user, closure=closure)
    messages.success(request, f"Closure on {closure.date} removed.")
    return redirect("scheduling:settings")


@clinic_required("schedule.view")
@require_http_methods(["GET", "POST"])
def feed_token(request):
    token = None
    if request.method == "POST":
        token = services.new_feed_token(clinic=request.clinic, actor=request.user)
    active = FeedToken.objects.filter(
        clinic=request.clinic, user=request.user, revoked_at__isnull=True
    ).first()
    return render(request, "scheduling/feed.html", {"token": token, "active": active})


def feed(request, token):
    """The staff member's iCalendar feed; the token in the URL is the credential."""
    row = (
        FeedToken.objects.select_related("clinic", "user")
        .filter(token_hash=services.hash_token(token), revoked_at__isnull=True)
        .first()
    )
    if row is None or not row.user.is_active:
        raise Http404("Unknown calendar feed.")
    from ketaflow.accounts.permissions import can

    if not can(row.user, "schedule.view", row.clinic):
        raise Http404("Unknown calendar feed.")
    now = timezone.now()
    rows = (
        Appointment.objects.for_clinic(row.clinic)
        .filter(
            staff=row.user,
            start__gte=now - datetime.timedelta(days=14),
            start__lte=now + datetime.timedelta(days=90),
        )
        .exclude(status=Appointment.Status.RESCHEDULED)
        .select_related("patient", "type", "location", "chair")
    )
    rows = list(rows)
    audit.record_list_read(
        request,
        patient_ids=[a.patient_id for a in rows],
        object_ids=[a.pk for a in rows],
        object_type="scheduling.appointment",
        detail={"feed": row.pk},
        clinic=row.clinic,
        actor=row.user,
    )
    return HttpResponse(
        ics.staff_feed(rows, f"{row.user} at {row.clinic.name}"),
        content_type="text/calendar; charset=utf-8",
    )


def today_panel(request):
    from ketaflow.accounts.permissions import can

    clinic = getattr(request, "clinic", None)
    if clinic is None or not can(request.user, "schedule.view", clinic):
        return None
    rows = list(selectors.in_range(clinic, clinic.today(), 1))
    audit.record_list_read(
        request,
        patient_ids=[a.patient_id for a in rows],
        object_ids=[a.pk for a in rows],
        object_type="scheduling.appointment",
        detail={"panel": "appointments-today"},
    )
    for a in rows:
        a.local_start = a.start.astimezone(clinic.tz)
    return render_to_string("scheduling/_today.html", {"rows": rows}, request=request)
