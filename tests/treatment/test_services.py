import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from ketaflow.audit.models import AuditEvent
from ketaflow.patients.scope import ChartScope
from ketaflow.scheduling.models import Appointment
from ketaflow.testing.concurrency import at_once
from ketaflow.treatment import selectors, services
from ketaflow.treatment.models import (
    RemsForm,
    SessionAlert,
    StateChange,
    TreatmentSession,
    TreatmentSettings,
    VitalSign,
)

S = TreatmentSession.State
UTC = datetime.UTC


def ago(minutes):
    return datetime.datetime.now(UTC) - datetime.timedelta(minutes=minutes)


def vit(s, actor, minutes_ago=0, **values):
    return services.record_vitals(session=s, actor=actor, values=values, at=ago(minutes_ago))


def PRE(**extra):
    return {
        "food_hours": "3",
        "liquid_minutes": "40",
        "ride_home": "on",
        "pregnancy": "not pregnant",
        "weight_kg": "80",
        **extra,
    }


# ---------------------------------------------------------------------------- opening, states


def test_open_session_from_appointment_audited_once(appt, staff):
    a = appt()
    before = AuditEvent.objects.count()
    s = services.open_session(appointment=a, actor=staff["nurse"])
    assert s.state == S.CHECKED_IN and s.route == "iv-ketamine" and s.chair_id == a.chair_id
    assert AuditEvent.objects.count() == before + 1
    assert StateChange.objects.filter(session=s, to_state=S.CHECKED_IN).count() == 1
    with pytest.raises(ValidationError, match="already has a session"):
        services.open_session(appointment=a, actor=staff["nurse"])
    with pytest.raises(PermissionDenied):
        services.open_session(appointment=appt(), actor=staff["front_desk"])


def test_every_state_change_is_timestamped(build):
    s = build("signed")
    changes = list(StateChange.objects.filter(session=s).values_list("to_state", flat=True))
    assert changes == [
        "checked_in",
        "pre_assessment",
        "dosing",
        "monitoring",
        "recovery",
        "ready",
        "discharged",
        "signed",
    ]
    assert all(c.at for c in StateChange.objects.filter(session=s))


def test_state_machine_refuses_skipping(build, staff):
    s = build("checked_in")
    with pytest.raises(ValidationError, match="not ready for discharge"):
        services.discharge(session=s, actor=staff["nurse"])
    with pytest.raises(ValidationError):
        services.stop_early(session=s, actor=staff["nurse"], reason="not dosed yet at all")
    with pytest.raises(ValidationError, match="reason"):
        services.cancel_session(session=s, actor=staff["nurse"], reason="")
    services.cancel_session(session=s, actor=staff["nurse"], reason="Fever today (synthetic)")
    s.refresh_from_db()
    assert s.state == S.CANCELLED and s.state_reason.startswith("Fever")


def test_stop_early_with_reason_then_note(build, staff):
    s = build("dosing")
    services.stop_early(session=s, actor=staff["nurse"], reason="Patient asked to stop (synthetic)")
    s.refresh_from_db()
    assert s.state == S.STOPPED and s.dose_ended_at is not None
    # the infusion ran about 15 of 40 minutes: the rest must be wasted before signing
    unused = s.administration.unused_mg
    assert unused > 0
    with pytest.raises(ValidationError, match="as waste"):
        services.sign_note(session=s, actor=staff["nurse"], free_text="Stopped at request.")
    services.record_waste(
        session=s,
        actor=staff["nurse"],
        amount_mg=unused,
        reason="Infusion stopped early (synthetic)",
        witness=staff["prescriber"],
    )
    services.sign_note(session=s, actor=staff["nurse"], free_text="Stopped at request.")
    s.refresh_from_db()
    assert s.state == S.SIGNED


# ---------------------------------------------------------------------------- pre-assessment


def test_pre_assessment_computes_todays_dose_with_arithmetic(appt, staff):
    s = services.open_session(appointment=appt(), actor=staff["nurse"])
    s = services.save_pre_assessment(session=s, actor=staff["nurse"], data=PRE(weight_kg="90"))
    assert s.state == S.PRE_ASSESSMENT
    assert s.calculation["dose_mg"] == 45
    assert any("90" in line and "0.5" in line for line in s.calculation["arithmetic"])


