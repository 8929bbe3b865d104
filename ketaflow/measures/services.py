"""Writes of the measures app: one function, one transaction, one audit event each.

All scoring goes through ``ketaflow.clinical.instruments.score``; nothing here computes a
total, band or flag itself.
"""

import datetime
import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse

from ketaflow.accounts.permissions import require_permission, roles_can
from ketaflow.audit import services as audit
from ketaflow.clinical import instruments
from ketaflow.clinical.instruments import suicidality
from ketaflow.measures.models import (
    Administration,
    MeasureSchedule,
    MeasuresSettings,
    OnCall,
    PatientLink,
    RiskFlag,
    SafetyAlert,
)
from ketaflow.tenancy.models import Membership

log = logging.getLogger(__name__)

SYSTEM = "ketaflow (scheduled task)"
PATIENT_VIA_LINK = "patient (secure link)"
SELF_REPORT_CODES = tuple(
    i.code for i in instruments.all_instruments() if i.respondent == "patient"
)
RECORDABLE_CODES = instruments.codes()


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def public_base_url() -> str:
    """Where patients reach this server (links in emails sent by background tasks)."""
    return settings.PUBLIC_URL


def link_path(raw_token: str) -> str:
    return reverse("measures:respond", kwargs={"token": raw_token})


def settings_for(clinic) -> MeasuresSettings:
    found = MeasuresSettings.objects.filter(clinic=clinic).first()
    return found or MeasuresSettings(clinic=clinic)


# ---------------------------------------------------------------------------- scoring


def score_answers(code: str, answers: dict, clinic=None) -> instruments.ScoreResult:
    """Score with the pure package and the clinic's scoring settings (PCL-5 provisional
    PTSD cut-off); errors become ValidationError naming the item."""
    conf = settings_for(clinic) if clinic is not None else None
    try:
        return instruments.score(
            code, answers, settings=conf.scoring_settings(code) if conf is not None else None
        )
    except instruments.UnknownInstrumentError as exc:
        raise ValidationError({"instrument": [str(exc)]}) from exc
    except instruments.ScoringError as exc:
        raise ValidationError({f"item_{exc.item}": [f"Item {exc.item}: {exc.message}"]}) from exc


def suicidality_overrides(clinic) -> dict:
    """The clinic's urgency settings for ``suicidality.evaluate`` (empty: the defaults).

    Settings saved through the settings page are validated there; a value that fails
    validation anyway (edited in the database) must never stop an alert, so it is logged
    and the documented defaults apply."""
    if clinic is None:
        return {}
    stored = settings_for(clinic).suicidality_urgency or {}
    try:
        return suicidality.validate_overrides(stored)
    except suicidality.OverrideError:
        log.exception("invalid suicidality urgency settings of clinic %s; defaults used", clinic.pk)
        return {}


def _answer_label(inst, key: str, value) -> str:
    """The answer as shown on the form: "3 (Nearly every day)", "yes", "2"."""
    if value == "yes" or value == "no":
        return str(value)
    option = next((o for o in inst.item(key).options if o.value == value), None)
    if option is None or option.label == str(value):
        return str(value)
    return f"{value} ({option.label})"


def alert_reason(
    result: instruments.ScoreResult, endorsements: tuple[suicidality.Endorsement, ...]
) -> str:
    """One line naming the worst answer first, its urgency, then any other endorsed items."""
    inst = instruments.get(result.instrument)
    top = suicidality.worst(endorsements)
    assert top is not None
    head = inst.short_name
    if result.risk:
        head += f", {result.risk} risk (screener triage)"
    answer = _answer_label(inst, top.item, top.answer)
    text = (
        f"{head}: item {top.item} ({top.topic}) answered {answer}; "
        f"{suicidality.URGENCY_LABELS[top.urgency].lower()}: "
        f"{suicidality.URGENCY_ACTIONS[top.urgency]}"
    )
    others = [e for e in endorsements if e is not top]
    if others:
        text += "; also " + ", ".join(
            f"item {e.item} {_answer_label(inst, e.item, e.answer)}" for e in others
        )
    return text[:300]


