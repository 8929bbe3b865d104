"""Writes of the therapy app: one function per change, one transaction, the permission
checked again, field errors named, and exactly one audit event."""

import datetime
import hashlib
import logging
import smtplib

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMessage
from django.db import transaction
from django.urls import reverse

from ketaflow.accounts.permissions import can, require_permission
from ketaflow.audit import services as audit
from ketaflow.clinical import instruments
from ketaflow.patients import selectors as patient_selectors
from ketaflow.therapy import note_types as nt
from ketaflow.therapy import selectors
from ketaflow.therapy.models import (
    Goal,
    LetterSend,
    NoteAddendum,
    NoteShare,
    OutsideClinician,
    Practice,
    PracticeEntry,
    PracticeLink,
    ProgressLetter,
    TherapyNote,
    TherapySettings,
)

log = logging.getLogger(__name__)
now = selectors.now

MAX_TEXT = 20_000


def _chart_scope(actor, patient):
    """Writers must be able to open the patient's chart (normal scope or emergency grant)."""
    access, _grant = patient_selectors.chart_access(actor, patient.clinic, patient)
    if access is None:
        raise PermissionDenied("Your role or locations do not give access to this chart.")


def _text(value, field, *, required=False, minimum=1, maximum=MAX_TEXT) -> str:
    text = str(value or "").strip()
    if required and len(text) < minimum:
        raise ValidationError(
            {field: ["Required." if minimum <= 1 else f"At least {minimum} characters."]}
        )
    if len(text) > maximum:
        raise ValidationError({field: [f"At most {maximum} characters."]})
    return text


def _plan(patient, plan):
    if plan in (None, ""):
        return None
    from ketaflow.plans.models import TreatmentPlan

    pk = getattr(plan, "pk", plan)
    try:
        return TreatmentPlan.objects.for_clinic(patient.clinic).get(patient=patient, pk=int(pk))
    except (TreatmentPlan.DoesNotExist, ValueError, TypeError):
        raise ValidationError(
            {"plan": ["Choose one of this patient's treatment courses."]}
        ) from None


def _appointment(patient, appt):
    if appt in (None, ""):
        return None
    from ketaflow.scheduling.models import Appointment

    pk = getattr(appt, "pk", appt)
    try:
        return Appointment.objects.for_clinic(patient.clinic).get(patient=patient, pk=int(pk))
    except (Appointment.DoesNotExist, ValueError, TypeError):
        raise ValidationError({"appointment": ["Choose one of this patient's visits."]}) from None


# ---------------------------------------------------------------------------- settings


@transaction.atomic
def update_settings(*, clinic, actor, data: dict) -> TherapySettings:
    from ketaflow.therapy.forms import SettingsForm

    require_permission(actor, "clinic.settings", clinic)
    current = selectors.settings_for(clinic)
    form = SettingsForm(data, instance=current)
    if not form.is_valid():
        raise ValidationError(_form_errors(form))
    changed = list(form.changed_data)
    row = form.save()
    audit.record(action="update", clinic=clinic, actor=actor, obj=row, detail={"fields": changed})
    return row


# ---------------------------------------------------------------------------- notes


def _clean_content(kind, structure, content: dict, *, for_signing: bool) -> dict:
    out, errors = {}, {}
    for section in nt.sections(kind, structure):
        value = str((content or {}).get(section.key, "") or "").strip()
        if len(value) > MAX_TEXT:
            errors[section.key] = [f"At most {MAX_TEXT} characters."]
        elif for_signing and section.required and not value:
            errors[section.key] = [f"{section.label}: required before signing."]
        out[section.key] = value
    if errors:
        raise ValidationError(errors)
    return out


def _session_for(patient, session):
    if session in (None, ""):
        return None
    return (
        session
        if hasattr(session, "pk") and session.patient_id == patient.pk
        else selectors.get_session_for_patient(patient, getattr(session, "pk", session))
    )