def test_pre_assessment_field_errors(appt, staff):
    s = services.open_session(appointment=appt(), actor=staff["nurse"])
    with pytest.raises(ValidationError) as exc:
        services.save_pre_assessment(
            session=s, actor=staff["nurse"], data={"food_hours": "x", "pregnancy": "?"}
        )
    assert {"food_hours", "liquid_minutes", "ride_home", "pregnancy", "weight_kg"} <= set(
        exc.value.message_dict
    )


def test_consent_no_longer_valid_blocks(appt, staff, monkeypatch):
    monkeypatch.setattr(services, "consent_valid", lambda session: False)
    s = services.open_session(appointment=appt(), actor=staff["nurse"])
    with pytest.raises(ValidationError, match="consent"):
        services.save_pre_assessment(session=s, actor=staff["nurse"], data=PRE())


def _ready_to_dose(appt, staff, baseline=(124, 78)):
    nurse = staff["nurse"]
    with services.charted_as_of(ago(40)):  # checked in before the baseline and the dose
        s = services.open_session(appointment=appt(), actor=nurse)
    services.save_pre_assessment(session=s, actor=nurse, data=PRE())
    vit(s, nurse, 5, systolic=baseline[0], diastolic=baseline[1], heart_rate=70, spo2=98)
    services.record_measure(
        session=s, actor=nurse, instrument="moaas", answers={"1": 5}, timing="pre"
    )
    s.refresh_from_db()
    return s


DOSE = {
    "product": "Ketamine HCl",
    "concentration": "10 mg/mL",
    "lot_number": "L1",
    "expiry": "2099-01-01",
}


def test_dosing_needs_baseline_and_moaas(appt, staff):
    s = services.open_session(appointment=appt(), actor=staff["nurse"])
    services.save_pre_assessment(session=s, actor=staff["nurse"], data=PRE())
    with pytest.raises(ValidationError) as exc:
        services.start_dosing(session=s, actor=staff["nurse"], data=DOSE)
    msgs = " ".join(exc.value.messages)
    assert "baseline vital signs" in msgs and "pre-dose MOAA/S" in msgs


def test_predose_block_until_prescriber_proceeds(appt, staff):
    s = _ready_to_dose(appt, staff, baseline=(152, 88))
    with pytest.raises(ValidationError, match="above the pre-dose limit 140/90"):
        services.start_dosing(session=s, actor=staff["nurse"], data=DOSE)
    with pytest.raises(PermissionDenied):
        services.decide_proceed(session=s, actor=staff["nurse"], reason="Nurse cannot decide")
    with pytest.raises(ValidationError, match="reason"):
        services.decide_proceed(session=s, actor=staff["prescriber"], reason="")
    services.decide_proceed(
        session=s, actor=staff["prescriber"], reason="Benefit outweighs a short rise (synthetic)"
    )
    services.start_dosing(session=s, actor=staff["nurse"], data=DOSE)
    s.refresh_from_db()
    assert s.state == S.DOSING


def test_predose_limit_is_a_clinic_setting(appt, staff, clinic):
    TreatmentSettings.objects.create(clinic=clinic, predose_systolic_max=160)
    s = _ready_to_dose(appt, staff, baseline=(152, 88))
    services.start_dosing(session=s, actor=staff["nurse"], data=DOSE)


def test_expired_lot_refused(appt, staff):
    s = _ready_to_dose(appt, staff)
    with pytest.raises(ValidationError, match="expired"):
        services.start_dosing(
            session=s, actor=staff["nurse"], data={**DOSE, "expiry": "2020-01-01"}
        )


# ---------------------------------------------------------------------------- administration


