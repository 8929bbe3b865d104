"""The intake part of the synthetic demo: requests in every status and patients at every step.

Idempotent: each step is created only when its marker is missing.
"""

import datetime

from ketaflow.accounts.roles import FRONT_DESK, NURSE, OWNER, PRESCRIBER
from ketaflow.intake import selectors, services
from ketaflow.intake.models import ConsultationRequest
from ketaflow.patients.models import Patient

REQUESTS = [
    # (given, status, seeking, tried, helped, flags, phq9 item 9)
    ("Rowan", "new", ["depression"], 3, "no", {}, 0),
    ("Ellis", "new", ["depression", "anxiety"], 1, "unsure", {"heart_bp": "yes"}, 1),
    ("Marlow", "new", ["anxiety"], 0, "", {}, None),
    ("Sawyer", "contacted", ["depression"], 2, "no", {}, 0),
    ("Lennon", "booked", ["bipolar_depression"], 4, "no", {"psychosis_mania": "yes"}, 0),
    ("Hollis", "declined", ["other"], 0, "", {"substance_use": "yes"}, None),
    ("Reese", "converted", ["depression"], 2, "no", {}, 0),
]

GOOD_TRIALS = [
    {
        "drug": "sertraline",
        "dose": "150 mg",
        "weeks": 8.0,
        "adequate_dose": True,
        "current_episode": True,
        "outcome": "no_response",
    },
    {
        "drug": "venlafaxine",
        "dose": "225 mg",
        "weeks": 10.0,
        "adequate_dose": True,
        "current_episode": True,
        "outcome": "partial_response",
    },
]
BASE = {
    "episode_start": datetime.date(2025, 3, 1),
    "history_psychosis": False,
    "history_mania": False,
    "suicide_attempts": 0,
    "hospitalisations": 0,
    "psychotherapy": "CBT, 16 sessions (synthetic)",
    "conditions": [],
    "allergies": "None known",
    "systolic": 124,
    "diastolic": 78,
    "heart_rate": 72,
    "weight_kg": 72,
    "height_cm": 172,
}
DIAGNOSES = [
    {
        "code": "F33.2",
        "description": "Major depressive disorder, recurrent, severe without psychotic features",
    }
]


def _request_data(clinic, index, spec):
    given, _status, seeking, tried, helped, flags, item9 = spec
    phq9 = None
    answers = None
    if item9 is not None:
        from ketaflow.clinical import instruments

        answers = {str(k): 2 for k in range(1, 9)} | {"9": item9, "difficulty": 2}
        phq9 = instruments.score("phq9", answers)
    location = clinic.locations.order_by("name").first()
    return {
        "given_name": given,
        "family_name": "Request-Synth",
        "date_of_birth": datetime.date(1975 + index, 1 + index, 10),
        "email": f"{given.lower()}.request@example.test",
        "phone": f"555-03{index:02d}",
        "preferred_location": location,
        "contact_time": "morning",
        "seeking": seeking,
        "seeking_other": "Chronic pain (synthetic)" if "other" in seeking else "",
        "diagnosed_depression": "yes"
        if "depression" in seeking or "bipolar_depression" in seeking
        else "no",
        "antidepressants_tried": tried,
        "antidepressant_helped": helped,
        "antidepressant_intolerance": "no",
        "therapy_tried": "yes",
        "referred": "no",
        "referrer": "",
        "pregnant": "no",
        "heart_bp": "no",
        "psychosis_mania": "no",
        "substance_use": "no",
        **flags,
        "message": "Synthetic demo request.",
        "consent_to_contact": True,
        "phq9": phq9,
        "phq9_answers": answers,
    }


def _seed_requests(clinic, staff, patients):
    desk = staff.get(FRONT_DESK) or staff.get(OWNER)
    existing = set(
        ConsultationRequest.objects.for_clinic(clinic)
        .filter(family_name="Request-Synth")
        .values_list("given_name", flat=True)
    )
    for index, spec in enumerate(REQUESTS):
        given, status = spec[0], spec[1]
        if given in existing:
            continue
        item = services.submit_request(clinic=clinic, data=_request_data(clinic, index, spec))
        if status in ("contacted", "booked", "declined"):
            services.set_request_status(
                item=item,
                actor=desk,
                status=status,
                decline_reason="Seeking treatment for chronic pain; referred back to the family doctor."
                if status == "declined"
                else "",
            )
        elif status == "converted":
            services.convert_request(item=item, actor=desk)