@transaction.atomic
def create_note(
    *,
    patient,
    actor,
    kind: str,
    content: dict | None = None,
    plan=None,
    appointment=None,
    session=None,
) -> TherapyNote:
    require_permission(actor, "therapy.write", patient.clinic)
    _chart_scope(actor, patient)
    if kind not in nt.KIND_LABELS:
        raise ValidationError({"kind": [f"Choose one of: {', '.join(nt.KIND_LABELS)}."]})
    structure = (
        selectors.settings_for(patient.clinic).progress_note_format if kind == nt.PROGRESS else ""
    )
    try:
        session = _session_for(patient, session)
    except Exception as exc:
        raise ValidationError(
            {"session": ["Choose one of this patient's treatment sessions."]}
        ) from exc
    if kind == nt.DOSING and session is None:
        raise ValidationError(
            {"session": ["A dosing-session note belongs to a treatment session: choose it."]}
        )
    if kind != nt.DOSING and session is not None:
        raise ValidationError({"session": ["Only dosing-session notes link a treatment session."]})
    appointment = _appointment(patient, appointment)
    if session is not None and appointment is None:
        appointment = session.appointment
    plan = _plan(patient, plan)
    if plan is None and appointment is not None and appointment.plan_id:
        plan = appointment.plan
    note = TherapyNote.all_kinds.create(
        clinic=patient.clinic,
        patient=patient,
        kind=kind,
        structure=structure,
        author=actor,
        plan=plan,
        appointment=appointment,
        session=session,
        content=_clean_content(kind, structure, content or {}, for_signing=False),
    )
    audit.record(
        action="create",
        clinic=patient.clinic,
        actor=actor,
        patient=patient,
        obj=note,
        detail=_note_detail(note, sorted(k for k, v in note.content.items() if v)),
    )
    return note


def _note_detail(note, fields) -> dict:
    """Audit detail of a note write: the section names, except for psychotherapy notes,
    whose section names would tell the Activity tab what kind of note it is."""
    return {} if note.is_psychotherapy else {"fields": fields}


def _own_draft(note, actor):
    note = TherapyNote.all_kinds.select_for_update(no_key=True, of=("self",)).get(pk=note.pk)
    if note.is_signed:
        raise ValidationError(
            {"status": ["This note is signed and read-only: add an addendum instead."]}
        )
    if note.author_id != actor.pk:
        raise PermissionDenied("Only the note's author can change or sign it.")
    return note


@transaction.atomic
def update_note(*, note, actor, content: dict) -> TherapyNote:
    require_permission(actor, "therapy.write", note.clinic)
    note = _own_draft(note, actor)
    _chart_scope(actor, note.patient)
    new = _clean_content(note.kind, note.structure, content, for_signing=False)
    changed = sorted(k for k in new if new[k] != note.content.get(k, ""))
    note.content = new
    note.save(update_fields=["content", "updated_at"])
    audit.record(
        action="update",
        clinic=note.clinic,
        actor=actor,
        patient=note.patient,
        obj=note,
        detail=_note_detail(note, changed),
    )
    return note


@transaction.atomic
def sign_note(*, note, actor, content: dict | None = None) -> TherapyNote:
    """Sign the author's draft; afterwards it only gains addenda. Dosing-session notes copy
    the route, dose and safety events from the session record at this moment."""
    require_permission(actor, "therapy.write", note.clinic)
    require_permission(actor, "notes.sign", note.clinic)
    note = _own_draft(note, actor)
    _chart_scope(actor, note.patient)
    if content is not None:
        note.content = _clean_content(note.kind, note.structure, content, for_signing=False)
    note.content = _clean_content(note.kind, note.structure, note.content, for_signing=True)
    if note.kind == nt.DOSING and note.session_id:
        note.record_facts = selectors.session_facts(note.session)
    note.status = TherapyNote.Status.SIGNED
    note.signed_at = now()
    note.save()
    audit.record(
        action="sign",
        clinic=note.clinic,
        actor=actor,
        patient=note.patient,
        obj=note,
        detail=_note_detail(note, sorted(k for k, v in note.content.items() if v)),
    )
    return note


@transaction.atomic
def add_addendum(*, note, actor, text: str) -> NoteAddendum:
    require_permission(actor, "therapy.write", note.clinic)
    require_permission(actor, "notes.sign", note.clinic)
    note = TherapyNote.all_kinds.select_for_update(no_key=True, of=("self",)).get(pk=note.pk)
    if not selectors.may_read_note(actor, note.clinic, note):
        raise PermissionDenied("You may not read this note.")
    if note.is_psychotherapy and note.author_id != actor.pk:
        raise PermissionDenied("Only the author adds addenda to a psychotherapy note.")
    if not note.is_signed:
        raise ValidationError({"text": ["The note is still a draft: edit it instead."]})
    text = _text(text, "text", required=True, minimum=3)
    addendum = NoteAddendum.objects.create(
        clinic=note.clinic, note=note, text=text, author=actor, signed_at=now()
    )
    audit.record(
        action="sign",
        clinic=note.clinic,
        actor=actor,
        patient=note.patient,
        obj=addendum,
        detail={"note": note.pk},
    )
    return addendum