def _safety_signal(adm: Administration, result: instruments.ScoreResult):
    """(worst endorsement, reason) for the suicidality answers of a score, or None.
    Driven only by ``suicidality.RULES`` and the clinic's urgency settings."""
    found = suicidality.evaluate(result.instrument, result.items, suicidality_overrides(adm.clinic))
    if not found:
        return None
    return suicidality.worst(found), alert_reason(result, found)


def _raise_or_upgrade_flag(adm: Administration, alert: SafetyAlert) -> tuple[RiskFlag, str]:
    """Open the patient's risk flag at this alert, or upgrade the open one when this alert
    is more urgent. A less urgent (or better) answer never downgrades a flag: only a
    clinician clears it. Returns the flag and what happened (raised/upgraded/kept)."""
    fields = {
        "urgency": alert.severity,
        "reason": alert.reason,
        "worst_alert": alert,
        "worst_at": adm.taken_at,
    }
    flag = (
        RiskFlag.objects.select_for_update(no_key=True, of=("self",))
        .filter(patient=adm.patient, cleared_at__isnull=True)
        .first()
    )
    if flag is None:
        try:
            with transaction.atomic():
                flag = RiskFlag.objects.create(
                    clinic=adm.clinic,
                    patient=adm.patient,
                    raised_by_alert=alert,
                    raised_at=alert.created_at,
                    **fields,
                )
            return flag, "raised"
        except IntegrityError:  # another submission raised it at the same moment
            flag = RiskFlag.objects.select_for_update(no_key=True, of=("self",)).get(
                patient=adm.patient, cleared_at__isnull=True
            )
    if suicidality.rank(alert.severity) > suicidality.rank(flag.urgency):
        for name, value in fields.items():
            setattr(flag, name, value)
        flag.upgraded_at = alert.created_at
        flag.save(update_fields=[*fields, "upgraded_at"])
        return flag, "upgraded"
    return flag, "kept"


def _raise_alerts(adm: Administration, result: instruments.ScoreResult) -> list[SafetyAlert]:
    """The safety alert of one scored questionnaire (at most one, at the urgency of its
    worst endorsed answer) and the patient's risk flag raised or upgraded to match."""
    signal = _safety_signal(adm, result)
    if signal is None:
        return []
    top, reason = signal
    alert = SafetyAlert.objects.create(
        clinic=adm.clinic,
        patient=adm.patient,
        administration=adm,
        kind=SafetyAlert.Kind.SUICIDALITY,
        severity=top.urgency,
        reason=reason,
        created_at=now(),
    )
    flag, change = _raise_or_upgrade_flag(adm, alert)
    alert.flag_change = (flag.pk, change)
    from ketaflow.measures import tasks

    tasks.notify_alert.enqueue(alert.pk)
    return [alert]


def _flag_detail(alerts: list[SafetyAlert]) -> dict:
    """What the alert did to the risk flag, for the audit event of the same write."""
    changes = [
        {"id": a.flag_change[0], "change": a.flag_change[1]}
        for a in alerts
        if hasattr(a, "flag_change")
    ]
    return {"flag_changes": changes} if changes else {}


def resolve_plan(patient, plan, field: str = "plan"):
    """The treatment plan (course) ``plan`` (an id or a TreatmentPlan) if it belongs to this
    patient of this clinic; None for none. Anything else is refused with a field error
    (the same message whether the plan exists elsewhere or not at all)."""
    if plan in (None, ""):
        return None
    from ketaflow.plans.models import TreatmentPlan

    pk = plan.pk if isinstance(plan, TreatmentPlan) else plan
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        pk = None
    found = (
        TreatmentPlan.objects.for_clinic(patient.clinic)
        .filter(pk=pk, patient_id=patient.pk)
        .select_related("current")
        .first()
        if pk is not None
        else None
    )
    if found is None:
        raise ValidationError({field: ["Choose a treatment course (plan) of this patient."]})
    return found


