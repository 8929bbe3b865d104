"""Reads of the patient registry, always scoped to one clinic."""

import datetime
import re

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