def test_rate_changes_pauses_need_reasons_and_order(appt, staff):
    nurse = staff["nurse"]
    s = _ready_to_dose(appt, staff)
    services.start_dosing(session=s, actor=nurse, data={**DOSE, "at": ago(30)})
    with pytest.raises(ValidationError, match="reason"):
        services.record_dose_event(
            session=s, actor=nurse, kind="rate", at=ago(25), rate_mg_per_min="0.5"
        )
    services.record_dose_event(
        session=s, actor=nurse, kind="rate", at=ago(25), rate_mg_per_min="0.5", reason="BP rising"
    )
    services.record_dose_event(session=s, actor=nurse, kind="pause", at=ago(20), reason="Nausea")
    with pytest.raises(ValidationError, match="paused"):
        services.record_dose_event(
            session=s, actor=nurse, kind="rate", at=ago(19), rate_mg_per_min="1", reason="again"
        )
    services.record_dose_event(
        session=s, actor=nurse, kind="resume", at=ago(15), rate_mg_per_min="0.5"
    )
    with pytest.raises(ValidationError, match="Earlier"):
        services.record_dose_event(session=s, actor=nurse, kind="stop", at=ago(16))
    services.record_dose_event(session=s, actor=nurse, kind="stop", at=ago(1))
    s.refresh_from_db()
    assert s.state == S.MONITORING
    assert [e.kind for e in s.dose_events.all()] == ["start", "rate", "pause", "resume", "stop"]


def test_esketamine_devices_5_minutes_apart(appt, staff):
    from ketaflow.treatment import builder

    s = builder.build(
        appt("esk"), to="dosing", nurse=staff["nurse"], prescriber=staff["prescriber"]
    )
    assert s.calculation["devices"] == 2
    first = s.dose_events.get().at
    with pytest.raises(ValidationError, match="5 min apart"):
        services.record_dose_event(
            session=s, actor=staff["nurse"], kind="device", at=first + datetime.timedelta(minutes=2)
        )
    services.record_dose_event(
        session=s, actor=staff["nurse"], kind="device", at=first + datetime.timedelta(minutes=5)
    )
    s.refresh_from_db()
    assert s.state == S.MONITORING


def test_waste_needs_a_different_witness(build, staff, make_user, clinic):
    s = build("monitoring")
    with pytest.raises(ValidationError, match="witness"):
        services.record_waste(
            session=s,
            actor=staff["nurse"],
            amount_mg="5",
            reason="Residual in syringe",
            witness=staff["nurse"],
        )
    with pytest.raises(ValidationError, match="nurse or prescriber"):
        services.record_waste(
            session=s,
            actor=staff["nurse"],
            amount_mg="5",
            reason="Residual in syringe",
            witness=staff["front_desk"],
        )
    w = services.record_waste(
        session=s,
        actor=staff["nurse"],
        amount_mg="5",
        reason="Residual in syringe",
        witness=staff["prescriber"],
    )
    assert w.witness == staff["prescriber"]


def test_side_effects_and_adverse_events(build, staff):
    s = build("monitoring")
    with pytest.raises(ValidationError, match="checklist"):
        services.record_event(
            session=s, actor=staff["nurse"], data={"effect": "sneezing", "severity": "mild"}
        )
    services.record_event(
        session=s,
        actor=staff["nurse"],
        data={"effect": "nausea", "severity": "mild", "intervention": "ondansetron"},
    )
    with pytest.raises(ValidationError, match="outcome"):
        services.record_event(
            session=s,
            actor=staff["nurse"],
            data={"kind": "adverse", "effect": "syncope", "severity": "severe"},
        )
    ev = services.record_event(
        session=s,
        actor=staff["nurse"],
        data={
            "kind": "adverse",
            "effect": "syncope",
            "severity": "severe",
            "serious": "on",
            "outcome": "resolved",
        },
    )
    assert ev.serious


# ---------------------------------------------------------------------------- vitals and alerts


def test_plausibility_rejected_with_message(build, staff):
    s = build("monitoring")
    with pytest.raises(ValidationError) as exc:
        vit(s, staff["nurse"], systolic=400, diastolic=80)
    assert "typing error" in exc.value.message_dict["systolic"][0]
    with pytest.raises(ValidationError, match="future"):
        services.record_vitals(session=s, actor=staff["nurse"], values={"spo2": 97}, at=ago(-10))


