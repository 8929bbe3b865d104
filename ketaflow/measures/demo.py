"""Demo part of the measures app: realistic PHQ-9 / GAD-7 histories for the active patients
(responders, partial responders, non-responders, one remitter), treatment markers, exactly
one open suicidality alert with its risk flag, and one pending patient link. Idempotent.

Every score is produced by ``ketaflow.clinical.instruments.score`` from generated item
answers, so totals, bands and flags are the package's own.
"""

import datetime
import random

from django.db import transaction

from ketaflow.accounts.roles import NURSE, PRESCRIBER
from ketaflow.clinical import instruments
from ketaflow.measures import services
from ketaflow.measures.models import Administration, PatientLink, SafetyAlert, TreatmentEvent
from ketaflow.patients.models import Patient

PROFILES = ("responder", "partial", "non_responder", "responder", "remitter", "relapse")


def _answers_for(code: str, total: int, rng: random.Random, *, item9: int = 0) -> dict:
    inst = instruments.get(code)
    keys = [it.key for it in inst.scored_items if not (code == "phq9" and it.key == "9")]
    answers = dict.fromkeys(keys, 0)
    remaining = max(0, min(total - item9, 3 * len(keys)))
    while remaining:
        key = rng.choice([k for k in keys if answers[k] < 3])
        answers[key] += 1
        remaining -= 1
    if code == "phq9":
        answers["9"] = item9
    answers["difficulty"] = min(3, total // 7)
    return answers


def _trajectory(
    profile: str, baseline: int, weeks: int, rng: random.Random, *, rapid: bool = False
) -> list[int]:
    goal = {
        "responder": 0.35,
        "remitter": 0.12,
        "partial": 0.62,
        "non_responder": 0.92,
        "relapse": 0.3,
    }[profile]
    out = []
    for w in range(1, weeks + 1):
        frac = 1 - (1 - goal) * min(1.0, (w + 2) / 4 if rapid else w / 4)
        if profile == "relapse" and w > weeks - 3:
            frac = 0.75 + 0.05 * (w - (weeks - 3))
        value = round(baseline * frac + rng.uniform(-1.5, 1.5))
        if profile == "remitter" and w >= 4:
            value = min(value, 4)
        out.append(max(0, min(27, value)))
    return out


def _add(rows, *, clinic, patient, code, answers, at, source, entered_by):
    result = instruments.score(code, answers)
    inst = instruments.get(code)
    rows.append(
        Administration(
            clinic=clinic,
            patient=patient,
            instrument=code,
            instrument_version=inst.version,
            answers=dict(result.items),
            total=result.total,
            severity=result.severity or "",
            risk=result.risk or "",
            flags=list(result.flags),
            subscores=dict(result.subscores),
            source=source,
            entered_by=entered_by,
            taken_at=at,
            course_label="Induction course 1",
        )
    )


@transaction.atomic
def seed(*, clinic, staff, rng: random.Random) -> None:
    nurse = staff.get(NURSE) or staff.get(PRESCRIBER)
    prescriber = staff.get(PRESCRIBER) or nurse
    active = list(
        Patient.objects.for_clinic(clinic).filter(status=Patient.Status.ACTIVE).order_by("mrn")
    )
    if not active or nurse is None:
        return
    tz = clinic.tz
    today = datetime.datetime.now(tz).replace(hour=9, minute=30, second=0, microsecond=0)
    base_seed = rng.randrange(1 << 30)

    if not Administration.objects.for_clinic(clinic).exists():
        rows, events = [], []
        for index, patient in enumerate(active):
            prng = random.Random(f"{base_seed}:{patient.mrn}")
            profile = PROFILES[index % len(PROFILES)] if index != 4 else "remitter"
            if index > 4 and profile == "remitter":
                profile = "responder"
            weeks = prng.randint(6, 12)
            first = today - datetime.timedelta(weeks=weeks, hours=prng.randint(0, 4))
            # Induction: 6 treatments over about 3 weeks, then every 3 weeks.
            times = [first + datetime.timedelta(days=d) for d in (0, 2, 5, 8, 12, 16)]
            t = times[-1] + datetime.timedelta(days=21)
            while t < today:
                times.append(t)
                t += datetime.timedelta(days=21)
            events += [
                TreatmentEvent(
                    clinic=clinic,
                    patient=patient,
                    at=at,
                    kind="treatment",
                    label=f"Treatment {n} (demo marker)",
                )
                for n, at in enumerate(times, start=1)
            ]
            phq_base = prng.randint(16, 24)
            gad_base = prng.randint(10, 18)
            screen = first - datetime.timedelta(days=14)
            pre = first - datetime.timedelta(hours=2)
            for at, total_p, total_g in (
                (screen, min(27, phq_base + prng.randint(-1, 2)), gad_base),
                (pre, phq_base, gad_base),
            ):
                _add(
                    rows,
                    clinic=clinic,
                    patient=patient,
                    code="phq9",
                    answers=_answers_for("phq9", total_p, prng),
                    at=at,
                    source=Administration.Source.CLINICIAN,
                    entered_by=nurse,
                )
                _add(
                    rows,
                    clinic=clinic,
                    patient=patient,
                    code="gad7",
                    answers=_answers_for("gad7", total_g, prng),
                    at=at,
                    source=Administration.Source.CLINICIAN,
                    entered_by=nurse,
                )
            rapid = profile in ("responder", "remitter") and index % 4 == 0
            if rapid:
                # A rapid responder: a score 20 hours after the first treatment.
                _add(
                    rows,
                    clinic=clinic,
                    patient=patient,
                    code="phq9",
                    answers=_answers_for("phq9", phq_base // 2 - 1, prng),
                    at=first + datetime.timedelta(hours=20),
                    source=Administration.Source.SELF_REPORT,
                    entered_by=None,
                )
            phq = _trajectory(profile, phq_base, weeks - 1, prng, rapid=rapid)
            gad = _trajectory(profile, gad_base, weeks - 1, prng, rapid=rapid)
            for w, (p, g) in enumerate(zip(phq, gad, strict=True), start=1):
                at = first + datetime.timedelta(weeks=w, hours=prng.randint(-30, 0))
                _add(
                    rows,
                    clinic=clinic,
                    patient=patient,
                    code="phq9",
                    answers=_answers_for("phq9", p, prng),
                    at=at,
                    source=Administration.Source.SELF_REPORT,
                    entered_by=None,
                )
                _add(
                    rows,
                    clinic=clinic,
                    patient=patient,
                    code="gad7",
                    answers=_answers_for("gad7", min(21, g), prng),
                    at=at,
                    source=Administration.Source.SELF_REPORT,
                    entered_by=None,
                )
        Administration.objects.bulk_create(rows, batch_size=1000)
        TreatmentEvent.objects.bulk_create(events, batch_size=1000)

    # Exactly one open suicidality alert: a non-responder's self-report, item 9 = 1.
    if not SafetyAlert.objects.for_clinic(clinic).exists():
        patient = active[min(2, len(active) - 1)]
        prng = random.Random(f"{base_seed}:alert")
        link, _raw = services._new_link(patient=patient, codes=["phq9"], created_by=prescriber)
        link.partial = {"phq9": _answers_for("phq9", 19, prng, item9=1)}
        link.save(update_fields=["partial"])
        services.submit_link(link=link)

    # One pending link (its token was shown once, at creation; clinicians can make a new one).
    if not PatientLink.objects.for_clinic(clinic).filter(submitted_at__isnull=True).exists():
        patient = active[min(1, len(active) - 1)]
        services.create_link(patient=patient, actor=nurse, instruments=["phq9", "gad7"])