def _store(
    *,
    patient,
    code: str,
    result: instruments.ScoreResult,
    source: str,
    entered_by=None,
    link=None,
    taken_at=None,
    plan_id: int | None = None,
    context=None,
) -> Administration:
    inst = instruments.get(code)
    if context is not None:
        from django.contrib.contenttypes.models import ContentType

        context_fields = {
            "context_type": ContentType.objects.get_for_model(context),
            "context_id": context.pk,
        }
    else:
        context_fields = {}
    return Administration.objects.create(
        clinic=patient.clinic,
        patient=patient,
        instrument=inst.code,
        instrument_version=inst.version,
        answers=dict(result.items),
        total=result.total,
        severity=result.severity or "",
        risk=result.risk or "",
        flags=list(result.flags),
        subscores=dict(result.subscores),
        source=source,
        entered_by=entered_by,
        link=link,
        taken_at=taken_at or now(),
        plan_id=plan_id,
        **context_fields,
    )


@transaction.atomic
def record_administration(
    *,
    patient,
    actor,
    instrument: str,
    answers: dict,
    taken_at: datetime.datetime | None = None,
    plan=None,
    clinician_rated: bool | None = None,
) -> Administration:
    """A clinician records a questionnaire in the chart (for the patient, or clinician-rated).

    ``plan``: the treatment course (a plan of this patient, or its id), optional."""
    require_permission(actor, "measures.record", patient.clinic)
    result = score_answers(instrument, answers, patient.clinic)
    inst = instruments.get(instrument)
    if taken_at is not None:
        from ketaflow.web import bounds

        try:
            taken_at = bounds.check_past_datetime(taken_at, what="The time answered")
        except (TypeError, ValueError) as exc:
            raise ValidationError({"taken_at": [f"{exc}."]}) from None
    plan = resolve_plan(patient, plan)
    rated = inst.respondent == "clinician" if clinician_rated is None else clinician_rated
    adm = _store(
        patient=patient,
        code=inst.code,
        result=result,
        source=Administration.Source.CLINICIAN_RATED if rated else Administration.Source.CLINICIAN,
        entered_by=actor,
        taken_at=taken_at,
        plan_id=plan.pk if plan else None,
    )
    alerts = _raise_alerts(adm, result)
    audit.record(
        action="create",
        clinic=patient.clinic,
        actor=actor,
        patient=patient,
        obj=adm,
        detail={
            "instrument": inst.code,
            "version": inst.version,
            "total": result.total,
            "plan": plan.pk if plan else None,
            "alerts": [a.pk for a in alerts],
            **_flag_detail(alerts),
        },
    )
    return adm


def record_prescreen(
    *, patient, actor, instrument: str, answers: dict, taken_at: datetime.datetime, context
) -> tuple[Administration, list[SafetyAlert]]:
    """Store the questionnaire a person answered on a consultation request's pre-screen as a
    scored administration of the patient it became (source "prescreen", dated when the
    request was sent, ``context`` = the request), and raise its safety alert and risk flag
    like any self-report.

    Called by intake's conversion of the request, inside that conversion's transaction
    (the caller has checked its permission, ``intake.manage``): one audit event, for the
    administration."""
    if transaction.get_connection().in_atomic_block is False:
        raise RuntimeError("record_prescreen must run inside the conversion's transaction")
    result = score_answers(instrument, answers, patient.clinic)
    inst = instruments.get(instrument)
    adm = _store(
        patient=patient,
        code=inst.code,
        result=result,
        source=Administration.Source.PRESCREEN,
        entered_by=None,
        taken_at=taken_at,
        context=context,
    )
    alerts = _raise_alerts(adm, result)
    audit.record(
        action="create",
        clinic=patient.clinic,
        actor=actor,
        patient=patient,
        obj=adm,
        detail={
            "instrument": inst.code,
            "version": inst.version,
            "total": result.total,
            "from": "consultation request pre-screen",
            "request": context.pk,
            "alerts": [a.pk for a in alerts],
            **_flag_detail(alerts),
        },
    )
    return adm, alerts