def test_high_bp_alerts_at_once_unconfirmed_then_the_recheck_upgrades_it(build, staff):
    s = build("monitoring")
    nurse = staff["nurse"]
    first = vit(s, nurse, 0, systolic=186, diastolic=100)
    [alert] = [a for a in first.raised if a.rule == "bp_high"]
    assert alert.status == SessionAlert.Status.UNCONFIRMED
    assert "unconfirmed: recheck within 5 minutes" in alert.message
    scope = ChartScope(nurse, s.clinic)
    row = selectors.board(s.clinic, scope=scope)[0]
    assert "Recheck blood pressure within 5 min" in row.recheck
    assert row.due.at == first.at + datetime.timedelta(minutes=5)
    second = vit(s, nurse, 0, systolic=188, diastolic=104)
    assert not [a for a in second.raised if a.rule == "bp_high"]  # upgraded, not duplicated
    alert.refresh_from_db()
    assert alert.status == SessionAlert.Status.CONFIRMED and alert.recheck_reading_id == second.pk
    assert "confirmed" in alert.message and alert.is_open
    third = vit(s, nurse, 0, systolic=190, diastolic=104)
    assert not [a for a in third.raised if a.rule == "bp_high"]  # open alert: not duplicated


def test_each_rule_raises_through_the_service(build, staff):
    s = build("monitoring")
    nurse = staff["nurse"]
    assert [a.rule for a in vit(s, nurse, spo2=90).raised] == ["spo2_low"]
    assert [a.rule for a in vit(s, nurse, resp_rate=8).raised] == ["rr_low"]
    [hr] = vit(s, nurse, heart_rate=125).raised
    assert (hr.rule, hr.status) == ("hr_high", SessionAlert.Status.UNCONFIRMED)
    assert vit(s, nurse, heart_rate=128).raised == []
    hr.refresh_from_db()
    assert hr.status == SessionAlert.Status.CONFIRMED
    assert [a.rule for a in vit(s, nurse, systolic=170, diastolic=80).raised] == ["bp_rise"]
    assert [a.rule for a in vit(s, nurse, systolic=85, diastolic=50).raised] == ["sbp_low"]
    assert [a.rule for a in vit(s, nurse, heart_rate=45).raised] == ["hr_low"]
    assert [a.rule for a in vit(s, nurse, resp_rate=32).raised] == ["rr_high"]


def test_baseline_is_the_last_pre_dose_bp(build, staff):
    s = build("monitoring")
    base = VitalSign.objects.get(session=s, is_baseline=True)
    assert (base.systolic, base.diastolic) == (124, 78)


def test_batch_is_all_or_nothing(build, staff):
    s = build("monitoring")
    n = VitalSign.objects.filter(session=s).count()
    with pytest.raises(ValidationError) as exc:
        services.record_vitals_batch(
            session=s,
            actor=staff["nurse"],
            readings=[{"spo2": 97, "at": ago(3)}, {"spo2": 10, "at": ago(2)}],
        )
    assert "readings[1].spo2" in exc.value.message_dict
    assert VitalSign.objects.filter(session=s).count() == n
    before = AuditEvent.objects.count()
    out = services.record_vitals_batch(
        session=s,
        actor=staff["nurse"],
        readings=[{"spo2": 97, "at": ago(3)}, {"spo2": 91, "at": ago(2)}],
    )
    assert len(out) == 2 and [a.rule for a in out[1].raised] == ["spo2_low"]
    assert AuditEvent.objects.count() == before + 1


def test_acknowledge_needs_an_action_and_happens_once(build, staff):
    s = build("monitoring")
    alert = vit(s, staff["nurse"], spo2=89).raised[0]
    with pytest.raises(ValidationError, match="action"):
        services.acknowledge_alert(
            alert_id=alert.pk, clinic=s.clinic, actor=staff["nurse"], action=""
        )
    services.acknowledge_alert(
        alert_id=alert.pk,
        clinic=s.clinic,
        actor=staff["nurse"],
        action="observe",
        note="Repositioned",
    )
    with pytest.raises(services.AlreadyAcknowledged, match="Already acknowledged by"):
        services.acknowledge_alert(
            alert_id=alert.pk, clinic=s.clinic, actor=staff["prescriber"], action="prescriber"
        )
    with pytest.raises(PermissionDenied):
        services.acknowledge_alert(
            alert_id=alert.pk, clinic=s.clinic, actor=staff["front_desk"], action="observe"
        )


