"""Therapy API: notes (psychotherapy notes only for their author and the clinicians they
were shared with), addenda, sharing and release, goals, practices, the patient's other
clinicians, progress letters, and the FHIR-shaped export of notes (released psychotherapy
notes only)."""

import datetime

from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError

from ketaflow.api import ERRORS, WRITE_ERRORS, api_require
from ketaflow.audit import services as audit
from ketaflow.patients import selectors as patient_selectors
from ketaflow.therapy import fhir, selectors, services
from ketaflow.therapy import note_types as nt
from ketaflow.therapy.models import Goal, OutsideClinician, Practice
from ketaflow.web import bounds

router = Router(tags=["therapy"])


def _chart_patient(request, clinic, patient_id):
    patient = patient_selectors.get_patient(clinic, patient_id)
    access, grant = patient_selectors.chart_access(request.user, clinic, patient)
    if access is None:
        raise HttpError(
            403, "This chart is outside your scope; use emergency access on the chart page."
        )
    request.emergency_grant = grant
    return patient


def _note(request, clinic, note_id):
    note = selectors.get_note(request.user, clinic, note_id)
    _chart_patient(request, clinic, note.patient_id)
    return note


def _page(rows, limit, offset):
    return {"items": rows[:limit], "limit": limit, "offset": offset, "has_more": len(rows) > limit}


def _bounds(limit, offset):
    return max(1, min(limit, 100)), max(0, offset)


# ---------------------------------------------------------------------------- schemas


class NoteSummaryOut(Schema):
    id: int
    patient_id: int
    kind: str
    kind_label: str
    structure: str
    author_id: int
    status: str
    plan_id: int | None
    session_id: int | None
    appointment_id: int | None
    created_at: datetime.datetime
    signed_at: datetime.datetime | None
    released_at: datetime.datetime | None


class AddendumOut(Schema):
    id: int
    text: str
    author_id: int
    signed_at: datetime.datetime


class TherapyNoteOut(NoteSummaryOut):
    content: dict[str, str]
    record_facts: list[str]
    addenda: list[AddendumOut] = []
    shared_with: list[int] = []


class NotePage(Schema):
    items: list[NoteSummaryOut]
    limit: int
    offset: int
    has_more: bool


class TherapyNoteIn(Schema):
    kind: str = Field(..., description=", ".join(nt.KIND_LABELS))
    content: dict[str, str] = {}
    plan_id: bounds.Id | None = None
    appointment_id: bounds.Id | None = None
    session_id: bounds.Id | None = Field(None, description="Required for dosing-session notes")
    sign: bool = False


class NoteUpdateIn(Schema):
    content: dict[str, str]


class TextIn(Schema):
    text: str


class ShareIn(Schema):
    user_id: bounds.Id
    share: bool = True


class ReleaseIn(Schema):
    reason: str


def _note_out(note, detail=False) -> dict:
    out = {
        "id": note.pk,
        "patient_id": note.patient_id,
        "kind": note.kind,
        "kind_label": note.kind_label,
        "structure": note.structure,
        "author_id": note.author_id,
        "status": note.status,
        "plan_id": note.plan_id,
        "session_id": note.session_id,
        "appointment_id": note.appointment_id,
        "created_at": note.created_at,
        "signed_at": note.signed_at,
        "released_at": note.released_at,
    }
    if detail:
        out.update(
            content=note.content,
            record_facts=note.record_facts or [],
            addenda=[
                {"id": a.pk, "text": a.text, "author_id": a.author_id, "signed_at": a.signed_at}
                for a in selectors.addenda(note)
            ],
            shared_with=[s.user_id for s in selectors.active_shares(note)]
            if note.is_psychotherapy and note.author_id == getattr(note, "_viewer", None)
            else [],
        )
    return out


# ---------------------------------------------------------------------------- notes


@router.get(
    "/patients/{patient_id}/notes",
    response={200: NotePage, **ERRORS},
    summary="A patient's therapy notes",
)
def list_notes(
    request, patient_id: bounds.Id, limit: int = 25, offset: bounds.Offset = 0, q: str = ""
):
    """Record notes, and psychotherapy notes only where the caller is the author or was
    shared the note. ``q`` searches the text of the notes the caller may read."""
    clinic = api_require(request, "chart.view")
    patient = _chart_patient(request, clinic, patient_id)
    limit, offset = _bounds(limit, offset)
    rows = selectors.note_list(request.user, clinic, patient, text=q[:100])
    audit.record_read(request, patient=patient, detail={"tab": "therapy-notes"})
    return _page([_note_out(n) for n in rows[offset : offset + limit + 1]], limit, offset)


