"""Writes for treatment plans: one function, one transaction, one audit event each."""

import json
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from ketaflow.accounts.permissions import require_permission
from ketaflow.audit import services as audit
from ketaflow.clinical import dosing, protocols
from ketaflow.plans import gates, selectors
from ketaflow.plans.forms import DosingSettingsForm, PlanForm
from ketaflow.plans.models import (
    ClinicProtocol,
    DosingSettingsRow,
    PlanEvent,
    PlanVersion,
    TreatmentPlan,
)

Status = TreatmentPlan.Status

# Which statuses each status may move to (completed and discontinued are final).
TRANSITIONS = {
    Status.DRAFT: {Status.ACTIVE, Status.DISCONTINUED},
    Status.ACTIVE: {Status.PAUSED, Status.COMPLETED, Status.DISCONTINUED},
    Status.PAUSED: {Status.ACTIVE, Status.COMPLETED, Status.DISCONTINUED},
    Status.COMPLETED: set(),
    Status.DISCONTINUED: set(),
}
NEEDS_REASON = {Status.PAUSED, Status.DISCONTINUED}

# Calculator limits -> the form field the message belongs to.
_LIMIT_FIELDS = {
    "weight_kg": "weight_kg",
    "max_mg_per_kg": "dose_value",
    "mg_per_kg": "dose_value",
    "dose_mg": "dose_value",
    "esketamine_multiple": "dose_value",
    "esketamine_max": "dose_value",
    "minutes": "dose_value",
    "min_interval": "dose_value",
    "ceiling_mg_per_kg": "dose_value",
    "ceiling_mg": "dose_value",
    "override_reason": "override_reason",
}


def dose_error(exc: dosing.DoseError) -> ValidationError:
    field = _LIMIT_FIELDS.get(exc.limit, "dose_value")
    errors = {field: [f"{exc.message} (limit: {exc.limit})"]}
    if exc.limit == "max_mg_per_kg":
        errors["override_reason"] = [
            "Write a justification to exceed the clinic's maximum; it is recorded with the plan."
        ]
    return ValidationError(errors)


def calculate(
    *,
    clinic,
    route: str,
    dose_value,
    weight_kg=None,
    minutes=None,
    override_reason: str = "",
) -> dosing.DoseCalculation:
    """The dose calculator with the clinic's settings; refusals as ValidationError by field."""
    settings = selectors.dosing_settings(clinic)
    try:
        if route == dosing.ESKETAMINE:
            if (override_reason or "").strip():
                raise ValidationError(
                    {"override_reason": ["The esketamine maximum (label) cannot be overridden."]}
                )
            return dosing.calculate_esketamine(dose_value, settings=settings)
        if weight_kg in (None, ""):
            raise ValidationError({"weight_kg": ["Body weight is needed for a mg/kg dose."]})
        return dosing.calculate_weight_based(
            route,
            weight_kg,
            dose_value,
            minutes=minutes if route in dosing.INFUSION_ROUTES else None,
            override_reason=override_reason or None,
            settings=settings,
        )
    except dosing.DoseError as exc:
        raise dose_error(exc) from exc


def _validated_plan_data(clinic, data, *, revising: bool, patient) -> dict:
    entries = selectors.library(clinic)
    form = PlanForm(data, clinic=clinic, protocols=[e.protocol for e in entries], revising=revising)
    if not form.is_valid():
        raise ValidationError(form.errors.as_data())
    cd = form.cleaned_data
    protocol = selectors.get_protocol(clinic, cd["protocol"])
    phase_code = cd["phase"] or protocol.phases[0].code
    try:
        protocol.phase(phase_code)
    except (KeyError, protocols.ProtocolError):
        raise ValidationError(
            {"phase": [f"Choose one of: {', '.join(p.code for p in protocol.phases)}."]}
        ) from None
    age = patient.age_on(cd["start_date"])
    dose_value = cd["dose_value"]
    if dose_value is None:
        dose_value = protocol.dose.planned_dose(cd["step"], age)
        if dose_value is None:
            raise ValidationError(
                {"dose_value": ["This protocol gives no planned dose: enter the dose."]}
            )
    minutes = protocol.infusion_minutes
    if protocol.route in dosing.INFUSION_ROUTES and minutes is None:
        raise ValidationError({"protocol": ["This IV protocol gives no infusion time."]})
    calc = calculate(
        clinic=clinic,
        route=protocol.route,
        dose_value=dose_value,
        weight_kg=cd["weight_kg"],
        minutes=minutes,
        override_reason=cd["override_reason"],
    )
    return {
        "protocol": protocol,
        "phase": phase_code,
        "step": cd["step"],
        "prescriber": cd["prescriber"],
        "weight_kg": cd["weight_kg"],
        "dose_value": Decimal(dose_value),
        "calc": calc,
        "override_reason": calc.override_reason or "",
        "start_date": cd["start_date"],
        "goals": cd["goals"],
        "change_reason": (cd.get("change_reason") or "").strip(),
    }