# ---------------------------------------------------------------------------- patient links


def _clean_codes(codes, field="instruments") -> list[str]:
    seen = []
    for code in codes or []:
        if code not in SELF_REPORT_CODES:
            raise ValidationError(
                {field: [f"{code!r} is not a patient self-report questionnaire."]}
            )
        if code not in seen:
            seen.append(code)
    if not seen:
        raise ValidationError({field: ["Choose at least one questionnaire."]})
    return seen


def _email_link(link: PatientLink, raw: str, base_url: str, *, reminder: bool = False) -> None:
    clinic = link.clinic
    names = ", ".join(instruments.get(c).short_name for c in link.instruments)
    expires = link.expires_at.astimezone(clinic.tz).strftime("%Y-%m-%d %H:%M")
    first = link.patient.preferred_name or link.patient.legal_given_name
    intro = "A reminder: your" if reminder else "Your"
    send_mail(
        subject=f"{clinic.name}: questionnaires to fill in",
        message=(
            f"Hello {first},\n\n{intro} care team at {clinic.name} asks you to fill in a short "
            f"questionnaire ({names}).\n\nOpen this private link on your phone or computer:\n"
            f"{base_url}{link_path(raw)}\n\nThe link works until {expires} ({clinic.timezone}) "
            "and only once. Do not share it.\n\n"
            f"If you need help urgently, call {clinic.emergency_phone}. {clinic.crisis_line}.\n"
        ),
        from_email=None,
        recipient_list=[link.patient.email],
    )


def _new_link(*, patient, codes, created_by, schedule=None, plan=None) -> tuple[PatientLink, str]:
    raw = PatientLink.new_token()
    hours = settings_for(patient.clinic).link_expiry_hours
    link = PatientLink.objects.create(
        clinic=patient.clinic,
        patient=patient,
        instruments=codes,
        token_hash=PatientLink.hash_token(raw),
        created_by=created_by,
        schedule=schedule,
        plan=plan,
        expires_at=now() + datetime.timedelta(hours=hours),
    )
    return link, raw


@transaction.atomic
def create_link(
    *,
    patient,
    actor,
    instruments: list[str],
    send_email: bool = False,
    base_url: str | None = None,
    plan=None,
) -> tuple[PatientLink, str]:
    """A secure link for the patient. Returns the link and the raw token (shown only once).
    ``plan``: the treatment course the answers will belong to (optional)."""
    require_permission(actor, "measures.send", patient.clinic)
    codes = _clean_codes(instruments)
    plan = resolve_plan(patient, plan)
    if send_email and not patient.email:
        raise ValidationError(
            {"send_email": ["The patient has no email address: show the QR code instead."]}
        )
    link, raw = _new_link(patient=patient, codes=codes, created_by=actor, plan=plan)
    if send_email:
        try:
            _email_link(link, raw, base_url or public_base_url())
        except OSError as exc:  # SMTP down: nothing is stored, the user can show the QR code
            log.exception("could not email a patient link")
            raise ValidationError(
                {"send_email": ["The email could not be sent; untick it to show the QR code."]}
            ) from exc
        link.emailed_to = patient.email
        link.last_sent_at = now()
        link.save(update_fields=["emailed_to", "last_sent_at"])
    audit.record(
        action="create",
        clinic=patient.clinic,
        actor=actor,
        patient=patient,
        obj=link,
        detail={
            "instruments": codes,
            "emailed": bool(send_email),
            "plan": plan.pk if plan else None,
        },
    )
    return link, raw


def find_link(raw_token: str) -> PatientLink | None:
    """The usable link for this token, or None (unknown, tampered, expired, used, revoked)."""
    if not raw_token or len(raw_token) > 100:
        return None
    link = (
        PatientLink.objects.select_related("clinic", "patient")
        .filter(token_hash=PatientLink.hash_token(raw_token))
        .first()
    )
    if link is None or not link.usable_at(now()):
        return None
    return link


