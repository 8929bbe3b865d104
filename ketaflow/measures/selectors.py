"""Reads of the measures app, always scoped to one clinic."""

import datetime
from collections import defaultdict
from dataclasses import dataclass, field

from django.http import Http404

from ketaflow.clinical import instruments
from ketaflow.clinical.instruments import outcomes
from ketaflow.measures.models import (
    Administration,
    MeasureSchedule,
    OnCall,
    PatientLink,
    RiskFlag,
    SafetyAlert,
    TreatmentEvent,
)


def treatment_times(patient) -> list[datetime.datetime]:
    """Treatment start times of the patient, oldest first.

    Today these come from ``TreatmentEvent`` rows (demo data and tests); the treatment app
    will feed this function from its sessions, and every caller stays the same.
    """
    return list(
        TreatmentEvent.objects.for_clinic(patient.clinic)
        .filter(patient=patient)
        .order_by("at")
        .values_list("at", flat=True)
    )


def administrations(clinic):
    return Administration.objects.for_clinic(clinic).select_related("patient", "entered_by")


def latest_scores(clinic, patient, codes=None) -> dict[str, Administration]:
    """The most recent administration of each instrument (one query per code asked)."""
    codes = codes or sorted(
        {
            a
            for a in administrations(clinic)
            .filter(patient=patient)
            .values_list("instrument", flat=True)
        }
    )
    found = {}
    for code in codes:
        latest = (
            Administration.objects.for_clinic(clinic)
            .filter(patient=patient, instrument=code)
            .order_by("-taken_at", "-id")
            .first()
        )
        if latest is not None:
            found[code] = latest
    return found


def get_administration(clinic, pk) -> Administration:
    try:
        return administrations(clinic).get(pk=int(pk))
    except (Administration.DoesNotExist, ValueError, TypeError):
        raise Http404("No such questionnaire in this clinic.") from None


def _get(model, clinic, pk, related=("patient",)):
    try:
        return model.objects.for_clinic(clinic).select_related(*related).get(pk=int(pk))
    except (model.DoesNotExist, ValueError, TypeError):
        raise Http404("Not found in this clinic.") from None


def get_alert(clinic, pk) -> SafetyAlert:
    return _get(SafetyAlert, clinic, pk, ("patient", "administration", "acknowledged_by"))


def get_flag(clinic, pk) -> RiskFlag:
    return _get(RiskFlag, clinic, pk)


def get_link(clinic, pk) -> PatientLink:
    return _get(PatientLink, clinic, pk)


def get_schedule(clinic, pk) -> MeasureSchedule:
    return _get(MeasureSchedule, clinic, pk)


def open_flag(patient) -> RiskFlag | None:
    return (
        RiskFlag.objects.for_clinic(patient.clinic)
        .filter(patient=patient, cleared_at__isnull=True)
        .select_related("raised_by_alert")
        .first()
    )


def alerts(clinic, *, open_only: bool = True, limit: int = 200):
    qs = (
        SafetyAlert.objects.for_clinic(clinic)
        .select_related("patient", "acknowledged_by", "administration")
        .order_by("-created_at", "-id")
    )
    if open_only:
        qs = qs.filter(acknowledged_at__isnull=True)
    return qs[:limit]


def open_flags(clinic, limit: int = 200):
    return (
        RiskFlag.objects.for_clinic(clinic)
        .filter(cleared_at__isnull=True)
        .select_related("patient")
        .order_by("-raised_at")[:limit]
    )


def on_call_user_ids(clinic) -> set[int]:
    return set(OnCall.objects.filter(clinic=clinic).values_list("user_id", flat=True))


# ---------------------------------------------------------------------------- outcomes


@dataclass
class Badge:
    label: str
    state: str  # "yes", "no", "na"
    rule: str


@dataclass
class InstrumentHistory:
    code: str
    instrument: instruments.Instrument
    rows: list  # Administration, oldest first
    series: outcomes.SeriesOutcome | None = None
    latest: outcomes.Outcome | None = None
    badges: list[Badge] = field(default_factory=list)

    @property
    def newest(self):
        return self.rows[-1]


def _yes_no(value) -> str:
    return "na" if value is None else ("yes" if value else "no")


def badges_for(series: outcomes.SeriesOutcome | None, latest: outcomes.Outcome | None, inst):
    if series is None:
        return []
    if series.baseline is None:
        return [Badge("Baseline", "na", series.rules["baseline"])]
    out = [Badge(f"Baseline {series.baseline[1]}", "yes", series.rules["baseline"])]
    if latest is not None:
        r = latest.rules
        pct = "" if latest.percent_change is None else f" ({latest.percent_change:+.0f}%)"
        out.append(
            Badge(
                f"Change {latest.change:+d}{pct}",
                "na",
                f"Change: latest {inst.short_name} {latest.follow_up} minus baseline "
                f"{latest.baseline}" + (f" ({pct.strip(' ()')} from baseline)" if pct else ""),
            )
        )
        out.append(Badge("Response", _yes_no(latest.response), r["response"]))
        out.append(
            Badge("Partial response", _yes_no(latest.partial_response), r["partial_response"])
        )
        out.append(Badge("Remission", _yes_no(latest.remission), r["remission"]))
        if latest.reliable_deterioration:
            out.append(Badge("Reliable deterioration", "yes", r["reliable_change"]))
        else:
            out.append(
                Badge(
                    "Reliable improvement",
                    _yes_no(latest.reliable_improvement),
                    r["reliable_change"],
                )
            )
    out.append(
        Badge(
            "Rapid response (24 h)", _yes_no(series.rapid_response), series.rules["rapid_response"]
        )
    )
    out.append(Badge("Relapse after response", _yes_no(series.relapse), series.rules["relapse"]))
    return out