def _new_version(plan, *, actor, values: dict, number: int) -> PlanVersion:
    protocol = values["protocol"]
    calc = values["calc"]
    return PlanVersion.objects.create(
        clinic=plan.clinic,
        plan=plan,
        number=number,
        protocol_code=protocol.code,
        protocol_name=protocol.name,
        protocol_source=protocol.source,
        protocol_data=protocols.to_dict(protocol),
        route=protocol.route,
        prescriber=values["prescriber"],
        phase=values["phase"],
        step=values["step"],
        dose_value=values["dose_value"],
        dose_unit="mg" if protocol.route == dosing.ESKETAMINE else "mg/kg",
        dose_mg=calc.dose_mg,
        weight_kg=values["weight_kg"],
        weight_basis=calc.weight_basis or selectors.dosing_settings(plan.clinic).weight_basis,
        calculation=json.loads(json.dumps(calc.as_dict())),
        override_reason=values["override_reason"],
        start_date=values["start_date"],
        goals=values["goals"],
        change_reason=values["change_reason"],
        signed_by=actor,
        signed_at=timezone.now(),
    )


@transaction.atomic
def create_plan(*, patient, actor, data) -> TreatmentPlan:
    """A new plan (draft) with its first version, signed by the acting prescriber."""
    require_permission(actor, "plans.edit", patient.clinic)
    values = _validated_plan_data(patient.clinic, data, revising=False, patient=patient)
    plan = TreatmentPlan.objects.create(
        clinic=patient.clinic, patient=patient, phase=values["phase"]
    )
    version = _new_version(plan, actor=actor, values=values, number=1)
    plan.current = version
    plan.step = version.step
    plan.save(update_fields=["current", "step", "updated_at"])
    audit.record(
        action="create",
        clinic=plan.clinic,
        actor=actor,
        patient=patient,
        obj=plan,
        detail={
            "version": 1,
            "protocol": version.protocol_code,
            "override": bool(version.override_reason),
        },
    )
    return plan


def _locked(plan) -> TreatmentPlan:
    return (
        TreatmentPlan.objects.select_for_update(no_key=True, of=("self",))
        .select_related("current", "patient")
        .get(pk=plan.pk)
    )


@transaction.atomic
def revise_plan(*, plan, actor, data) -> PlanVersion:
    """A change is a new signed version; the earlier versions stay as they were signed."""
    require_permission(actor, "plans.edit", plan.clinic)
    plan = _locked(plan)
    if plan.status in (Status.COMPLETED, Status.DISCONTINUED):
        raise ValidationError({"status": [f"A {plan.status} plan cannot be changed."]})
    values = _validated_plan_data(plan.clinic, data, revising=True, patient=plan.patient)
    if plan.status == Status.ACTIVE and values["protocol"].route != plan.current.route:
        result = gates.check(plan.patient, values["protocol"].route)
        if not result.ok:
            raise ValidationError({"protocol": list(result.problems)})
    version = _new_version(plan, actor=actor, values=values, number=plan.current.number + 1)
    plan.current = version
    plan.phase = version.phase
    plan.step = version.step
    plan.save(update_fields=["current", "phase", "step", "updated_at"])
    audit.record(
        action="update",
        clinic=plan.clinic,
        actor=actor,
        patient=plan.patient,
        obj=plan,
        detail={"version": version.number, "override": bool(version.override_reason)},
    )
    return version