@transaction.atomic
def save_link_progress(*, link: PatientLink, code: str, answers: dict) -> PatientLink:
    """Keep the patient's answers for one questionnaire so the link can be resumed."""
    link = PatientLink.objects.select_for_update(no_key=True, of=("self",)).get(pk=link.pk)
    if not link.usable_at(now()):
        raise PermissionDenied("This link is not valid any more.")
    if code not in link.instruments:
        raise ValidationError({"instrument": ["Not part of this link."]})
    inst = instruments.get(code)
    keep = {k: v for k, v in answers.items() if k in inst.item_keys and v not in (None, "")}
    partial = dict(link.partial or {})
    partial[code] = keep
    link.partial = partial
    link.opened_at = link.opened_at or now()
    link.save(update_fields=["partial", "opened_at"])
    audit.record(
        action="update",
        clinic=link.clinic,
        actor_label=PATIENT_VIA_LINK,
        patient=link.patient,
        obj=link,
        detail={"saved": code, "answered": len(keep)},
    )
    return link


@transaction.atomic
def submit_link(*, link: PatientLink) -> tuple[list[Administration], list[SafetyAlert]]:
    """Score every questionnaire of the link from its saved answers and close the link.

    Raises ValidationError({"<code>": [...]}) naming the first incomplete questionnaire;
    PermissionDenied if the link was used, revoked or expired meanwhile (single use).
    """
    link = (
        PatientLink.objects.select_for_update(no_key=True, of=("self",))
        .select_related("patient", "clinic")
        .get(pk=link.pk)
    )
    if not link.usable_at(now()):
        raise PermissionDenied("This link is not valid any more.")
    results = []
    conf = settings_for(link.clinic)
    for code in link.instruments:
        try:
            results.append(
                (
                    code,
                    instruments.score(
                        code,
                        (link.partial or {}).get(code, {}),
                        settings=conf.scoring_settings(code),
                    ),
                )
            )
        except instruments.ScoringError as exc:
            raise ValidationError({code: [f"Question {exc.item}: {exc.message}"]}) from exc
    at = now()
    administrations, alerts = [], []
    for code, result in results:
        adm = _store(
            patient=link.patient,
            code=code,
            result=result,
            source=Administration.Source.SELF_REPORT,
            link=link,
            taken_at=at,
            plan_id=link.plan_id,
        )
        administrations.append(adm)
        alerts += _raise_alerts(adm, result)
    link.submitted_at = at
    link.save(update_fields=["submitted_at"])
    audit.record(
        action="create",
        clinic=link.clinic,
        actor_label=PATIENT_VIA_LINK,
        patient=link.patient,
        obj=link,
        detail={
            "submitted": link.instruments,
            "administrations": [a.pk for a in administrations],
            "alerts": [a.pk for a in alerts],
            **_flag_detail(alerts),
        },
    )
    return administrations, alerts


@transaction.atomic
def revoke_link(*, link: PatientLink, actor) -> PatientLink:
    require_permission(actor, "measures.send", link.clinic)
    link = PatientLink.objects.select_for_update(no_key=True, of=("self",)).get(pk=link.pk)
    if link.submitted_at or link.revoked_at:
        raise ValidationError({"link": ["This link is already used or withdrawn."]})
    link.revoked_at = now()
    link.save(update_fields=["revoked_at"])
    audit.record(
        action="update",
        clinic=link.clinic,
        actor=actor,
        patient=link.patient,
        obj=link,
        detail={"revoked": True},
    )
    return link


@transaction.atomic
def send_reminder(*, link: PatientLink, base_url: str | None = None) -> bool:
    """Email a reminder with a fresh token (the old one stops working; answers are kept)."""
    link = (
        PatientLink.objects.select_for_update(no_key=True, of=("self",))
        .select_related("patient", "clinic")
        .get(pk=link.pk)
    )
    if not link.usable_at(now()) or not link.emailed_to or not link.patient.email:
        return False
    raw = PatientLink.new_token()
    link.token_hash = PatientLink.hash_token(raw)
    link.reminders_sent += 1
    link.last_sent_at = now()
    link.save(update_fields=["token_hash", "reminders_sent", "last_sent_at"])
    _email_link(link, raw, base_url or public_base_url(), reminder=True)
    audit.record(
        action="update",
        clinic=link.clinic,
        actor_label=SYSTEM,
        patient=link.patient,
        obj=link,
        detail={"reminder": link.reminders_sent},
    )
    return True


