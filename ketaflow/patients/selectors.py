"""Reads of the patient registry, always scoped to one clinic."""

import dataclasses
import datetime
import re
from dataclasses import dataclass

from django.db.models import Count, Q
from django.http import Http404

from ketaflow.accounts.models import EmergencyAccess
from ketaflow.patients.models import Patient, search_key
from ketaflow.patients.scope import ChartScope
from ketaflow.tenancy.models import Clinic

_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y")
_HIGH = "\U0010ffff"


def patients(clinic: Clinic):
    return Patient.objects.for_clinic(clinic).select_related(
        "preferred_location", "prescriber", "therapist"
    )


def get_patient(clinic: Clinic, pk) -> Patient:
    """The patient with ``pk`` in ``clinic``; 404 for any other clinic's patient."""
    try:
        return patients(clinic).get(pk=int(pk))
    except (Patient.DoesNotExist, ValueError, TypeError):
        raise Http404("No such patient in this clinic.") from None


def _parse_date(text: str) -> datetime.date | None:
    for fmt in _DATE_FORMATS:
        try:
            return datetime.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def _prefix(field: str, token: str) -> Q:
    # A range instead of LIKE, so both SQLite and PostgreSQL use the (clinic, key) index.
    return Q(**{f"{field}__gte": token, f"{field}__lt": token + _HIGH})


# Name search: last-name matches first, then first-name, then preferred-name matches. Each
# branch is one range scan of its (clinic, key, ...) index in index order, so a search stays
# fast at any clinic size however many patients share the first letters.
_NAME_BRANCHES = (
    ("family_key", ("family_key", "given_key", "id")),
    ("given_key", ("given_key", "family_key", "id")),
    ("preferred_key", ("preferred_key", "family_key", "id")),
)


def search(clinic: Clinic, query: str, *, status: str | None = None, limit: int = 25) -> list:
    """Find patients by MRN, date of birth or name prefix(es)."""
    query = " ".join((query or "").split())[:100]
    qs = patients(clinic)
    if status:
        qs = qs.filter(status=status)
    if not query:
        return list(qs.order_by("family_key", "given_key", "id")[:limit])
    dob = _parse_date(query)
    if dob is not None:
        return list(qs.filter(date_of_birth=dob).order_by("family_key", "id")[:limit])
    if re.search(r"\d", query) and " " not in query:
        return list(qs.filter(_prefix("mrn", query.upper())).order_by("mrn")[:limit])
    first, *others = [key for token in query.split(" ") if (key := search_key(token))] or [""]
    for token in others:
        qs = qs.filter(
            _prefix("family_key", token)
            | _prefix("given_key", token)
            | _prefix("preferred_key", token)
        )
    found: dict[int, Patient] = {}
    for field, order in _NAME_BRANCHES:
        remaining = limit - len(found)
        if remaining <= 0:
            break
        rows = (
            qs.filter(_prefix(field, first))
            .exclude(pk__in=list(found))
            .order_by(*order)[:remaining]
        )
        found.update((p.pk, p) for p in rows)
    return list(found.values())


def describe_search(query: str, status: str | None = None, limit: int = 25) -> dict:
    """What a search asked for, for its audit event, without the words typed: the kind of
    query (name, MRN, date of birth or none) and its length. The patients it returned are
    named by id in the same event, which is what the trail needs."""
    query = " ".join((query or "").split())[:100]
    if not query:
        kind = "none"
    elif _parse_date(query) is not None:
        kind = "date-of-birth"
    elif re.search(r"\d", query) and " " not in query:
        kind = "mrn"
    else:
        kind = "name"
    return {"kind": kind, "length": len(query), "status": status, "limit": limit}


def needing_action(clinic: Clinic, limit: int = 20):
    """Patients waiting on the clinic: prospective ones, and anyone without a prescriber."""
    qs = patients(clinic).filter(
        Q(status=Patient.Status.PROSPECTIVE)
        | Q(prescriber__isnull=True, status=Patient.Status.ACTIVE)
    )
    return qs.order_by("created_at", "id")[:limit]