def _psychotherapy_of_author(note, actor):
    note = TherapyNote.all_kinds.select_for_update(no_key=True, of=("self",)).get(pk=note.pk)
    if not note.is_psychotherapy:
        raise ValidationError(
            {
                "kind": [
                    "Only psychotherapy notes are shared or released one by one; other "
                    "therapy notes are part of the record and follow the chart's access."
                ]
            }
        )
    if note.author_id != actor.pk:
        raise PermissionDenied("Only the author decides who reads a psychotherapy note.")
    return note


@transaction.atomic
def share_note(*, note, actor, user_id, share: bool = True) -> NoteShare | None:
    """Let one named clinician of the clinic read the author's psychotherapy note (or stop)."""
    require_permission(actor, "therapy.write", note.clinic)
    note = _psychotherapy_of_author(note, actor)
    candidates = {m.user_id: m.user for m in selectors.share_candidates(note.clinic, note)}
    try:
        user = candidates[int(user_id)]
    except (KeyError, ValueError, TypeError):
        raise ValidationError(
            {"user": ["Choose a clinician of this clinic who may open charts."]}
        ) from None
    current = NoteShare.objects.filter(note=note, user=user, revoked_at__isnull=True).first()
    if share:
        if current is not None:
            raise ValidationError({"user": [f"Already shared with {user.get_full_name()}."]})
        row = NoteShare.objects.create(
            clinic=note.clinic, note=note, user=user, shared_by=actor, shared_at=now()
        )
    else:
        if current is None:
            raise ValidationError({"user": [f"Not shared with {user.get_full_name()}."]})
        current.revoked_at = now()
        current.save(update_fields=["revoked_at"])
        row = current
    audit.record(
        action="permission-change",
        clinic=note.clinic,
        actor=actor,
        patient=note.patient,
        obj=note,
        detail={"shared_with" if share else "unshared_with": user.pk},
    )
    return row


@transaction.atomic
def release_note(*, note, actor, reason: str) -> TherapyNote:
    """The author releases a signed psychotherapy note to exports and the API (for example
    on the patient's written authorization). Releasing cannot be undone."""
    require_permission(actor, "therapy.write", note.clinic)
    note = _psychotherapy_of_author(note, actor)
    if not note.is_signed:
        raise ValidationError({"status": ["Sign the note before releasing it."]})
    if note.released_at:
        raise ValidationError({"status": ["This note is already released."]})
    note.released_reason = _text(reason, "reason", required=True, minimum=10, maximum=1000)
    note.released_at = now()
    note.save(update_fields=["released_at", "released_reason", "updated_at"])
    audit.record(
        action="permission-change",
        clinic=note.clinic,
        actor=actor,
        patient=note.patient,
        obj=note,
        detail={"released": True},
    )
    return note


def record_note_read(request, note) -> None:
    """Every read of a therapy note is audited; a psychotherapy note's every opening is
    (``record_read`` would skip a second read in the same request)."""
    if note.is_psychotherapy:
        audit.record(
            action="read",
            clinic=note.clinic,
            actor=request.user,
            patient=note.patient,
            obj=note,
            detail={"view": request.resolver_match.view_name if request.resolver_match else ""},
            emergency=audit.read_is_emergency(request, note.patient),
        )
        request._kf_read_audited = True
    else:
        audit.record_read(request, patient=note.patient, obj=note)


# ---------------------------------------------------------------------------- goals


def _form_errors(form) -> dict:
    return {k: [e["message"] for e in v] for k, v in form.errors.get_json_data().items()}