def test_escalation_after_clinic_delay(build, staff, mailoutbox, clinic):
    TreatmentSettings.objects.create(clinic=clinic, escalation_minutes=3)
    s = build("monitoring")
    alert = vit(s, staff["nurse"], spo2=89).raised[0]
    assert services.escalate_due() == 0
    later = datetime.datetime.now(UTC) + datetime.timedelta(minutes=4)
    assert services.escalate_due(later) == 1
    alert.refresh_from_db()
    assert alert.escalated_at and alert.escalated_to == [staff["prescriber"].email]
    assert (
        mailoutbox[0].to == [staff["prescriber"].email]
        and "Unacknowledged" in mailoutbox[0].subject
    )
    assert s.patient.legal_family_name not in mailoutbox[0].body
    assert services.escalate_due(later) == 0


@pytest.mark.django_db(transaction=True)
def test_two_nurses_vitals_and_acknowledgements_at_once(build, staff, make_user, clinic):
    s = build("monitoring")
    alert = vit(s, staff["nurse"], spo2=89).raised[0]
    other = make_user(clinic, "nurse")
    n = VitalSign.objects.filter(session=s).count()

    def ack(user):
        return services.acknowledge_alert(
            alert_id=alert.pk, clinic=clinic, actor=user, action="observe"
        )

    results = at_once(
        lambda: vit(s, staff["nurse"], spo2=96),
        lambda: vit(s, other, spo2=97),
        lambda: ack(staff["nurse"]),
        lambda: ack(other),
    )
    assert not any(isinstance(r, Exception) for r in results[:2]), results
    refused = [r for r in results[2:] if isinstance(r, Exception)]
    assert len(refused) == 1 and isinstance(refused[0], services.AlreadyAcknowledged)
    assert " ".join(refused[0].messages).startswith("Already acknowledged by Test User")
    assert VitalSign.objects.filter(session=s).count() == n + 2
    alert.refresh_from_db()
    assert alert.acknowledged_at is not None
    assert AuditEvent.objects.filter(object_type="treatment.sessionalert").count() == 1


# ---------------------------------------------------------------------------- discharge


def test_iv_discharge_criteria_then_discharge_completes_appointment(build, staff):
    # dose ended 40 min ago: past the IV minimum observation (30 min, dosing settings)
    s = build("monitoring", dose_start=ago(80))
    unmet = services.assess_recovery(
        session=s, actor=staff["nurse"], walks_steadily=False, responsible_adult=True
    )
    assert any("MOAA/S" in u for u in unmet) and any("Walking" in u for u in unmet)
    s.refresh_from_db()
    assert s.state == S.RECOVERY
    with pytest.raises(ValidationError):
        services.discharge(session=s, actor=staff["nurse"])
    services.record_measure(
        session=s, actor=staff["nurse"], instrument="moaas", answers={"1": 5}, timing="post"
    )
    assert (
        services.assess_recovery(
            session=s, actor=staff["nurse"], walks_steadily=True, responsible_adult=True
        )
        == []
    )
    s.refresh_from_db()
    assert s.state == S.READY
    services.discharge(session=s, actor=staff["nurse"])
    s.refresh_from_db()
    assert s.state == S.DISCHARGED
    assert Appointment.objects.get(pk=s.appointment_id).status == "completed"


def test_esketamine_discharge_needs_120_minutes(appt, staff):
    from ketaflow.treatment import builder

    s = builder.build(
        appt("esk"),
        to="monitoring",
        nurse=staff["nurse"],
        prescriber=staff["prescriber"],
        dose_start=ago(60),
    )
    services.record_measure(
        session=s, actor=staff["nurse"], instrument="moaas", answers={"1": 5}, timing="post"
    )
    unmet = services.assess_recovery(
        session=s, actor=staff["nurse"], walks_steadily=True, responsible_adult=True
    )
    assert len(unmet) == 1 and "of at least 120 min since the first device" in unmet[0]