def status_counts(clinic: Clinic) -> dict[str, int]:
    rows = Patient.objects.for_clinic(clinic).values("status").annotate(n=Count("id"))
    counts = {status: 0 for status in Patient.Status.values}
    counts.update({row["status"]: row["n"] for row in rows})
    return counts


def chart_access(
    user, clinic: Clinic, patient: Patient
) -> tuple[str | None, EmergencyAccess | None]:
    """How ``user`` may open the clinical chart: ("normal"|"emergency"|None, active grant).

    Normal scope: the clinical roles, at the patient's preferred location (members with no
    locations listed work at all of them), or as the patient's prescriber or therapist.
    Outside it, only an active emergency-access grant opens the chart. The rule lives in
    ``patients.scope.ChartScope``, which every list uses too.
    """
    return ChartScope(user, clinic).access(patient)


# ---------------------------------------------------------------------------- safety banner
#
# What identifies the patient on every clinical page and on each chair of the chair board
# (issue 17: the wrong patient or chair). The facts come from other apps (allergies and
# consent from intake, risk flags from measures, who is in today from scheduling and
# treatment); each is read only if its app is installed, in one query for any number of
# patients, so the chair board stays at a constant number of queries.


def name_parts(given: str, family: str) -> tuple[str, str]:
    """A name part normalised for comparison: accents, case, punctuation and spaces
    removed ("O'Brien-Núñez" -> "obriennunez")."""
    return tuple(re.sub(r"[^0-9a-z]", "", search_key(part)) for part in (given, family))


def _close(a: str, b: str, *, prefix: bool = False) -> bool:
    """Equal, one edit apart (Jon / John, Sara / Sarah, Smith / Smyth), or with ``prefix``
    (first names) one a prefix of the other of at least 3 letters (Alex / Alexander)."""
    if not a or not b:
        return False
    if a == b:
        return True
    if prefix and min(len(a), len(b)) >= 3 and (a.startswith(b) or b.startswith(a)):
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long_ = sorted((a, b), key=len)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def _givens(p) -> set[str]:
    names = {name_parts(p.legal_given_name, "")[0]}
    if p.preferred_name:
        names.add(name_parts(p.preferred_name, "")[0])
    return names - {""}


def similar_names(a, b) -> bool:
    """Two patients whose names could be confused at the chair: the same family name (or
    first and last swapped) with a close first name (legal or preferred), after accents,
    case and punctuation are removed."""
    fam_a = name_parts("", a.legal_family_name)[1]
    fam_b = name_parts("", b.legal_family_name)[1]
    ga, gb = _givens(a), _givens(b)
    if _close(fam_a, fam_b) and any(_close(x, y, prefix=True) for x in ga for y in gb):
        return True
    # first and last swapped: one's family name is the other's first name and vice versa
    return any(_close(fam_a, y) for y in gb) and any(_close(x, fam_b) for x in ga)


@dataclass
class SafetyBanner:
    patient: Patient
    age: int
    allergies: str | None = None  # None: no assessment records them
    allergies_signed: bool = False
    draft_allergies: str | None = None  # a newer, unsigned assessment's allergies
    flag: object | None = None  # the open measures.RiskFlag (worst urgency), or None
    consents: list = dataclasses.field(default_factory=list)  # route labels with consent in force
    consent_known: bool = True  # False when the intake app is not installed
    same_name: list = dataclasses.field(default_factory=list)  # [(Patient or None if out of scope)]

    @property
    def flag_urgency(self) -> str:
        return self.flag.get_urgency_display() if self.flag is not None else ""


def _today_bounds(clinic):
    day = clinic.today()
    start = datetime.datetime.combine(day, datetime.time(0), tzinfo=clinic.tz)
    return start, start + datetime.timedelta(days=1)


