"""Reads for treatment plans, the clinic's protocol library and dosing settings."""

import functools
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.http import Http404

from ketaflow.clinical import dosing, protocols
from ketaflow.plans.models import ClinicProtocol, DosingSettingsRow, PlanEvent, TreatmentPlan


def dosing_settings_row(clinic) -> DosingSettingsRow:
    """The clinic's settings row (unsaved defaults if the clinic never changed them)."""
    row = DosingSettingsRow.objects.filter(clinic=clinic).first()
    return row or DosingSettingsRow(clinic=clinic)


def dosing_settings(clinic) -> dosing.DosingSettings:
    return dosing_settings_row(clinic).as_dosing()


def _text(value) -> str:
    return value if isinstance(value, str) else dosing.fmt(value)


def settings_table(clinic) -> list[dict]:
    """Each setting with its value, default and source (for the settings page and plan form)."""
    row = dosing_settings_row(clinic)
    sources = dosing.setting_sources()
    return [
        {
            "name": name,
            "value": getattr(row, name),
            "default": getattr(dosing.DEFAULTS, name),
            "changed": _text(getattr(row, name)) != _text(getattr(dosing.DEFAULTS, name)),
            "source": sources[name],
        }
        for name in DosingSettingsRow.FIELDS
    ]


@dataclass(frozen=True)
class LibraryEntry:
    protocol: protocols.Protocol
    edited: bool
    shipped: bool
    updated_at: object = None
    updated_by: object = None


def library(clinic) -> list[LibraryEntry]:
    """The shipped protocols, each replaced by the clinic's edited copy where one exists."""
    copies = {
        row.code: row
        for row in ClinicProtocol.objects.filter(clinic=clinic).select_related("updated_by")
    }
    entries = []
    for shipped in protocols.all_protocols():
        row = copies.pop(shipped.code, None)
        if row is None:
            entries.append(LibraryEntry(shipped, edited=False, shipped=True))
        else:
            entries.append(
                LibraryEntry(
                    protocols.from_dict(row.data), True, True, row.updated_at, row.updated_by
                )
            )
    for row in copies.values():
        entries.append(
            LibraryEntry(protocols.from_dict(row.data), True, False, row.updated_at, row.updated_by)
        )
    return entries


def library_entry(clinic, code: str) -> LibraryEntry:
    for entry in library(clinic):
        if entry.protocol.code == code:
            return entry
    raise Http404("No such protocol.")


def get_protocol(clinic, code: str) -> protocols.Protocol:
    row = ClinicProtocol.objects.filter(clinic=clinic, code=code).first()
    if row is not None:
        return protocols.from_dict(row.data)
    try:
        return protocols.get(code)
    except KeyError:
        raise Http404("No such protocol.") from None


def plans(clinic):
    return TreatmentPlan.objects.for_clinic(clinic).select_related(
        "patient", "current", "current__prescriber", "current__signed_by"
    )


def get_plan(clinic, pk) -> TreatmentPlan:
    try:
        return plans(clinic).get(pk=int(pk))
    except (TreatmentPlan.DoesNotExist, ValueError, TypeError):
        raise Http404("No such plan in this clinic.") from None


def plans_for_patient(clinic, patient):
    return plans(clinic).filter(patient=patient)


def versions(plan):
    return plan.versions.select_related("signed_by", "prescriber").order_by("-number")


def events(plan):
    return PlanEvent.objects.for_clinic(plan.clinic).filter(plan=plan).select_related("actor")


def protocol_of(version) -> protocols.Protocol:
    """The protocol exactly as it stood when the version was signed."""
    return protocols.from_dict(version.protocol_data)


# ---------------------------------------------------------------------------
# Predicted concentration (population estimate) for the planned dose
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PKView:
    """The plan's prediction as every page, the API and the CLI show it
    (:func:`ketaflow.clinical.pk.reference.forecast`): racemic IV ketamine as the four
    shipped models with the venous range and the time below its lower edge as the range
    across them; esketamine with no measured range (none is published in ketaflow's
    sources)."""

    svg: str
    models: tuple[str, ...]
    lines: tuple[str, ...]
    data: dict