@router.get(
    "/notes/{note_id}", response={200: TherapyNoteOut, **ERRORS}, summary="One therapy note"
)
def get_note(request, note_id: bounds.Id):
    clinic = api_require(request, "chart.view")
    note = _note(request, clinic, note_id)
    services.record_note_read(request, note)
    note._viewer = request.user.pk
    return _note_out(note, detail=True)


@router.post(
    "/patients/{patient_id}/notes",
    response={201: TherapyNoteOut, **WRITE_ERRORS},
    summary="Write a therapy note",
)
def create_note(request, patient_id: bounds.Id, body: TherapyNoteIn):
    clinic = api_require(request, "therapy.write", writes=True)
    patient = _chart_patient(request, clinic, patient_id)
    note = services.create_note(
        patient=patient,
        actor=request.user,
        kind=body.kind,
        content=body.content,
        plan=body.plan_id,
        appointment=body.appointment_id,
        session=body.session_id,
    )
    if body.sign:
        note = services.sign_note(note=note, actor=request.user)
    note._viewer = request.user.pk
    return Status(201, _note_out(note, detail=True))


@router.patch(
    "/notes/{note_id}", response={200: TherapyNoteOut, **WRITE_ERRORS}, summary="Edit a draft note"
)
def update_note(request, note_id: bounds.Id, body: NoteUpdateIn):
    """Only the author's draft; a signed note answers 422 (add an addendum instead)."""
    clinic = api_require(request, "therapy.write", writes=True)
    note = services.update_note(
        note=_note(request, clinic, note_id), actor=request.user, content=body.content
    )
    note._viewer = request.user.pk
    return _note_out(note, detail=True)


@router.post(
    "/notes/{note_id}/sign", response={200: TherapyNoteOut, **WRITE_ERRORS}, summary="Sign a note"
)
def sign_note(request, note_id: bounds.Id):
    clinic = api_require(request, "therapy.write", writes=True)
    note = services.sign_note(note=_note(request, clinic, note_id), actor=request.user)
    note._viewer = request.user.pk
    return _note_out(note, detail=True)


@router.post(
    "/notes/{note_id}/addenda",
    response={201: AddendumOut, **WRITE_ERRORS},
    summary="Add a signed addendum",
)
def add_addendum(request, note_id: bounds.Id, body: TextIn):
    clinic = api_require(request, "therapy.write", writes=True)
    a = services.add_addendum(
        note=_note(request, clinic, note_id), actor=request.user, text=body.text
    )
    return Status(
        201, {"id": a.pk, "text": a.text, "author_id": a.author_id, "signed_at": a.signed_at}
    )


@router.post(
    "/notes/{note_id}/share",
    response={200: TherapyNoteOut, **WRITE_ERRORS},
    summary="Share a psychotherapy note",
)
def share_note(request, note_id: bounds.Id, body: ShareIn):
    """The author names a clinician of the clinic who may read the note (``share: false``
    stops sharing)."""
    clinic = api_require(request, "therapy.write", writes=True)
    note = _note(request, clinic, note_id)
    services.share_note(note=note, actor=request.user, user_id=body.user_id, share=body.share)
    note._viewer = request.user.pk
    return _note_out(note, detail=True)


@router.post(
    "/notes/{note_id}/release",
    response={200: TherapyNoteOut, **WRITE_ERRORS},
    summary="Release a psychotherapy note to exports",
)
def release_note(request, note_id: bounds.Id, body: ReleaseIn):
    clinic = api_require(request, "therapy.write", writes=True)
    note = services.release_note(
        note=_note(request, clinic, note_id), actor=request.user, reason=body.reason
    )
    note._viewer = request.user.pk
    return _note_out(note, detail=True)