@transaction.atomic
def save_goal(*, patient, actor, data: dict, goal: Goal | None = None) -> Goal:
    from ketaflow.therapy.forms import GoalForm

    require_permission(actor, "therapy.write", patient.clinic)
    _chart_scope(actor, patient)
    if goal is not None and goal.patient_id != patient.pk:
        raise ValidationError({"goal": ["Not this patient's goal."]})
    form = GoalForm(data, instance=goal, patient=patient)
    if not form.is_valid():
        raise ValidationError(_form_errors(form))
    creating = goal is None
    obj = form.save(commit=False)
    if creating:
        obj.clinic, obj.patient, obj.created_by = patient.clinic, patient, actor
    obj.save()
    audit.record(
        action="create" if creating else "update",
        clinic=patient.clinic,
        actor=actor,
        patient=patient,
        obj=obj,
        detail={"fields": sorted(form.changed_data)},
    )
    return obj


# ---------------------------------------------------------------------------- practices


@transaction.atomic
def save_practice(*, patient, actor, data: dict, practice: Practice | None = None) -> Practice:
    from ketaflow.therapy.forms import PracticeForm

    require_permission(actor, "therapy.write", patient.clinic)
    _chart_scope(actor, patient)
    form = PracticeForm(data, instance=practice)
    if not form.is_valid():
        raise ValidationError(_form_errors(form))
    creating = practice is None
    obj = form.save(commit=False)
    if creating:
        obj.clinic, obj.patient, obj.created_by = patient.clinic, patient, actor
    obj.save()
    audit.record(
        action="create" if creating else "update",
        clinic=patient.clinic,
        actor=actor,
        patient=patient,
        obj=obj,
        detail={"fields": sorted(form.changed_data)},
    )
    return obj


def practice_link_path(raw: str) -> str:
    return reverse("therapy:practice_respond", kwargs={"token": raw})


@transaction.atomic
def create_practice_link(
    *, patient, actor, send_email: bool = False, base_url: str = ""
) -> tuple[PracticeLink, str]:
    """A secure link for ticking off practices. Returns the link and the raw token, shown
    once; only its SHA-256 is stored."""
    require_permission(actor, "therapy.write", patient.clinic)
    _chart_scope(actor, patient)
    if not selectors.practices(patient, active_only=True):
        raise ValidationError({"practices": ["Add at least one practice first."]})
    if send_email and not patient.email:
        raise ValidationError(
            {"send_email": ["The patient has no email address: show the link instead."]}
        )
    conf = selectors.settings_for(patient.clinic)
    raw = PracticeLink.new_token()
    t = now()
    link = PracticeLink.objects.create(
        clinic=patient.clinic,
        patient=patient,
        token_hash=PracticeLink.hash_token(raw),
        created_by=actor,
        starts_on=t.astimezone(patient.clinic.tz).date(),
        expires_at=t + datetime.timedelta(days=conf.practice_link_days),
        emailed_to=patient.email if send_email else "",
    )
    if send_email:
        url = (base_url or "").rstrip("/") + practice_link_path(raw)
        EmailMessage(
            subject=f"Your practices from {patient.clinic.name}",
            body=(
                f"Hello {patient.preferred_name or patient.legal_given_name},\n\n"
                "Use this private link to tick off your practices between sessions:\n"
                f"{url}\n\nIt works until {link.expires_at.astimezone(patient.clinic.tz):%A %d %B}."
                f"\n\nIn a crisis: {patient.clinic.crisis_line}; emergencies: "
                f"{patient.clinic.emergency_phone}."
            ),
            to=[patient.email],
        ).send()
    audit.record(
        action="create",
        clinic=patient.clinic,
        actor=actor,
        patient=patient,
        obj=link,
        detail={"emailed": bool(send_email)},
    )
    return link, raw


@transaction.atomic
def revoke_practice_link(*, link: PracticeLink, actor) -> PracticeLink:
    require_permission(actor, "therapy.write", link.clinic)
    link = PracticeLink.objects.select_for_update(no_key=True, of=("self",)).get(pk=link.pk)
    if link.revoked_at is not None:
        raise ValidationError({"link": ["This link is already withdrawn."]})
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


def find_practice_link(raw: str) -> PracticeLink | None:
    """The usable link for this token, or None (unknown, tampered, expired, withdrawn)."""
    if not raw or len(raw) > 100:
        return None
    link = (
        PracticeLink.objects.select_related("clinic", "patient")
        .filter(token_hash=PracticeLink.hash_token(raw))
        .first()
    )
    if link is None or not link.usable_at(now()):
        return None
    return link