def _assess(patient, staff, *, sign, trials=GOOD_TRIALS, extra=None, meds=()):
    if selectors.latest_assessment(patient) is not None:
        return selectors.latest_assessment(patient)
    editor = staff.get(NURSE) or staff[PRESCRIBER]
    assessment = services.save_assessment(
        patient=patient,
        actor=editor,
        fields={**BASE, **(extra or {})},
        diagnoses=DIAGNOSES,
        trials=trials,
        medications=list(meds),
    )
    if sign:
        assessment = services.sign_assessment(assessment=assessment, actor=staff[PRESCRIBER])
    return assessment


def _decide(patient, staff, decision, **kwargs):
    if selectors.current_decision(patient) is None:
        services.record_decision(
            patient=patient, actor=staff[PRESCRIBER], decision=decision, **kwargs
        )


def _consent(patient, staff, route, *, withdraw=False):
    if not selectors.signatures(patient).filter(route=route).exists():
        collector = staff.get(FRONT_DESK) or staff.get(NURSE) or staff[PRESCRIBER]
        signature = services.sign_consent(
            patient=patient,
            actor=collector,
            route=route,
            typed_name=patient.legal_name,
            agreed=True,
            client_address="192.0.2.10",
            user_agent="demo tablet (synthetic)",
        )
        if withdraw:
            services.withdraw_consent(
                signature=signature,
                actor=collector,
                reason="Patient decided to continue with psychotherapy only for now.",
            )


# Indices (among active and paused patients, by MRN) whose plan repeats a phase shown by another.
WITHDRAWN_CONSENT = 7
AWAITING_CONSENT = 10
FALLBACK_ROUTES = ["iv-ketamine", "esketamine-nasal", "im-ketamine", "iv-ketamine", "oral-ketamine"]


def planned_route(index: int) -> str:
    """The route of the protocol the plans demo assigns to the index-th active/paused patient."""
    from django.apps import apps

    if apps.is_installed("ketaflow.plans"):
        from ketaflow.clinical import protocols
        from ketaflow.plans.demo import MIX

        return protocols.get(MIX[index % len(MIX)][0]).route
    return FALLBACK_ROUTES[index % len(FALLBACK_ROUTES)]


def seed(*, clinic, staff, rng) -> None:
    if PRESCRIBER not in staff:
        return
    services.ensure_default_documents(clinic=clinic)
    patients = Patient.objects.for_clinic(clinic).order_by("mrn")
    prospective = list(patients.filter(status="prospective"))
    _seed_requests(clinic, staff, patients)
    steps = []
    if prospective:
        steps.append(lambda: _assess(prospective[0], staff, sign=False))
    if len(prospective) > 1:
        steps.append(lambda: _assess(prospective[1], staff, sign=True))
    if len(prospective) > 2:

        def declined():
            _assess(
                prospective[2],
                staff,
                sign=True,
                extra={"conditions": ["aneurysmal_vascular_disease"]},
            )
            _decide(
                prospective[2],
                staff,
                "decline",
                reason="Aneurysmal vascular disease: absolute contraindication on every route.",
            )

        steps.append(declined)
    if len(prospective) > 3:

        def deferred():
            _assess(
                prospective[3],
                staff,
                sign=True,
                trials=GOOD_TRIALS[:1],
                extra={"systolic": 152, "diastolic": 94},
            )
            _decide(
                prospective[3],
                staff,
                "defer",
                reason="Repeat blood pressure and confirm a second antidepressant trial.",
            )

        steps.append(deferred)
    # Every active patient is assessed, approved and consented for the route of the protocol the
    # plans demo gives them, so their plans can start; two deliberate gaps show the gate at work.
    for index, patient in enumerate(patients.filter(status__in=["active", "paused"])):
        if patient.status != "active":
            continue
        route = planned_route(index)

        def approved(patient=patient, route=route, index=index):
            benzodiazepine = index == 1
            meds = (
                [{"name": "lorazepam", "dose": "0.5 mg at night", "med_class": "benzodiazepine"}]
                if benzodiazepine
                else []
            )
            _assess(patient, staff, sign=True, meds=meds)
            _decide(
                patient,
                staff,
                "approve",
                routes=[route],
                justification="Low-dose benzodiazepine at night only; hold it on treatment days."
                if benzodiazepine
                else "",
            )
            if index != AWAITING_CONSENT:
                _consent(patient, staff, route, withdraw=index == WITHDRAWN_CONSENT)

        steps.append(approved)
    for step in steps:
        step()