# ---------------------------------------------------------------------------- schedules


def _advance(schedule: MeasureSchedule, start: datetime.datetime) -> datetime.datetime | None:
    if schedule.cadence == MeasureSchedule.Cadence.WEEKLY:
        return start + datetime.timedelta(days=7)
    if schedule.cadence == MeasureSchedule.Cadence.FORTNIGHTLY:
        return start + datetime.timedelta(days=14)
    return None


@transaction.atomic
def create_schedule(
    *, patient, actor, instruments: list[str], cadence: str, first_due=None, plan=None
):
    """Send questionnaires every week, every two weeks, or before every booked dosing visit
    (of the plan, if one is given; links then carry the course)."""
    require_permission(actor, "measures.send", patient.clinic)
    codes = _clean_codes(instruments)
    plan = resolve_plan(patient, plan)
    if cadence not in MeasureSchedule.Cadence.values:
        raise ValidationError({"cadence": ["Choose how often to send."]})
    if not patient.email:
        raise ValidationError(
            {"cadence": ["Scheduled sending needs the patient's email address in demographics."]}
        )
    schedule = MeasureSchedule.objects.create(
        clinic=patient.clinic,
        patient=patient,
        instruments=codes,
        cadence=cadence,
        plan=plan,
        next_due=None
        if cadence == MeasureSchedule.Cadence.BEFORE_EACH_TREATMENT
        else (first_due or now()),
        created_by=actor,
    )
    audit.record(
        action="create",
        clinic=patient.clinic,
        actor=actor,
        patient=patient,
        obj=schedule,
        detail={"cadence": cadence, "instruments": codes, "plan": plan.pk if plan else None},
    )
    return schedule


@transaction.atomic
def stop_schedule(*, schedule: MeasureSchedule, actor) -> MeasureSchedule:
    require_permission(actor, "measures.send", schedule.clinic)
    schedule = MeasureSchedule.objects.select_for_update(no_key=True, of=("self",)).get(
        pk=schedule.pk
    )
    if not schedule.active:
        return schedule
    schedule.active = False
    schedule.save(update_fields=["active"])
    audit.record(
        action="update",
        clinic=schedule.clinic,
        actor=actor,
        patient=schedule.patient,
        obj=schedule,
        detail={"stopped": True},
    )
    return schedule


@transaction.atomic
def send_scheduled(
    *, schedule: MeasureSchedule, treatment_at=None, base_url=None
) -> PatientLink | None:
    """Send one scheduled link (by the background task) and move the schedule on.

    ``treatment_at``: the start of the booked dosing visit the link is sent before
    ("before every treatment"); the schedule remembers it so each visit gets one link."""
    schedule = (
        MeasureSchedule.objects.select_for_update(no_key=True, of=("self",))
        .select_related("patient", "clinic")
        .get(pk=schedule.pk)
    )
    patient = schedule.patient
    if not schedule.active or not patient.email:
        return None
    if treatment_at is not None and (
        schedule.last_treatment_sent_for is not None
        and schedule.last_treatment_sent_for >= treatment_at
    ):
        return None  # already sent for this visit (two ticks at the same moment)
    link, raw = _new_link(
        patient=patient,
        codes=list(schedule.instruments),
        created_by=None,
        schedule=schedule,
        plan=schedule.plan,
    )
    _email_link(link, raw, base_url or public_base_url())
    link.emailed_to = patient.email
    link.last_sent_at = now()
    link.save(update_fields=["emailed_to", "last_sent_at"])
    if treatment_at is not None:
        schedule.last_treatment_sent_for = treatment_at
    else:
        schedule.next_due = _advance(
            schedule, max(schedule.next_due or now(), now() - datetime.timedelta(days=1))
        )
    schedule.save(update_fields=["next_due", "last_treatment_sent_for"])
    audit.record(
        action="create",
        clinic=schedule.clinic,
        actor_label=SYSTEM,
        patient=patient,
        obj=link,
        detail={
            "schedule": schedule.pk,
            "instruments": link.instruments,
            "before_treatment_at": treatment_at.isoformat() if treatment_at else None,
        },
    )
    return link