@transaction.atomic
def change_status(*, plan, actor, status: str, reason: str = "") -> TreatmentPlan:
    require_permission(actor, "plans.edit", plan.clinic)
    plan = _locked(plan)
    reason = (reason or "").strip()
    if status not in Status.values:
        raise ValidationError({"status": [f"Choose one of {', '.join(Status.values)}."]})
    if status not in TRANSITIONS[plan.status]:
        allowed = ", ".join(sorted(TRANSITIONS[plan.status])) or "none (final)"
        raise ValidationError(
            {"status": [f"A {plan.status} plan cannot become {status}; allowed: {allowed}."]}
        )
    if status in NEEDS_REASON and not reason:
        raise ValidationError({"reason": [f"Give the reason the plan is {status}."]})
    if status == Status.ACTIVE:
        result = gates.check(plan.patient, plan.current.route)
        if not result.ok:
            raise ValidationError({"status": list(result.problems)})
    PlanEvent.objects.create(
        clinic=plan.clinic,
        plan=plan,
        kind=PlanEvent.Kind.STATUS,
        from_value=plan.status,
        to_value=status,
        reason=reason or "-",
        actor=actor,
    )
    previous = plan.status
    plan.status = status
    plan.status_reason = reason
    plan.save(update_fields=["status", "status_reason", "updated_at"])
    audit.record(
        action="update",
        clinic=plan.clinic,
        actor=actor,
        patient=plan.patient,
        obj=plan,
        detail={"fields": ["status"], "from": previous, "to": status},
    )
    return plan


@transaction.atomic
def transition_phase(*, plan, actor, to_phase: str, outcome: str) -> PlanVersion:
    """Move to a later phase (e.g. induction to maintenance), recording the outcome that
    justified it; the move is a new signed version (step back to visit 1)."""
    require_permission(actor, "plans.edit", plan.clinic)
    plan = _locked(plan)
    outcome = (outcome or "").strip()
    if plan.status not in (Status.ACTIVE, Status.PAUSED):
        raise ValidationError({"to_phase": ["Only an active or paused plan changes phase."]})
    protocol = selectors.protocol_of(plan.current)
    codes = [p.code for p in protocol.phases]
    later = codes[codes.index(plan.phase) + 1 :] if plan.phase in codes else []
    if to_phase not in later:
        raise ValidationError(
            {"to_phase": [f"Choose a later phase of this protocol: {', '.join(later) or 'none'}."]}
        )
    if not outcome:
        raise ValidationError({"outcome": ["Record the outcome that justifies the transition."]})
    current = plan.current
    version = PlanVersion.objects.create(
        **{
            f.name: getattr(current, f.name)
            for f in PlanVersion._meta.concrete_fields
            if f.name not in ("id", "number", "phase", "step", "change_reason", "signed_by")
            and f.name != "signed_at"
        },
        number=current.number + 1,
        phase=to_phase,
        step=1,
        change_reason=f"Phase transition {plan.phase} → {to_phase}: {outcome}",
        signed_by=actor,
        signed_at=timezone.now(),
    )
    PlanEvent.objects.create(
        clinic=plan.clinic,
        plan=plan,
        kind=PlanEvent.Kind.PHASE,
        from_value=plan.phase,
        to_value=to_phase,
        reason=outcome,
        actor=actor,
    )
    plan.phase = to_phase
    plan.current = version
    plan.step = 1
    plan.save(update_fields=["phase", "current", "step", "updated_at"])
    audit.record(
        action="update",
        clinic=plan.clinic,
        actor=actor,
        patient=plan.patient,
        obj=plan,
        detail={"fields": ["phase"], "version": version.number, "to": to_phase},
    )
    return version


