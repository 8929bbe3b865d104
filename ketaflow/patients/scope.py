"""The location scope of the clinical chart: one predicate for single records and for lists.

A record of patient data belongs to its patient, and its "location" is the patient's
preferred location (the same rule whether it is a plan, a treatment session, an alert or a
REMS form). A member sees it in **normal scope** when their roles allow ``chart.view`` and

- the member has no locations listed (they work at all of them), or
- the patient has no preferred location, or
- the patient's preferred location is one of the member's locations, or
- the member is the patient's prescriber or therapist.

Outside normal scope only an active emergency-access grant for that patient opens it.

``ChartScope.allows`` answers for one patient in Python (no query: the membership and its
locations are cached on the user object), ``ChartScope.visible`` filters a queryset with the
same rule in SQL. Single-record checks (``patients.selectors.chart_access``) and every list
use this class, so a list never shows what the record's own page would refuse.
"""

import datetime

from django.db.models import Q, QuerySet

from ketaflow.accounts.models import EmergencyAccess
from ketaflow.accounts.permissions import membership_for, roles_can
from ketaflow.patients.models import Patient


def _now():
    return datetime.datetime.now(datetime.UTC)


class ChartScope:
    """What ``user`` may see of the clinical chart in ``clinic``."""

    def __init__(self, user, clinic):
        self.user = user
        self.clinic = clinic
        membership = membership_for(user, clinic)
        self.can_view = membership is not None and roles_can(membership.roles, "chart.view")
        self.location_ids = (
            frozenset(location.pk for location in membership.locations.all())
            if membership is not None
            else frozenset()
        )

    @property
    def unrestricted(self) -> bool:
        """True when the member works at every location (none listed)."""
        return self.can_view and not self.location_ids

    # ------------------------------------------------------------------ one patient

    def allows(self, patient) -> bool:
        """Normal scope for one patient (no emergency grant considered)."""
        if not self.can_view:
            return False
        return (
            not self.location_ids
            or patient.preferred_location_id is None
            or patient.preferred_location_id in self.location_ids
            or self.user.pk in (patient.prescriber_id, patient.therapist_id)
        )

    def grants(self) -> QuerySet:
        """The member's active emergency-access grants in this clinic."""
        return EmergencyAccess.objects.filter(
            clinic=self.clinic, user=self.user, expires_at__gt=_now()
        )

    def access(self, patient) -> tuple[str | None, EmergencyAccess | None]:
        """("normal"|"emergency"|None, the active grant) for one patient."""
        if not self.can_view:
            return None, None
        if self.allows(patient):
            return "normal", None
        grant = self.grants().filter(patient=patient).order_by("-expires_at").first()
        return ("emergency", grant) if grant else (None, None)

    # ------------------------------------------------------------------ lists

    def normal_q(self, path: str = "patient") -> Q:
        """``allows`` as a filter on a queryset whose patient is reached through ``path``
        ("" for Patient itself, "patient" for a record with a patient key,
        "session__patient" for one reached through its session)."""
        prefix = f"{path}__" if path else ""
        q = (
            Q(**{f"{prefix}preferred_location__isnull": True})
            | Q(**{f"{prefix}preferred_location__in": sorted(self.location_ids)})
            | Q(**{f"{prefix}prescriber_id": self.user.pk})
            | Q(**{f"{prefix}therapist_id": self.user.pk})
        )
        return q

    def visible(self, qs: QuerySet, path: str = "patient") -> QuerySet:
        """``qs`` narrowed to records whose patient the member may open: normal scope or an
        active emergency grant (the same answer as ``access`` gives record by record)."""
        if not self.can_view:
            return qs.none()
        if not self.location_ids:
            return qs
        granted = self.grants().values("patient_id")
        patient_key = f"{path}_id__in" if path else "pk__in"
        return qs.filter(self.normal_q(path) | Q(**{patient_key: granted}))

    def emergency_patient_ids(self, patient_ids) -> set[int]:
        """Of ``patient_ids``, those the member sees only through an emergency grant."""
        ids = {int(i) for i in patient_ids if i is not None}
        if not ids or not self.can_view or not self.location_ids:
            return set()
        granted = set(self.grants().filter(patient_id__in=ids).values_list("patient_id", flat=True))
        if not granted:
            return set()
        return set(
            Patient.objects.filter(pk__in=granted)
            .exclude(self.normal_q(""))
            .values_list("pk", flat=True)
        )


def chart_scope(user, clinic) -> ChartScope:
    return ChartScope(user, clinic)


def visible(qs: QuerySet, user, clinic, path: str = "patient") -> QuerySet:
    """Shorthand: ``qs`` filtered by ``user``'s chart scope in ``clinic``."""
    return ChartScope(user, clinic).visible(qs, path)