def link_days(link: PracticeLink) -> list[datetime.date]:
    """The days the patient may tick through this link: from the week before it was made
    up to today (never the future)."""
    today = link.clinic.today()
    first = link.starts_on - datetime.timedelta(days=6)
    return [first + datetime.timedelta(days=i) for i in range((today - first).days + 1)][-14:]


@transaction.atomic
def submit_practices(*, link: PracticeLink, ticks: set[tuple[int, str]]) -> int:
    """The patient's ticks for the link's days: (practice id, ISO day) pairs. Days shown and
    not ticked are stored as not done. Returns the number of days marked done."""
    link = (
        PracticeLink.objects.select_for_update(no_key=True, of=("self",))
        .select_related("patient", "clinic")
        .get(pk=link.pk)
    )
    if not link.usable_at(now()):
        raise PermissionDenied("This link is not valid any more.")
    days = link_days(link)
    allowed_days = {d.isoformat(): d for d in days}
    plist = {p.pk: p for p in selectors.practices(link.patient, active_only=True)}
    for pid, day in ticks:
        if pid not in plist or day not in allowed_days:
            raise ValidationError({"ticks": ["A tick does not belong to this link."]})
    # Lock the practices (in id order): a clinician recording a day at the same moment
    # waits instead of colliding on the one-entry-per-day constraint.
    list(
        Practice.objects.select_for_update(no_key=True, of=("self",))
        .filter(pk__in=plist)
        .order_by("pk")
    )
    existing = {
        (e.practice_id, e.day): e
        for e in PracticeEntry.objects.filter(practice_id__in=plist, day__in=days)
    }
    t = now()
    done_count = 0
    for pid in plist:
        for d in days:
            done = (pid, d.isoformat()) in ticks
            done_count += done
            e = existing.get((pid, d))
            if e is None:
                if done:
                    PracticeEntry.objects.create(
                        clinic=link.clinic,
                        practice_id=pid,
                        patient=link.patient,
                        day=d,
                        done=True,
                        source=PracticeEntry.Source.LINK,
                        link=link,
                        recorded_at=t,
                    )
            elif e.done != done:
                e.done, e.source, e.link, e.recorded_at = done, PracticeEntry.Source.LINK, link, t
                e.save(update_fields=["done", "source", "link", "recorded_at"])
    link.last_used_at = t
    link.save(update_fields=["last_used_at"])
    audit.record(
        action="update",
        clinic=link.clinic,
        actor_label="patient (practice link)",
        patient=link.patient,
        obj=link,
        detail={"days_done": done_count},
    )
    return done_count


def practice_first_day(practice: Practice) -> datetime.date:
    """The earliest day that can be recorded for a practice: the week before it was set,
    as for the patient's link."""
    return practice.created_at.astimezone(practice.clinic.tz).date() - datetime.timedelta(days=6)


@transaction.atomic
def record_practice_day(*, practice: Practice, actor, day, done: bool) -> PracticeEntry:
    """A clinician records what the patient reported for one day (for example in a
    session): done or not done. The entry is marked as entered by a clinician; a later
    tick through the patient's link replaces it. Days after today, and days before the
    week the practice was set, are refused."""
    require_permission(actor, "therapy.write", practice.clinic)
    _chart_scope(actor, practice.patient)
    practice = (
        Practice.objects.select_for_update(no_key=True, of=("self",))
        .select_related("clinic", "patient")
        .get(pk=practice.pk)
    )
    if not practice.active:
        raise ValidationError({"practice": ["This practice is stopped: days cannot be added."]})
    if isinstance(day, str):
        try:
            day = datetime.date.fromisoformat(day.strip())
        except ValueError:
            raise ValidationError({"day": ["Give the day as YYYY-MM-DD."]}) from None
    if isinstance(day, datetime.datetime):
        day = day.date()
    if not isinstance(day, datetime.date):
        raise ValidationError({"day": ["Give the day as YYYY-MM-DD."]})
    if day > practice.clinic.today():
        raise ValidationError({"day": ["A day after today cannot be recorded."]})
    first = practice_first_day(practice)
    if day < first:
        raise ValidationError(
            {
                "day": [
                    f"Days before {first:%Y-%m-%d} (the week before the practice was set) "
                    "cannot be recorded."
                ]
            }
        )
    entry = PracticeEntry.objects.filter(practice=practice, day=day).first()
    before = None if entry is None else entry.done
    fields = {"done": bool(done), "source": PracticeEntry.Source.CLINICIAN, "link": None}
    if entry is None:
        entry = PracticeEntry.objects.create(
            clinic=practice.clinic,
            practice=practice,
            patient=practice.patient,
            day=day,
            recorded_at=now(),
            **fields,
        )
    else:
        for name, value in fields.items():
            setattr(entry, name, value)
        entry.recorded_at = now()
        entry.save(update_fields=[*fields, "recorded_at"])
    audit.record(
        action="create" if before is None else "update",
        clinic=practice.clinic,
        actor=actor,
        patient=practice.patient,
        obj=entry,
        detail={"day": day.isoformat(), "done": bool(done), "before": before},
    )
    return entry