@functools.lru_cache(maxsize=256)
def _pk(route: str, dose_mg: str, weight_kg: str, minutes: int | None, age: int | None):
    from ketaflow.clinical import pk

    if route == dosing.IV:
        regimen = pk.Regimen.infusion(mg=float(dose_mg), minutes=float(minutes or 40))
    elif route == dosing.ESKETAMINE:
        regimen = pk.Regimen.nasal_session(float(dose_mg))
    else:
        return None
    fc = pk.forecast(regimen, weight_kg=float(weight_kg), age=age, hours=12)
    return PKView(
        svg=fc.svg(hours=8, width=600, height=300),
        models=fc.models,
        lines=tuple(fc.lines()),
        data=fc.to_dict(),
    )


def pk_view(version, age: int | None = None) -> PKView | None:
    """The predicted curve for the version's dose and weight; None where no model exists."""
    if version.weight_kg is None:
        return None
    minutes = version.calculation.get("minutes")
    try:
        return _pk(
            version.route,
            str(version.dose_mg),
            str(version.weight_kg),
            int(minutes) if minutes else None,
            age if version.route == dosing.ESKETAMINE else None,
        )
    except ValueError:
        return None


# ---------------------------------------------------------------------------
# The next visit's dose (the plan's step, advanced by completed dosing visits)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NextDose:
    step: int
    dose_value: Decimal | None
    unit: str
    dose_mg: Decimal | None
    basis: str
    changed: bool = False
    problem: str = ""
    arithmetic: tuple = ()


def next_dose(plan) -> NextDose | None:
    """The dose for the plan's next visit (``plan.step``).

    Where the signed version follows the protocol's planned dose (``DoseRule.planned_dose`` at
    the version's step), the next visit gets the protocol's planned dose for the new step, as
    signed in the version's protocol copy (e.g. Cusin 2017: 0.5 mg/kg, then 0.75 mg/kg from
    visit 4), calculated with the clinic's limits and the version's weight. Where the
    prescriber signed a dose of their own, that dose stays until the plan is revised."""
    from ketaflow.plans import services

    v = plan.current
    if v is None:
        return None
    step = plan.step or v.step
    protocol = protocol_of(v)
    rule = protocol.dose
    today = plan.clinic.today()
    signed_planned = rule.planned_dose(v.step, plan.patient.age_on(v.start_date))
    follows = signed_planned is not None and Decimal(signed_planned) == v.dose_value
    signed = NextDose(
        step=step,
        dose_value=v.dose_value,
        unit=v.dose_unit,
        dose_mg=v.dose_mg,
        basis=f"The dose signed in version {v.number}"
        + (
            ""
            if follows or step == v.step
            else " (the prescriber's own dose; revise the plan to change it)"
        )
        + ".",
    )
    if step == v.step or not follows:
        return signed
    planned = rule.planned_dose(step, plan.patient.age_on(today))
    if planned is None or Decimal(planned) == v.dose_value:
        return signed
    basis = (
        f"{protocol.name}: planned dose for visit {step} ({rule.source}), as signed in "
        f"version {v.number}."
    )
    try:
        calc = services.calculate(
            clinic=plan.clinic,
            route=v.route,
            dose_value=planned,
            weight_kg=v.weight_kg,
            minutes=protocol.infusion_minutes,
            override_reason="" if v.route == dosing.ESKETAMINE else v.override_reason,
        )
    except ValidationError as exc:
        problem = "; ".join(m for msgs in exc.message_dict.values() for m in msgs)
        return NextDose(
            step=step,
            dose_value=Decimal(planned),
            unit=v.dose_unit,
            dose_mg=None,
            basis=basis,
            changed=True,
            problem=f"The calculator refuses this dose: {problem} A prescriber must revise the "
            "plan.",
        )
    return NextDose(
        step=step,
        dose_value=Decimal(planned),
        unit=v.dose_unit,
        dose_mg=calc.dose_mg,
        basis=basis,
        changed=True,
        arithmetic=tuple(calc.arithmetic),
    )