def test_open_alert_blocks_discharge_and_prescriber_override(build, staff):
    s = build("recovery")
    vit(s, staff["nurse"], spo2=90)
    services.record_measure(
        session=s, actor=staff["nurse"], instrument="moaas", answers={"1": 5}, timing="post"
    )
    unmet = services.assess_recovery(
        session=s, actor=staff["nurse"], walks_steadily=True, responsible_adult=True
    )
    assert any("not acknowledged" in u for u in unmet)
    with pytest.raises(PermissionDenied):
        services.override_discharge(session=s, actor=staff["nurse"], reason="I want to")
    services.override_discharge(
        session=s, actor=staff["prescriber"], reason="Stable on room air, reviewed (synthetic)"
    )
    services.discharge(session=s, actor=staff["nurse"], email_instructions=False)
    s.refresh_from_db()
    assert s.state == S.DISCHARGED and s.override_by == staff["prescriber"]


def test_instructions_emailed(build, staff, mailoutbox):
    s = build("ready")
    s.patient.email = "patient@example.test"
    s.patient.save()
    services.discharge(session=s, actor=staff["nurse"], email_instructions=True)
    assert (
        mailoutbox[-1].to == ["patient@example.test"]
        and "do not drive" in mailoutbox[-1].body.lower()
    )


# ---------------------------------------------------------------------------- sign, read-only


def test_signed_session_is_read_only_at_the_service(build, staff):
    s = build("signed")
    nurse = staff["nurse"]
    for call in (
        lambda: vit(s, nurse, spo2=97),
        lambda: services.record_event(
            session=s, actor=nurse, data={"effect": "nausea", "severity": "mild"}
        ),
        lambda: services.save_note(session=s, actor=nurse, free_text="changed"),
        lambda: services.sign_note(session=s, actor=nurse, free_text="changed"),
        lambda: services.record_waste(
            session=s, actor=nurse, amount_mg="1", reason="late waste", witness=staff["prescriber"]
        ),
        lambda: services.stop_early(session=s, actor=nurse, reason="too late now"),
    ):
        with pytest.raises(services.SignedRecordError, match="read-only"):
            call()
    note = s.note
    assert note.free_text.startswith("Tolerated") and note.cosigned_by == staff["prescriber"]
    a = services.add_addendum(
        session=s, actor=nurse, text="Patient called: feeling well (synthetic)"
    )
    assert a.signed_at and a.signed_by == nurse


def test_cosign_rules(build, staff):
    s = build("discharged")
    with pytest.raises(ValidationError, match="not been signed"):
        services.cosign_note(session=s, actor=staff["prescriber"])
    services.sign_note(session=s, actor=staff["prescriber"])
    with pytest.raises(ValidationError, match="other than the signer"):
        services.cosign_note(session=s, actor=staff["prescriber"])
    with pytest.raises(PermissionDenied):
        services.cosign_note(session=s, actor=staff["nurse"])


def test_note_is_generated_from_the_record(build):
    s = build("signed", high_reading=False)
    text = s.note.generated
    assert (
        "Dose:" in text and "lot SYN-LOT-4471" in text and "(baseline)" in text and "CADSS" in text
    )


# ---------------------------------------------------------------------------- REMS


def test_rems_form_prefilled_at_discharge_and_signing_blocked_when_missing(appt, staff, rems_extra):
    from ketaflow.treatment import builder

    s = builder.build(
        appt("esk"), to="discharged", nurse=staff["nurse"], prescriber=staff["prescriber"]
    )
    form = s.rems
    assert form.data["dose"] == "56" and form.data["lot_number"] == "SYN-LOT-4471"
    assert int(form.data["total_minutes"]) >= 120
    assert (form.data["bp_before_systolic"], form.data["bp_before_diastolic"]) == (124, 78)
    assert form.data["bp_40_systolic"]
    assert (form.due_by - s.dose_started_at.astimezone(s.clinic.tz).date()).days == 7
    services.save_rems(session=s, actor=staff["nurse"], data=rems_extra)
    services.save_rems(session=s, actor=staff["nurse"], data={"lot_number": ""})
    with pytest.raises(ValidationError, match="Lot number"):
        services.sign_rems(session=s, actor=staff["nurse"])
    services.save_rems(session=s, actor=staff["nurse"], data={"lot_number": "SYN-LOT-4471"})
    signed = services.sign_rems(session=s, actor=staff["nurse"])
    assert signed.signed_at
    with pytest.raises(services.SignedRecordError):
        services.save_rems(session=s, actor=staff["nurse"], data={"lot_number": "X"})