@router.get(
    "/patients/{patient_id}/fhir",
    response={200: dict, **ERRORS},
    summary="Therapy notes as a FHIR Bundle of DocumentReference",
)
def notes_fhir(request, patient_id: bounds.Id):
    """Signed record notes, and psychotherapy notes only once their author released them."""
    clinic = api_require(request, "export")
    patient = _chart_patient(request, clinic, patient_id)
    notes = list(selectors.exportable_notes(clinic, patient))
    audit.record(
        action="export",
        clinic=clinic,
        actor=request.user,
        patient=patient,
        object_type="therapy.export",
        object_id=str(patient.pk),
        detail={"notes": len(notes), "api": True},
        emergency=audit.read_is_emergency(request, patient),
    )
    return fhir.bundle(patient, notes)


# ---------------------------------------------------------------------------- goals, practices


class GoalOut(Schema):
    id: int
    patient_id: int
    plan_id: int | None
    title: str
    detail: str
    target_date: datetime.date | None
    status: str
    instrument: str
    comparator: str
    threshold: int | None


class GoalIn(Schema):
    title: str | None = None
    detail: str | None = None
    plan: bounds.Id | None = None
    target_date: str | None = Field(None, description="YYYY-MM-DD")
    status: str | None = Field(None, description=", ".join(Goal.Status.values))
    instrument: str | None = None
    comparator: str | None = Field(None, description=", ".join(Goal.Comparator.values))
    threshold: int | None = None


def _form_data(body, instance=None, fields=()) -> dict:
    data = {}
    if instance is not None:
        for f in fields:
            value = getattr(instance, f + "_id", None) if f == "plan" else getattr(instance, f)
            data[f] = "" if value is None else value
    for k, v in body.model_dump(exclude_unset=True).items():
        data[k] = "" if v is None else v
    if "active" in data and isinstance(data["active"], bool) and not data["active"]:
        data.pop("active")
    return data


GOAL_FIELDS = (
    "title",
    "detail",
    "plan",
    "target_date",
    "status",
    "instrument",
    "comparator",
    "threshold",
)


@router.get(
    "/patients/{patient_id}/goals", response={200: list[GoalOut], **ERRORS}, summary="Goals"
)
def list_goals(request, patient_id: bounds.Id):
    clinic = api_require(request, "chart.view")
    patient = _chart_patient(request, clinic, patient_id)
    audit.record_read(request, patient=patient, detail={"tab": "therapy-goals"})
    return selectors.goals(patient)


@router.post(
    "/patients/{patient_id}/goals", response={201: GoalOut, **WRITE_ERRORS}, summary="New goal"
)
def create_goal(request, patient_id: bounds.Id, body: GoalIn):
    clinic = api_require(request, "therapy.write", writes=True)
    patient = _chart_patient(request, clinic, patient_id)
    data = {"status": "active", **_form_data(body)}
    return Status(201, services.save_goal(patient=patient, actor=request.user, data=data))


@router.patch("/goals/{goal_id}", response={200: GoalOut, **WRITE_ERRORS}, summary="Change a goal")
def update_goal(request, goal_id: bounds.Id, body: GoalIn):
    clinic = api_require(request, "therapy.write", writes=True)
    goal = selectors.get_object(Goal, clinic, goal_id)
    patient = _chart_patient(request, clinic, goal.patient_id)
    return services.save_goal(
        patient=patient, actor=request.user, data=_form_data(body, goal, GOAL_FIELDS), goal=goal
    )


class PracticeOut(Schema):
    id: int
    patient_id: int
    kind: str
    title: str
    detail: str
    days_per_week: int
    active: bool


class PracticeIn(Schema):
    kind: str | None = Field(None, description=", ".join(Practice.Kind.values))
    title: str | None = None
    detail: str | None = None
    days_per_week: int | None = None
    active: bool | None = None


class EntryOut(Schema):
    practice_id: int
    day: datetime.date
    done: bool
    source: str


class PracticesOut(Schema):
    practices: list[PracticeOut]
    entries: list[EntryOut]


@router.get(
    "/patients/{patient_id}/practices",
    response={200: PracticesOut, **ERRORS},
    summary="Practices and ticks",
)
def list_practices(request, patient_id: bounds.Id, days: int = 28):
    clinic = api_require(request, "chart.view")
    patient = _chart_patient(request, clinic, patient_id)
    from ketaflow.therapy.models import PracticeEntry

    since = clinic.today() - datetime.timedelta(days=max(1, min(days, 366)))
    audit.record_read(request, patient=patient, detail={"tab": "therapy-practices"})
    return {
        "practices": selectors.practices(patient),
        "entries": list(
            PracticeEntry.objects.for_clinic(clinic).filter(patient=patient, day__gte=since)
        ),
    }