def in_clinic_today(clinic) -> list[Patient]:
    """Patients with a visit today (booked or completed) or an active treatment session:
    the people who could be confused with each other at the front desk or a chair. One
    query."""
    from django.apps import apps

    start, end = _today_bounds(clinic)
    here = Q(pk__in=[])
    if apps.is_installed("ketaflow.scheduling"):
        from ketaflow.scheduling.models import Appointment

        here |= Q(
            pk__in=Appointment.objects.for_clinic(clinic)
            .filter(start__gte=start, start__lt=end, status__in=Appointment.ACTIVE)
            .values("patient_id")
        )
    if apps.is_installed("ketaflow.treatment"):
        from ketaflow.treatment.models import TreatmentSession

        here |= Q(
            pk__in=TreatmentSession.objects.for_clinic(clinic)
            .filter(
                Q(state__in=TreatmentSession.ACTIVE) | Q(opened_at__gte=start, opened_at__lt=end)
            )
            .values("patient_id")
        )
    return list(Patient.objects.for_clinic(clinic).filter(here))


def safety_banners(clinic, patients_, *, scope=None) -> dict[int, SafetyBanner]:
    """The safety banner of each of ``patients_`` (by id): two identifiers and age (from
    the patient), allergies (latest assessment, signed first), the open risk flag at its
    worst urgency, consent in force by route, and the other patients with a similar name in
    the clinic today (``scope``, a ChartScope: those outside it are shown without their
    identity). At most 6 queries whatever the number of patients."""
    from django.apps import apps

    patients_ = list(patients_)
    ids = [p.pk for p in patients_]
    today = clinic.today()
    out = {p.pk: SafetyBanner(p, p.age_on(today)) for p in patients_}
    if not ids:
        return out
    if apps.is_installed("ketaflow.intake"):
        from ketaflow.intake.models import Assessment, ConsentSignature
        from ketaflow.plans.models import ROUTE_LABELS

        seen: set[int] = set()
        rows = (
            Assessment.objects.for_clinic(clinic)
            .filter(patient_id__in=ids)
            .order_by("patient_id", "-created_at", "-id")
            .values_list("patient_id", "allergies", "status")
        )
        # The newest signed assessment's allergies; a newer draft's too when they differ
        # (an allergy noted in a draft must not wait for the signature to be seen).
        for pid, allergies, status in rows:
            banner, text = out[pid], allergies.strip()
            if status == Assessment.Status.SIGNED:
                if banner.allergies is None:
                    banner.allergies, banner.allergies_signed = text, True
            elif banner.allergies is None and banner.draft_allergies is None:
                banner.draft_allergies = text
        for banner in out.values():
            if banner.draft_allergies is not None and banner.draft_allergies == banner.allergies:
                banner.draft_allergies = None
        for pid, route in (
            ConsentSignature.objects.for_clinic(clinic)
            .filter(patient_id__in=ids, agreed=True, withdrawn_at__isnull=True)
            .order_by("patient_id", "route")
            .values_list("patient_id", "route")
        ):
            label = ROUTE_LABELS.get(route, route)
            if (pid, route) not in seen:
                seen.add((pid, route))
                out[pid].consents.append(label)
    else:
        for banner in out.values():
            banner.consent_known = False
    if apps.is_installed("ketaflow.measures"):
        from ketaflow.measures.models import RiskFlag

        for flag in RiskFlag.objects.for_clinic(clinic).filter(
            patient_id__in=ids, cleared_at__isnull=True
        ):
            out[flag.patient_id].flag = flag
    today_patients = in_clinic_today(clinic)
    matches = [
        (banner, other)
        for banner in out.values()
        for other in today_patients
        if other.pk != banner.patient.pk and similar_names(banner.patient, other)
    ]
    if matches:
        visible = None
        if scope is not None:  # one more query, only when there is something to warn about
            visible = set(
                scope.visible(
                    Patient.objects.for_clinic(clinic).filter(pk__in={o.pk for _b, o in matches}),
                    path="",
                ).values_list("pk", flat=True)
            )
        for banner, other in matches:
            banner.same_name.append(other if visible is None or other.pk in visible else None)
    return out


def safety_banner(clinic, patient, *, scope=None) -> SafetyBanner:
    return safety_banners(clinic, [patient], scope=scope)[patient.pk]
