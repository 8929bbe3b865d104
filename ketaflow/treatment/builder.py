"""Walk a session through its states with realistic synthetic charting, through the services
only. Used by the demo seed and by tests; every value is synthetic."""

import datetime

from ketaflow.clinical import dosing
from ketaflow.treatment import services
from ketaflow.treatment.models import TreatmentSession

S = TreatmentSession.State
ORDER = [
    S.CHECKED_IN,
    S.PRE_ASSESSMENT,
    S.DOSING,
    S.MONITORING,
    S.RECOVERY,
    S.READY,
    S.DISCHARGED,
    S.SIGNED,
]
CADSS_NONE = {str(i): 0 for i in range(1, 24)}
CADSS_SOME = {**CADSS_NONE, "1": 2, "2": 1, "5": 1}


def _vitals(session, nurse, at, sys_, dia, hr, spo2=98, rr=14):
    return services.record_vitals(
        session=session,
        actor=nurse,
        values={
            "systolic": sys_,
            "diastolic": dia,
            "heart_rate": hr,
            "spo2": spo2,
            "resp_rate": rr,
        },
        at=at,
    )


# Synthetic product records per route (test and demo data only).
PRODUCTS = {
    dosing.ESKETAMINE: ("Spravato 28 mg device", "28 mg/device"),
    dosing.ORAL: ("Ketamine oral/sublingual (compounded)", "as labelled by the pharmacy"),
    dosing.IV: ("Ketamine hydrochloride injection", "10 mg/mL"),
}


def build(appointment, *, to: str, nurse, prescriber, dose_start=None, high_reading=False):
    """A session opened from ``appointment`` and charted up to state ``to`` (one of ORDER, or
    "cancelled"). ``dose_start`` defaults to a time that makes the state plausible now."""
    now = services.now()
    if to == S.CHECKED_IN:
        return services.open_session(appointment=appointment, actor=nurse)
    version = appointment.plan.current if appointment.plan_id else None
    esk = (version.route if version else appointment.type.route) == dosing.ESKETAMINE
    target = ORDER.index(to) if to in ORDER else 1
    if dose_start is None:
        minutes = {2: 15, 3: 45 if not esk else 50, 4: 75, 5: 130, 6: 135, 7: 140}.get(target, 20)
        if esk and target >= 4:
            minutes = max(minutes, 128)
        if esk and target == 2:
            minutes = 3
        dose_start = now - datetime.timedelta(minutes=minutes)
    # Checked in before the baseline reading (a reading cannot be timed before the check-in).
    with services.charted_as_of(min(now, dose_start - datetime.timedelta(minutes=10))):
        s = services.open_session(appointment=appointment, actor=nurse)
    services.save_pre_assessment(
        session=s,
        actor=nurse,
        data={
            "food_hours": "3",
            "liquid_minutes": "45",
            "ride_home": "yes",
            "pregnancy": "not applicable",
            "weight_kg": str(s.plan_version.weight_kg or 80) if s.plan_version else "80",
            "medication_changes": "",
            "new_symptoms": "",
        },
    )
    _vitals(s, nurse, min(dose_start - datetime.timedelta(minutes=8), now), 124, 78, 72)
    services.record_measure(
        session=s, actor=nurse, instrument="moaas", answers={"1": 5}, timing="pre"
    )
    if to == "cancelled":
        return services.cancel_session(
            session=s, actor=nurse, reason="Patient unwell with a fever today (synthetic)"
        )
    if to == S.PRE_ASSESSMENT:
        return s
    services.start_dosing(
        session=s,
        actor=nurse,
        data={
            "product": PRODUCTS.get(s.route, PRODUCTS[dosing.IV])[0],
            "concentration": PRODUCTS.get(s.route, PRODUCTS[dosing.IV])[1],
            "lot_number": "SYN-LOT-4471",
            "expiry": (now + datetime.timedelta(days=300)).date(),
            "at": dose_start,
        },
    )
    s.refresh_from_db()
    devices = int(s.calculation.get("devices") or 1) if esk else 0
    for n in range(2, devices + 1):
        at = dose_start + datetime.timedelta(minutes=5 * (n - 1))
        if at <= now:
            s.refresh_from_db()
            services.record_dose_event(session=s, actor=nurse, kind="device", at=at)
    infusion = int(s.calculation.get("minutes") or 40)
    step = 10
    t = dose_start + datetime.timedelta(minutes=step)
    readings = [(132, 82, 80), (138, 86, 84), (141, 88, 86), (136, 84, 82)]
    i = 0
    end = dose_start + datetime.timedelta(minutes=infusion if not esk else 40)
    while t <= min(now, end):
        sys_, dia, hr = readings[i % len(readings)]
        _vitals(s, nurse, t, sys_, dia, hr)
        i += 1
        t += datetime.timedelta(minutes=step)
    if high_reading:
        at = min(now, t - datetime.timedelta(minutes=step) + datetime.timedelta(minutes=2))
        _vitals(s, nurse, at - datetime.timedelta(minutes=1), 186, 104, 96)
        _vitals(s, nurse, at, 188, 106, 98)
    if to == S.DOSING:
        return s
    if s.route == dosing.IV and end <= now:
        s.refresh_from_db()
        services.record_dose_event(session=s, actor=nurse, kind="stop", at=end)
    elif s.route == dosing.IV:
        s.refresh_from_db()
        services.record_dose_event(session=s, actor=nurse, kind="stop", at=now)
    services.record_measure(
        session=s,
        actor=nurse,
        instrument="cadss",
        answers=CADSS_SOME,
        timing="post",
    )
    t = max(end, dose_start) + datetime.timedelta(minutes=15)
    while t <= now - datetime.timedelta(minutes=1):
        _vitals(s, nurse, t, 128, 80, 76)
        t += datetime.timedelta(minutes=15)
    _vitals(s, nurse, now - datetime.timedelta(minutes=1), 126, 79, 74)
    s.refresh_from_db()
    if to == S.MONITORING:
        return s
    services.record_measure(
        session=s, actor=nurse, instrument="moaas", answers={"1": 5}, timing="post"
    )
    ready_flags = to != S.RECOVERY
    services.assess_recovery(
        session=s,
        actor=nurse,
        walks_steadily=ready_flags,
        responsible_adult=ready_flags,
        ready_without_rule_at=dose_start + datetime.timedelta(minutes=75) if esk else None,
    )
    s.refresh_from_db()
    if to in (S.RECOVERY, S.READY):
        return s
    services.discharge(session=s, actor=nurse)
    s.refresh_from_db()
    if to == S.DISCHARGED:
        return s
    services.sign_note(
        session=s, actor=nurse, free_text="Tolerated well; mild dissociation resolved (synthetic)."
    )
    services.cosign_note(session=s, actor=prescriber)
    s.refresh_from_db()
    return s