@router.post(
    "/patients/{patient_id}/practices",
    response={201: PracticeOut, **WRITE_ERRORS},
    summary="New practice",
)
def create_practice(request, patient_id: bounds.Id, body: PracticeIn):
    clinic = api_require(request, "therapy.write", writes=True)
    patient = _chart_patient(request, clinic, patient_id)
    data = {"days_per_week": 7, "active": True, **_form_data(body)}
    return Status(201, services.save_practice(patient=patient, actor=request.user, data=data))


class PracticeDayIn(Schema):
    day: str = Field(description="YYYY-MM-DD; not after today")
    done: bool = True


@router.post(
    "/practices/{practice_id}/days",
    response={200: EntryOut, **WRITE_ERRORS},
    summary="Record one day of a practice as the patient reported it (source: clinician)",
)
def record_practice_day(request, practice_id: bounds.Id, body: PracticeDayIn):
    clinic = api_require(request, "therapy.write", writes=True)
    practice = selectors.get_object(Practice, clinic, practice_id)
    _chart_patient(request, clinic, practice.patient_id)
    return services.record_practice_day(
        practice=practice, actor=request.user, day=body.day, done=body.done
    )


# ---------------------------------------------------------------------------- care team


class ClinicianOut(Schema):
    id: int
    patient_id: int
    role: str
    name: str
    organization: str
    email: str
    phone: str
    fax: str
    address: str
    consent_given_on: datetime.date | None
    consent_expires_on: datetime.date | None
    consent_withdrawn_on: datetime.date | None
    consent_scope: str
    consent_status: str
    active: bool


class ClinicianIn(Schema):
    role: str | None = Field(None, description=", ".join(OutsideClinician.Role.values))
    name: str | None = None
    organization: str | None = None
    email: str | None = None
    phone: str | None = None
    fax: str | None = None
    address: str | None = None
    consent_given_on: str | None = None
    consent_expires_on: str | None = None
    consent_withdrawn_on: str | None = None
    consent_scope: str | None = None
    active: bool | None = None


CLINICIAN_FIELDS = (
    "role",
    "name",
    "organization",
    "email",
    "phone",
    "fax",
    "address",
    "consent_given_on",
    "consent_expires_on",
    "consent_withdrawn_on",
    "consent_scope",
    "active",
)


def _clinician_out(c, today) -> dict:
    return {
        **{f: getattr(c, f) for f in CLINICIAN_FIELDS},
        "id": c.pk,
        "patient_id": c.patient_id,
        "consent_status": c.consent_status(today),
    }


@router.get(
    "/patients/{patient_id}/clinicians",
    response={200: list[ClinicianOut], **ERRORS},
    summary="The patient's other clinicians",
)
def list_clinicians(request, patient_id: bounds.Id):
    clinic = api_require(request, "care_team.manage")
    patient = patient_selectors.get_patient(clinic, patient_id)
    audit.record_read(request, patient=patient, detail={"tab": "care-team"})
    today = clinic.today()
    return [_clinician_out(c, today) for c in selectors.outside_clinicians(patient)]


@router.post(
    "/patients/{patient_id}/clinicians",
    response={201: ClinicianOut, **WRITE_ERRORS},
    summary="Add another clinician",
)
def create_clinician(request, patient_id: bounds.Id, body: ClinicianIn):
    clinic = api_require(request, "care_team.manage", writes=True)
    patient = patient_selectors.get_patient(clinic, patient_id)
    data = {"active": True, **_form_data(body)}
    c = services.save_clinician(patient=patient, actor=request.user, data=data)
    return Status(201, _clinician_out(c, clinic.today()))


@router.patch(
    "/clinicians/{clinician_id}",
    response={200: ClinicianOut, **WRITE_ERRORS},
    summary="Change a clinician or the sharing consent",
)
def update_clinician(request, clinician_id: bounds.Id, body: ClinicianIn):
    clinic = api_require(request, "care_team.manage", writes=True)
    c = selectors.get_object(OutsideClinician, clinic, clinician_id)
    data = _form_data(body, c, CLINICIAN_FIELDS)
    if body.active is False:
        data.pop("active", None)
    elif c.active and "active" not in body.model_dump(exclude_unset=True):
        data["active"] = True
    c = services.save_clinician(patient=c.patient, actor=request.user, data=data, clinician=c)
    return _clinician_out(c, clinic.today())