# ---------------------------------------------------------------------------- alerts


class AlreadyDone(ValidationError):
    """The alert or flag was already handled (e.g. by a colleague a moment earlier)."""


def _fmt(user, at, clinic) -> str:
    who = user.get_full_name() if user else "someone"
    return f"{who} at {at.astimezone(clinic.tz):%Y-%m-%d %H:%M}"


@transaction.atomic
def acknowledge_alert(*, alert_id, clinic, actor, note: str = "") -> SafetyAlert:
    """Mark an alert as seen and being handled. Exactly one acknowledgement per alert."""
    require_permission(actor, "alerts.respond", clinic)
    alert = (
        SafetyAlert.objects.for_clinic(clinic)
        .select_for_update(no_key=True, of=("self",))
        .filter(pk=alert_id)
        .first()
    )
    if alert is None:
        from django.http import Http404

        raise Http404("No such alert in this clinic.")
    if alert.acknowledged_at is not None:
        acknowledged_by = alert.acknowledged_by
        raise AlreadyDone(
            {
                "alert": [
                    f"Already acknowledged by {_fmt(acknowledged_by, alert.acknowledged_at, clinic)}."
                ]
            }
        )
    alert.acknowledged_by = actor
    alert.acknowledged_at = now()
    alert.acknowledge_note = note.strip()[:2000]
    alert.save(update_fields=["acknowledged_by", "acknowledged_at", "acknowledge_note"])
    audit.record(
        action="update",
        clinic=clinic,
        actor=actor,
        patient=alert.patient,
        obj=alert,
        detail={"acknowledged": True, "kind": alert.kind},
    )
    return alert


@transaction.atomic
def clear_flag(*, flag_id, clinic, actor, action: str, note: str) -> RiskFlag:
    """Clear a patient's risk flag with a documented action. Open alerts must be acknowledged."""
    require_permission(actor, "alerts.respond", clinic)
    flag = (
        RiskFlag.objects.for_clinic(clinic)
        .select_for_update(no_key=True, of=("self",))
        .filter(pk=flag_id)
        .first()
    )
    if flag is None:
        from django.http import Http404

        raise Http404("No such risk flag in this clinic.")
    if flag.cleared_at is not None:
        raise AlreadyDone(
            {"flag": [f"Already cleared by {_fmt(flag.cleared_by, flag.cleared_at, clinic)}."]}
        )
    errors = {}
    if action not in RiskFlag.Action.values:
        errors["action"] = [
            "Choose the action taken: contacted, safety plan or emergency referral."
        ]
    if len(note.strip()) < 10:
        errors["note"] = ["Describe what was done (at least 10 characters)."]
    if errors:
        raise ValidationError(errors)
    if (
        SafetyAlert.objects.for_clinic(clinic)
        .filter(patient_id=flag.patient_id, acknowledged_at__isnull=True)
        .exists()
    ):
        raise ValidationError({"flag": ["Acknowledge this patient's open alerts first."]})
    flag.cleared_by = actor
    flag.cleared_at = now()
    flag.clear_action = action
    flag.clear_note = note.strip()[:4000]
    flag.save(update_fields=["cleared_by", "cleared_at", "clear_action", "clear_note"])
    audit.record(
        action="update",
        clinic=clinic,
        actor=actor,
        patient=flag.patient,
        obj=flag,
        detail={"cleared": True, "action": action},
    )
    return flag