def advance_after_visit(*, plan, appointment, actor) -> dict | None:
    """Hook for the scheduling app: a dosing visit of the plan's current phase was completed.

    Advances the plan's step (the next visit number) by one and records a ``PlanEvent``. Runs
    inside the caller's transaction and writes no audit event of its own: the caller's event
    (the appointment marked completed) carries the returned ``{"plan", "from", "to"}`` detail.
    Returns None when nothing advances (plan not active or paused, a visit of another phase).
    """
    require_permission(actor, "schedule.book", plan.clinic)
    plan = _locked(plan)
    if plan.status not in (Status.ACTIVE, Status.PAUSED):
        return None
    if appointment.phase and appointment.phase != plan.phase:
        return None
    previous = plan.step
    plan.step = previous + 1
    plan.save(update_fields=["step", "updated_at"])
    PlanEvent.objects.create(
        clinic=plan.clinic,
        plan=plan,
        kind=PlanEvent.Kind.STEP,
        from_value=str(previous),
        to_value=str(plan.step),
        reason=f"Dosing visit completed (appointment {appointment.pk}).",
        actor=actor,
    )
    return {"plan": plan.pk, "from": previous, "to": plan.step}


@transaction.atomic
def save_dosing_settings(*, clinic, actor, data) -> DosingSettingsRow:
    require_permission(actor, "clinic.settings", clinic)
    row = DosingSettingsRow.objects.filter(clinic=clinic).first() or DosingSettingsRow(
        clinic=clinic
    )
    form = DosingSettingsForm(data, instance=row)
    if not form.is_valid():
        raise ValidationError(form.errors.as_data())
    before = {name: dosing.fmt(form.initial[name]) for name in CEILING_FIELDS}
    row = form.save(commit=False)
    try:
        row.as_dosing()
    except dosing.DoseError as exc:
        field = exc.limit.removeprefix("settings.")
        raise ValidationError({field: [exc.message]}) from exc
    row.updated_by = actor
    row.save()
    # A change of an absolute ceiling (or an observation minimum) is named with its old and new
    # value in the audit event, so raising a ceiling can always be traced to who and when.
    changes = {
        name: {"from": before[name], "to": dosing.fmt(getattr(row, name))}
        for name in CEILING_FIELDS
        if before[name] != dosing.fmt(getattr(row, name))
    }
    audit.record(
        action="update",
        clinic=clinic,
        actor=actor,
        obj=row,
        detail={"fields": sorted(form.changed_data), "limits": changes},
    )
    return row


CEILING_FIELDS = [
    name
    for name in DosingSettingsRow.FIELDS
    if "_ceiling_" in name or name.endswith("_observation_min") or name.endswith("_max_mg_per_kg")
]


@transaction.atomic
def save_protocol(*, clinic, actor, code: str, data) -> ClinicProtocol:
    """Store the clinic's edited copy of a protocol, validated by ``protocols.from_dict``."""
    require_permission(actor, "protocols.manage", clinic)
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                {"data": [f"Not valid JSON: {exc.msg} (line {exc.lineno})."]}
            ) from exc
    try:
        protocol = protocols.from_dict(data)
    except protocols.ProtocolError as exc:
        raise ValidationError({"data": [f"{exc.field}: {exc.message}"]}) from exc
    if protocol.code != code:
        raise ValidationError({"data": [f"code: must stay {code!r} (make a new protocol instead)"]})
    row, created = ClinicProtocol.objects.update_or_create(
        clinic=clinic,
        code=code,
        defaults={
            "data": protocols.to_dict(protocol),
            "updated_by": actor,
            "based_on": code if code in {p.code for p in protocols.all_protocols()} else "",
        },
    )
    audit.record(
        action="create" if created else "update",
        clinic=clinic,
        actor=actor,
        obj=row,
        detail={"code": code},
    )
    return row


@transaction.atomic
def reset_protocol(*, clinic, actor, code: str) -> None:
    require_permission(actor, "protocols.manage", clinic)
    row = ClinicProtocol.objects.filter(clinic=clinic, code=code).first()
    if row is None:
        raise ValidationError({"code": ["This protocol has no clinic copy to reset."]})
    audit.record(action="delete", clinic=clinic, actor=actor, obj=row, detail={"code": code})
    row.delete()