# ---------------------------------------------------------------------------- care team


@transaction.atomic
def save_clinician(
    *, patient, actor, data: dict, clinician: OutsideClinician | None = None
) -> OutsideClinician:
    """Add or change one of the patient's other clinicians, including the patient's recorded
    consent to share with them (who recorded it is kept)."""
    from ketaflow.therapy.forms import ClinicianForm

    require_permission(actor, "care_team.manage", patient.clinic)
    if clinician is not None and clinician.patient_id != patient.pk:
        raise ValidationError({"clinician": ["Not this patient's clinician."]})
    form = ClinicianForm(data, instance=clinician, today=patient.clinic.today())
    if not form.is_valid():
        raise ValidationError(_form_errors(form))
    creating = clinician is None
    obj = form.save(commit=False)
    consent_fields = {
        "consent_given_on",
        "consent_expires_on",
        "consent_withdrawn_on",
        "consent_scope",
    }
    if creating:
        obj.clinic, obj.patient = patient.clinic, patient
    if consent_fields & set(form.changed_data) or (creating and obj.consent_given_on):
        obj.consent_recorded_by = actor
    obj.save()
    audit.record(
        action="create" if creating else "update",
        clinic=patient.clinic,
        actor=actor,
        patient=patient,
        obj=obj,
        detail={"fields": sorted(form.changed_data)},
    )
    return obj


# ---------------------------------------------------------------------------- letters


def _letter_writer(actor, letter):
    if letter.author_id != actor.pk:
        raise PermissionDenied("Only the letter's author can change, sign or send it.")


@transaction.atomic
def create_letter(*, patient, actor, recipient, plan=None) -> ProgressLetter:
    """A draft progress letter whose facts are generated from the record now."""
    from ketaflow.therapy import letters

    require_permission(actor, "letters.sign", patient.clinic)
    _chart_scope(actor, patient)
    pk = getattr(recipient, "pk", recipient)
    try:
        recipient = OutsideClinician.objects.for_clinic(patient.clinic).get(
            patient=patient, pk=int(pk), active=True
        )
    except (OutsideClinician.DoesNotExist, ValueError, TypeError):
        raise ValidationError(
            {"recipient": ["Choose one of the patient's other clinicians."]}
        ) from None
    plan = _plan(patient, plan)
    letter = ProgressLetter.objects.create(
        clinic=patient.clinic,
        patient=patient,
        recipient=recipient,
        plan=plan,
        author=actor,
        facts=letters.facts(patient, plan),
    )
    audit.record(
        action="create",
        clinic=patient.clinic,
        actor=actor,
        patient=patient,
        obj=letter,
        detail={"recipient": recipient.pk},
    )
    return letter


def _draft_letter(letter, actor):
    letter = ProgressLetter.objects.select_for_update(no_key=True, of=("self",)).get(pk=letter.pk)
    if letter.is_signed:
        raise ValidationError({"status": ["This letter is signed and cannot change."]})
    _letter_writer(actor, letter)
    return letter