# ---------------------------------------------------------------------------- letters


class LetterOut(Schema):
    id: int
    patient_id: int
    recipient_id: int
    plan_id: int | None
    author_id: int
    status: str
    facts: dict
    plan_text: str
    comments: str
    signed_at: datetime.datetime | None
    pdf_sha256: str
    sent: list[datetime.datetime] = []


class LetterIn(Schema):
    plan_id: bounds.Id | None = None


class LetterUpdateIn(Schema):
    plan_text: str
    comments: str = ""
    refresh: bool = False


def _letter_out(letter) -> dict:
    return {
        "id": letter.pk,
        "patient_id": letter.patient_id,
        "recipient_id": letter.recipient_id,
        "plan_id": letter.plan_id,
        "author_id": letter.author_id,
        "status": letter.status,
        "facts": letter.facts,
        "plan_text": letter.plan_text,
        "comments": letter.comments,
        "signed_at": letter.signed_at,
        "pdf_sha256": letter.pdf_sha256,
        "sent": [s.sent_at for s in letter.sends.all()],
    }


def _letter(request, clinic, letter_id):
    letter = selectors.get_letter(clinic, letter_id)
    _chart_patient(request, clinic, letter.patient_id)
    return letter


@router.get(
    "/patients/{patient_id}/letters",
    response={200: list[LetterOut], **ERRORS},
    summary="Progress letters",
)
def list_letters(request, patient_id: bounds.Id):
    clinic = api_require(request, "chart.view")
    patient = _chart_patient(request, clinic, patient_id)
    audit.record_read(request, patient=patient, detail={"tab": "letters"})
    from ketaflow.therapy.models import ProgressLetter

    rows = (
        ProgressLetter.objects.for_clinic(clinic)
        .filter(patient=patient)
        .defer("pdf")
        .prefetch_related("sends")
    )
    return [_letter_out(r) for r in rows]


@router.get("/letters/{letter_id}", response={200: LetterOut, **ERRORS}, summary="One letter")
def get_letter(request, letter_id: bounds.Id):
    clinic = api_require(request, "chart.view")
    letter = _letter(request, clinic, letter_id)
    audit.record_read(request, patient=letter.patient, obj=letter)
    return _letter_out(letter)


@router.post(
    "/clinicians/{clinician_id}/letters",
    response={201: LetterOut, **WRITE_ERRORS},
    summary="Generate a draft progress letter to this clinician",
)
def create_letter(request, clinician_id: bounds.Id, body: LetterIn):
    clinic = api_require(request, "letters.sign", writes=True)
    r = selectors.get_object(OutsideClinician, clinic, clinician_id)
    patient = _chart_patient(request, clinic, r.patient_id)
    letter = services.create_letter(
        patient=patient, actor=request.user, recipient=r, plan=body.plan_id
    )
    return Status(201, _letter_out(letter))


@router.patch(
    "/letters/{letter_id}", response={200: LetterOut, **WRITE_ERRORS}, summary="Edit a draft letter"
)
def update_letter(request, letter_id: bounds.Id, body: LetterUpdateIn):
    clinic = api_require(request, "letters.sign", writes=True)
    letter = services.update_letter(
        letter=_letter(request, clinic, letter_id),
        actor=request.user,
        plan_text=body.plan_text,
        comments=body.comments,
        refresh=body.refresh,
    )
    return _letter_out(letter)


@router.post(
    "/letters/{letter_id}/sign", response={200: LetterOut, **WRITE_ERRORS}, summary="Sign a letter"
)
def sign_letter(request, letter_id: bounds.Id):
    clinic = api_require(request, "letters.sign", writes=True)
    return _letter_out(
        services.sign_letter(letter=_letter(request, clinic, letter_id), actor=request.user)
    )


@router.post(
    "/letters/{letter_id}/send", response={200: LetterOut, **WRITE_ERRORS}, summary="Send a letter"
)
def send_letter(request, letter_id: bounds.Id):
    """Emails the signed PDF; refused (422, field ``consent``) without the patient's valid
    consent to share with the recipient."""
    clinic = api_require(request, "letters.sign", writes=True)
    letter = _letter(request, clinic, letter_id)
    services.send_letter(letter=letter, actor=request.user)
    return _letter_out(letter)