def evaluate(code: str, scores, first_treatment_at):
    """Series outcome and latest outcome for one instrument (None where not applicable)."""
    inst = instruments.get(code)
    if inst.score_range is None or first_treatment_at is None:
        return None, None
    series = outcomes.evaluate_series(inst, scores, first_treatment_at)
    latest = series.points[-1][1] if series.points else None
    return series, latest


def patient_measures(
    patient, *, first_treatment_at=None, treatments=None
) -> list[InstrumentHistory]:
    """Every administration of the patient grouped by instrument with outcome badges.

    Two queries whatever the history: administrations and treatment times.
    ``first_treatment_at`` defaults to the first of ``treatment_times(patient)``.
    """
    if treatments is None:
        treatments = treatment_times(patient)
    if first_treatment_at is None and treatments:
        first_treatment_at = treatments[0]
    grouped: dict[str, list] = defaultdict(list)
    rows = (
        Administration.objects.for_clinic(patient.clinic)
        .filter(patient=patient)
        .select_related("entered_by")
        .order_by("taken_at", "id")
    )
    for adm in rows:
        grouped[adm.instrument].append(adm)
    order = {code: i for i, code in enumerate(instruments.codes())}
    out = []
    for code in sorted(grouped, key=lambda c: order.get(c, 99)):
        inst = instruments.get(code)
        items = grouped[code]
        history = InstrumentHistory(code, inst, items)
        if inst.score_range is not None:
            scores = [(a.taken_at, a.total) for a in items if a.total is not None]
            history.series, history.latest = evaluate(code, scores, first_treatment_at)
            history.badges = badges_for(history.series, history.latest, inst)
            if first_treatment_at is None:
                history.badges = [
                    Badge(
                        "Baseline",
                        "na",
                        f"No {inst.short_name} baseline: no treatment is recorded yet "
                        "(baseline = last score before the first treatment of the course)",
                    )
                ]
        out.append(history)
    return out


def pending_links(patient, limit: int = 20):
    return list(
        PatientLink.objects.for_clinic(patient.clinic)
        .filter(patient=patient)
        .select_related("created_by")
        .order_by("-created_at")[:limit]
    )


def schedules(patient):
    return list(
        MeasureSchedule.objects.for_clinic(patient.clinic).filter(patient=patient, active=True)
    )


@dataclass(frozen=True)
class PatientOutcomeRow:
    patient_id: int
    baseline: int | None
    latest: int | None
    n: int
    response: bool | None
    remission: bool | None


def clinic_outcomes(clinic, code: str, first_treatment_by_patient: dict | None = None):
    """Per-patient baseline, latest score, response and remission for one instrument.

    Reads plain tuples (no model objects), ordered by patient and time, so a clinic report
    over 100,000 administrations stays fast. ``first_treatment_by_patient`` maps patient id
    to the first treatment of the course; by default the first ``TreatmentEvent`` of each
    patient. Patients without a baseline get ``baseline=None``.
    """
    inst = instruments.get(code)
    if first_treatment_by_patient is None:
        first_treatment_by_patient = {}
        for pid, at in (
            TreatmentEvent.objects.for_clinic(clinic)
            .order_by("patient_id", "at")
            .values_list("patient_id", "at")
        ):
            first_treatment_by_patient.setdefault(pid, at)
    rows = (
        Administration.objects.for_clinic(clinic)
        .filter(instrument=inst.code, total__isnull=False)
        .order_by("patient_id", "taken_at", "id")
        .values_list("patient_id", "taken_at", "total")
        .iterator(chunk_size=5000)
    )
    result = []

    def finish(pid, scores):
        first = first_treatment_by_patient.get(pid)
        base = outcomes.baseline_of(scores, first) if first is not None else None
        after = [s for s in scores if first is not None and s[0] > first]
        if base is None or not after:
            result.append(
                PatientOutcomeRow(pid, base and base[1], scores[-1][1], len(scores), None, None)
            )
            return
        out = outcomes.compare(inst, base[1], after[-1][1])
        result.append(
            PatientOutcomeRow(pid, base[1], after[-1][1], len(scores), out.response, out.remission)
        )

    current, scores = None, []
    for pid, at, total in rows:
        if pid != current:
            if current is not None:
                finish(current, scores)
            current, scores = pid, []
        scores.append((at, total))
    if current is not None:
        finish(current, scores)
    return result
