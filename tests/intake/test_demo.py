"""The demo clinic shows requests in every status and patients at every step of the flow."""

from ketaflow.intake import selectors
from ketaflow.intake.models import (
    Assessment,
    ConsentSignature,
    ConsultationRequest,
    EligibilityDecision,
)
from ketaflow.tenancy.models import Clinic
from ketaflow.web import demo


def _snapshot(clinic):
    return (
        ConsultationRequest.objects.for_clinic(clinic).count(),
        Assessment.objects.for_clinic(clinic).count(),
        EligibilityDecision.objects.for_clinic(clinic).count(),
        ConsentSignature.objects.for_clinic(clinic).count(),
    )


def test_demo_covers_every_status_and_step_and_is_idempotent(db):
    demo.seed()
    clinic = Clinic.objects.get(slug="demo")
    counts = selectors.request_status_counts(clinic)
    assert all(counts[status] >= 1 for status in ConsultationRequest.Status.values), counts
    assessments = Assessment.objects.for_clinic(clinic)
    assert (
        assessments.filter(status="draft").exists() and assessments.filter(status="signed").exists()
    )
    decisions = set(
        EligibilityDecision.objects.for_clinic(clinic).values_list("decision", flat=True)
    )
    assert decisions == {"approve", "decline", "defer"}
    signatures = ConsentSignature.objects.for_clinic(clinic)
    assert signatures.filter(withdrawn_at__isnull=True).exists()
    assert signatures.filter(withdrawn_at__isnull=False).exists()
    # Active patients ready for a plan: approved route with a consent in force.
    ready = [
        s.patient
        for s in signatures.filter(withdrawn_at__isnull=True).select_related("patient")
        if s.route in selectors.approved_routes(s.patient)
    ]
    assert len(ready) >= 3 and all(p.status == "active" for p in ready)
    before = _snapshot(clinic)
    demo.seed()
    assert _snapshot(clinic) == before
