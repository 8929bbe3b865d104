"""Demo plans: one per active or paused demo patient, across the protocol library.

Activation needs an approved eligibility decision and signed consent (the intake app). Plans are
activated, and moved to their demo phase, only where ``gates.check`` passes; otherwise they stay
signed drafts. Running the seed again after the intake app has seeded approvals activates them.
Idempotent: a patient with a plan gets no second one.
"""

import datetime
from decimal import Decimal

from ketaflow.accounts.roles import PRESCRIBER
from ketaflow.patients.models import Patient
from ketaflow.plans import gates, selectors, services
from ketaflow.plans.models import TreatmentPlan

# (protocol, dose for the form or None for the planned dose, phase to reach, outcome)
MIX = [
    ("iv-ketamine-clinic-6", None, "induction", ""),
    ("esketamine-trd", None, "induction", ""),
    (
        "esketamine-trd",
        None,
        "maintenance-weeks-5-8",
        "PHQ-9 fell from 19 to 9 by week 4 (synthetic)",
    ),
    (
        "iv-ketamine-clinic-6",
        None,
        "boosters",
        "PHQ-9 fell from 22 to 7 after 6 infusions (synthetic)",
    ),
    ("sc-ketamine-kads", None, "induction", ""),
    ("esketamine-trd", None, "maintenance-week-9-on", "Response kept through week 8 (synthetic)"),
    ("iv-ketamine-clinic-taper", None, "maintenance", "PHQ-9 response after the taper (synthetic)"),
    ("iv-ketamine-cusin-2017-step-up", None, "induction", ""),
    ("im-ketamine", None, "course", ""),
    ("kap-sublingual-series", Decimal("2.0"), "dosing-sessions", ""),
    ("iv-ketamine-murrough-2013", None, "induction", ""),
]


def _advance(plan, prescriber, target, outcome):
    if gates.check(plan.patient, plan.current.route).ok and plan.status == "draft":
        services.change_status(plan=plan, actor=prescriber, status="active")
        plan.refresh_from_db()
    if plan.status != "active" or plan.phase == target or not outcome:
        return
    codes = [p.code for p in selectors.protocol_of(plan.current).phases]
    for code in codes[codes.index(plan.phase) + 1 : codes.index(target) + 1]:
        services.transition_phase(plan=plan, actor=prescriber, to_phase=code, outcome=outcome)
        plan.refresh_from_db()


def seed(*, clinic, staff, rng):
    prescriber = staff.get(PRESCRIBER)
    if prescriber is None:
        return
    today = clinic.today()
    patients = (
        Patient.objects.for_clinic(clinic).filter(status__in=["active", "paused"]).order_by("mrn")
    )
    existing = {
        p.patient_id: p
        for p in TreatmentPlan.objects.for_clinic(clinic).select_related("current", "patient")
    }
    for index, patient in enumerate(patients):
        code, dose, target, outcome = MIX[index % len(MIX)]
        plan = existing.get(patient.pk)
        if plan is None:
            weight = Decimal(rng.randrange(550, 1100)) / 10
            data = {
                "protocol": code,
                "prescriber": prescriber.pk,
                "weight_kg": str(weight),
                "dose_value": "" if dose is None else str(dose),
                "start_date": (today - datetime.timedelta(days=7 * (index % 5))).isoformat(),
                "goals": "Response (50% fall in PHQ-9) and remission (PHQ-9 below 5). Synthetic.",
                "step": "1",
            }
            plan = services.create_plan(patient=patient, actor=prescriber, data=data)
        if patient.status == "active":
            _advance(plan, prescriber, target, outcome)