@transaction.atomic
def update_letter(*, letter, actor, plan_text: str, comments: str = "", refresh=False):
    from ketaflow.therapy import letters

    require_permission(actor, "letters.sign", letter.clinic)
    letter = _draft_letter(letter, actor)
    letter.plan_text = _text(plan_text, "plan_text", maximum=5000)
    letter.comments = _text(comments, "comments", maximum=5000)
    fields = ["plan_text", "comments"]
    if refresh:
        letter.facts = letters.facts(letter.patient, letter.plan)
        fields.append("facts")
    letter.save(update_fields=[*fields, "updated_at"])
    audit.record(
        action="update",
        clinic=letter.clinic,
        actor=actor,
        patient=letter.patient,
        obj=letter,
        detail={"fields": fields},
    )
    return letter


@transaction.atomic
def sign_letter(*, letter, actor) -> ProgressLetter:
    """Sign after review: the PDF is produced now and kept, so what was signed is what is
    sent."""
    from ketaflow.therapy import pdf

    require_permission(actor, "letters.sign", letter.clinic)
    letter = _draft_letter(letter, actor)
    if not letter.plan_text.strip():
        raise ValidationError({"plan_text": ["Write the plan before signing the letter."]})
    letter.status = ProgressLetter.Status.SIGNED
    letter.signed_at = now()
    data = pdf.letter_pdf(letter)
    letter.pdf = data
    letter.pdf_sha256 = hashlib.sha256(data).hexdigest()
    letter.save()
    audit.record(
        action="sign",
        clinic=letter.clinic,
        actor=actor,
        patient=letter.patient,
        obj=letter,
        detail={"recipient": letter.recipient_id, "pdf_sha256": letter.pdf_sha256},
    )
    return letter


@transaction.atomic
def send_letter(*, letter, actor) -> LetterSend:
    """Email the signed PDF to the recipient, only with the patient's valid consent to share
    with that clinician. Any prescriber or therapist may send a signed letter."""
    require_permission(actor, "letters.sign", letter.clinic)
    letter = (
        ProgressLetter.objects.select_for_update(no_key=True, of=("self",))
        .select_related("recipient", "patient", "clinic")
        .get(pk=letter.pk)
    )
    if not letter.is_signed:
        raise ValidationError({"status": ["Sign the letter before sending it."]})
    r = OutsideClinician.objects.get(pk=letter.recipient_id)
    status = r.consent_status(letter.clinic.today())
    if status != "valid":
        reason = {
            "none": "no consent to share with this clinician is recorded",
            "expired": f"the consent to share expired on {r.consent_expires_on}",
            "withdrawn": f"the consent to share was withdrawn on {r.consent_withdrawn_on}",
        }[status]
        raise ValidationError(
            {
                "consent": [
                    f"Not sent: {reason}. Record the patient's consent on the care team page first."
                ]
            }
        )
    if not r.email:
        raise ValidationError({"recipient": ["The recipient has no email address."]})
    message = EmailMessage(
        subject=f"Progress letter from {letter.clinic.name}",
        body=(
            f"Dear {r.name},\n\nPlease find attached a progress letter about our shared "
            f"patient, sent with the patient's consent.\n\n{letter.author.get_full_name()}\n"
            f"{letter.clinic.name}"
        ),
        to=[r.email],
    )
    message.attach(f"progress-letter-{letter.pk}.pdf", bytes(letter.pdf), "application/pdf")
    send = LetterSend.objects.create(
        clinic=letter.clinic, letter=letter, to_email=r.email, sent_by=actor, sent_at=now()
    )
    audit.record(
        action="export",
        clinic=letter.clinic,
        actor=actor,
        patient=letter.patient,
        obj=letter,
        detail={"sent_to_clinician": r.pk, "pdf_sha256": letter.pdf_sha256},
    )
    # Sent last, so that nothing after it can fail and leave an email without its record. If
    # the mail server refuses or cannot be reached, the transaction rolls back: the letter
    # stays signed, nothing is recorded as sent, and the user is told (a field error, 422 on
    # the API) rather than shown a server error.
    try:
        message.send()
    except (smtplib.SMTPException, OSError) as exc:
        raise ValidationError(
            {
                "email": [
                    "The letter is signed but was not sent: the mail server could not be "
                    f"reached ({type(exc).__name__}). Nothing was recorded as sent; try again "
                    "later."
                ]
            }
        ) from None
    return send


def instrument_choices():
    return [
        (c, instruments.get(c).short_name)
        for c in instruments.codes()
        if instruments.get(c).score_range is not None
    ]


def may(actor, action, clinic) -> bool:
    return can(actor, action, clinic)