def alert_recipients(alert: SafetyAlert, *, escalation: bool = False) -> list[str]:
    """The prescriber and the on-call clinicians; on escalation also every clinician who may
    respond and the owners (medical direction). Active members only."""
    clinic = alert.clinic
    members = {
        m.user_id: m
        for m in Membership.objects.filter(clinic=clinic, is_active=True).select_related("user")
    }
    wanted = set(OnCall.objects.filter(clinic=clinic).values_list("user_id", flat=True))
    if alert.patient.prescriber_id:
        wanted.add(alert.patient.prescriber_id)
    if escalation or not wanted:
        wanted |= {
            uid
            for uid, m in members.items()
            if roles_can(m.roles, "alerts.respond") or "owner" in m.roles
        }
    return sorted(members[uid].user.email for uid in wanted if uid in members)


def _alert_mail(alert: SafetyAlert, recipients: list[str], *, escalation: bool) -> None:
    # No names in email: the MRN and a link to the alert list are enough to act.
    url = public_base_url() + reverse("measures:alerts")
    head = "ESCALATED, not yet acknowledged" if escalation else "Safety alert"
    send_mail(
        subject=f"[ketaflow] {head}: patient {alert.patient.mrn}",
        message=(
            f"{head} at {alert.clinic.name}.\n\nPatient MRN {alert.patient.mrn}: "
            f"{alert.get_kind_display()} ({alert.get_severity_display()}).\n{alert.reason}\n\n"
            f"Acknowledge and act: {url}\n"
        ),
        from_email=None,
        recipient_list=recipients,
    )


def notify_alert(*, alert_id) -> list[str]:
    """Email the alert (called by the background task; failures are logged, never lost:
    the alert stays in the list and escalates)."""
    alert = SafetyAlert.objects.select_related("clinic", "patient").get(pk=alert_id)
    recipients = alert_recipients(alert)
    if recipients:
        try:
            _alert_mail(alert, recipients, escalation=False)
        except Exception:  # a mail failure must not hide the alert (it escalates)
            log.exception("could not email safety alert %s", alert.pk)
            return []
        SafetyAlert.objects.filter(pk=alert.pk).update(notified=recipients)
    return recipients


@transaction.atomic
def escalate_alert(*, alert_id) -> SafetyAlert | None:
    alert = (
        SafetyAlert.objects.select_for_update(no_key=True, of=("self",))
        .select_related("clinic", "patient")
        .get(pk=alert_id)
    )
    if alert.acknowledged_at is not None or alert.escalated_at is not None:
        return None
    recipients = alert_recipients(alert, escalation=True)
    alert.escalated_at = now()
    alert.save(update_fields=["escalated_at"])
    if recipients:
        _alert_mail(alert, recipients, escalation=True)
    audit.record(
        action="update",
        clinic=alert.clinic,
        actor_label=SYSTEM,
        patient=alert.patient,
        obj=alert,
        detail={"escalated": True, "recipients": len(recipients)},
    )
    return alert


# ---------------------------------------------------------------------------- settings


@transaction.atomic
def update_settings(*, clinic, actor, data: dict, on_call_user_ids: list[int]) -> MeasuresSettings:
    require_permission(actor, "clinic.settings", clinic)
    from ketaflow.measures.forms import SettingsForm

    current = settings_for(clinic)
    form = SettingsForm(data, instance=current)
    if not form.is_valid():
        raise ValidationError(form.errors.as_data())
    members = set(
        Membership.objects.filter(clinic=clinic, is_active=True).values_list("user_id", flat=True)
    )
    ids = {int(i) for i in on_call_user_ids}
    if ids - members:
        raise ValidationError({"on_call": ["Only active members of this clinic can be on call."]})
    saved = form.save(commit=False)
    saved.clinic = clinic
    saved.save()
    OnCall.objects.filter(clinic=clinic).exclude(user_id__in=ids).delete()
    for uid in ids:
        OnCall.objects.get_or_create(clinic=clinic, user_id=uid)
    audit.record(
        action="update",
        clinic=clinic,
        actor=actor,
        obj=saved,
        detail={"fields": sorted(form.changed_data), "on_call": sorted(ids)},
    )
    return saved