def test_esketamine_stopped_early_after_a_device_still_needs_its_rems_form(build, staff):
    s = build("dosing", route="esk")
    services.stop_early(session=s, actor=staff["nurse"], reason="Vomiting (synthetic)")
    assert RemsForm.objects.get(session=s).signed_at is None
    before = build("pre_assessment", route="esk")
    services.cancel_session(session=before, actor=staff["nurse"], reason="Fever (synthetic)")
    assert not RemsForm.objects.filter(session=before).exists()


# ---------------------------------------------------------------------------- board


def test_board_constant_queries(build, django_assert_num_queries, clinic, staff):
    for to in ("checked_in", "dosing", "monitoring"):
        build(to)
    scope = ChartScope(staff["nurse"], clinic)
    with django_assert_num_queries(4) as ctx:
        rows = selectors.board(clinic, scope=scope)
    assert len(rows) == 3
    for to in ("recovery", "ready", "pre_assessment"):
        build(to)
    with django_assert_num_queries(len(ctx.captured_queries)):
        assert len(selectors.board(clinic, scope=scope)) == 6


def test_tick_command_escalates_through_the_task(build, staff, clinic, mailoutbox):
    from django.core.management import call_command

    TreatmentSettings.objects.create(clinic=clinic, escalation_minutes=0)
    s = build("monitoring")
    alert = vit(s, staff["nurse"], spo2=89).raised[0]
    call_command("treatment_tick")
    alert.refresh_from_db()
    assert alert.escalated_at is not None and len(mailoutbox) == 1


def test_pk_overlay_follows_what_was_given(appt, staff):
    nurse = staff["nurse"]
    s = _ready_to_dose(appt, staff)
    services.start_dosing(session=s, actor=nurse, data={**DOSE, "at": ago(30)})
    s.refresh_from_db()
    plain = selectors.pk_overlay(s, selectors.session_view(s))
    services.record_dose_event(session=s, actor=nurse, kind="pause", at=ago(25), reason="Nausea")
    s.refresh_from_db()
    paused = selectors.pk_overlay(s, selectors.session_view(s))
    assert plain.startswith("<svg") and paused.startswith("<svg") and plain != paused
    assert "pause" in paused


def test_pk_overlay_for_esketamine_needs_no_weight_and_iv_never_guesses_one(build):
    esk = build("monitoring", route="esk")
    assert esk.weight_kg is None  # esketamine doses are not weight-based
    svg = selectors.pk_overlay(esk, selectors.session_view(esk))
    assert svg.startswith("<svg") and "device 1" in svg and "device 2" in svg
    iv = build("monitoring")
    assert selectors.pk_overlay(iv, selectors.session_view(iv)).startswith("<svg")
    iv.weight_kg = None
    assert selectors.pk_overlay(iv, selectors.session_view(iv)) == ""


def test_measures_treatment_timeline_counts_each_dosed_session_once(build, clinic, staff):
    from ketaflow.measures import selectors as measures

    discharged = build("discharged")
    stopped = build("dosing")
    services.stop_early(session=stopped, actor=staff["nurse"], reason="Nausea (synthetic)")
    not_dosed = build("pre_assessment")

    times = measures.treatment_sessions(clinic)
    by_patient = {t.patient_id: t for t in times}
    # The discharged session's visit is also a completed appointment: it counts once, at the
    # recorded start of the dose (a course's baseline is the last score before it).
    assert [t.patient_id for t in times].count(discharged.patient_id) == 1
    assert by_patient[discharged.patient_id].at == discharged.dose_started_at
    assert "stopped early" in by_patient[stopped.patient_id].label
    assert not_dosed.patient_id not in by_patient
    stopped.refresh_from_db()
    assert measures.treatment_times(stopped.patient) == [stopped.dose_started_at]
