"""Services: behaviour, permission and audit, alerts, flags, links, schedules, tasks."""

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command

from ketaflow.audit.models import AuditEvent
from ketaflow.measures import services, tasks
from ketaflow.measures.models import (
    Administration,
    MeasureSchedule,
    MeasuresSettings,
    OnCall,
    PatientLink,
    RiskFlag,
    SafetyAlert,
)

UTC = datetime.UTC


def phq9(total_items=1, item9=0):
    answers = {str(i): total_items for i in range(1, 9)}
    answers["9"] = item9
    return answers


def test_record_administration_stores_score_version_who_and_one_audit_event(
    clinic, staff, patient, make_plan
):
    plan = make_plan(patient)
    before = AuditEvent.objects.count()
    adm = services.record_administration(
        patient=patient,
        actor=staff["nurse"],
        instrument="phq9",
        answers=phq9(2),
        plan=plan.pk,
    )
    adm.refresh_from_db()
    assert (adm.total, adm.severity, adm.instrument_version) == (16, "moderately severe", "1")
    assert adm.answers["1"] == 2 and adm.answers["9"] == 0
    assert adm.entered_by == staff["nurse"] and adm.source == "clinician"
    assert adm.plan == plan and adm.flags == []
    events = AuditEvent.objects.order_by("id")[before:]
    assert [(e.action, e.object_type) for e in events] == [("create", "measures.administration")]
    assert events[0].detail["total"] == 16 and events[0].detail["plan"] == plan.pk
    assert not SafetyAlert.objects.exists()


def test_course_must_be_a_plan_of_this_patient(
    clinic, other_clinic, staff, patient, make_patient, make_plan, make_user
):
    other_patient = make_patient(clinic)
    foreign = make_patient(other_clinic)
    for plan in (make_plan(other_patient).pk, make_plan(foreign).pk, 999999, "x"):
        with pytest.raises(ValidationError) as exc:
            services.record_administration(
                patient=patient, actor=staff["nurse"], instrument="phq9", answers=phq9(1), plan=plan
            )
        assert exc.value.message_dict == {
            "plan": ["Choose a treatment course (plan) of this patient."]
        }
    with pytest.raises(ValidationError) as exc:
        services.create_link(
            patient=patient, actor=staff["nurse"], instruments=["phq9"], plan=make_plan(foreign)
        )
    assert "plan" in exc.value.message_dict
    assert not Administration.objects.exists() and not PatientLink.objects.exists()


def test_link_answers_carry_the_course_and_pcl5_uses_the_clinic_cutoff(
    clinic, staff, patient, make_plan
):
    from ketaflow.measures.models import MeasuresSettings

    MeasuresSettings.objects.create(clinic=clinic, pcl5_ptsd_cutoff=31)
    plan = make_plan(patient)
    link, _raw = services.create_link(
        patient=patient, actor=staff["nurse"], instruments=["phq9", "pcl5"], plan=plan
    )
    link.partial = {"phq9": phq9(1), "pcl5": {str(i): (2 if i <= 11 else 1) for i in range(1, 21)}}
    link.save()
    adms, _alerts = services.submit_link(link=link)
    assert {a.plan_id for a in adms} == {plan.pk}
    pcl5 = next(a for a in adms if a.instrument == "pcl5")
    assert pcl5.total == 31 and "provisional-ptsd" in pcl5.flags
    MeasuresSettings.objects.filter(clinic=clinic).update(pcl5_ptsd_cutoff=33)
    again = services.record_administration(
        patient=patient, actor=staff["nurse"], instrument="pcl5", answers=pcl5.answers
    )
    assert "provisional-ptsd" not in again.flags


def test_clinician_rated_instrument_is_marked_so(staff, patient):
    answers = {str(i): 1 for i in range(1, 11)}
    adm = services.record_administration(
        patient=patient, actor=staff["prescriber"], instrument="madrs", answers=answers
    )
    assert adm.source == "clinician_rated" and adm.total == 10


@pytest.mark.parametrize("role", ["owner", "front_desk"])
def test_recording_needs_measures_record(staff, patient, role):
    with pytest.raises(PermissionDenied):
        services.record_administration(
            patient=patient, actor=staff[role], instrument="phq9", answers=phq9()
        )
    assert not Administration.objects.exists()


def test_refused_answers_name_the_item(staff, patient):
    answers = phq9()
    answers["4"] = 7
    with pytest.raises(ValidationError) as exc:
        services.record_administration(
            patient=patient, actor=staff["nurse"], instrument="phq9", answers=answers
        )
    assert "item_4" in exc.value.message_dict
    del answers["4"]
    with pytest.raises(ValidationError) as exc:
        services.record_administration(
            patient=patient, actor=staff["nurse"], instrument="phq9", answers=answers
        )
    assert "missing" in exc.value.message_dict["item_4"][0]
    assert not Administration.objects.exists()


def test_clinician_entered_item9_raises_alert_flag_and_emails_prescriber_and_on_call(
    clinic, staff, make_user, patient, mailoutbox
):
    patient.prescriber = staff["prescriber"]
    patient.save()
    on_call = make_user(clinic, "nurse")
    OnCall.objects.create(clinic=clinic, user=on_call)
    adm = services.record_administration(
        patient=patient, actor=staff["therapist"], instrument="phq9", answers=phq9(1, item9=1)
    )
    alert = SafetyAlert.objects.get()
    assert (alert.kind, alert.severity, alert.administration) == ("suicidality", "same_day", adm)
    assert "item 9 (" in alert.reason and "answered 1 (Several days)" in alert.reason
    flag = RiskFlag.objects.get()
    assert flag.patient == patient and flag.cleared_at is None and flag.raised_by_alert == alert
    assert len(mailoutbox) == 1
    assert sorted(mailoutbox[0].to) == sorted([staff["prescriber"].email, on_call.email])
    assert patient.mrn in mailoutbox[0].subject
    assert patient.legal_family_name not in mailoutbox[0].body  # no names in email
    alert.refresh_from_db()
    assert sorted(alert.notified) == sorted(mailoutbox[0].to)


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({"1": "no", "2": "no", "6": "no"}, []),  # no yes: no alert
        # low risk (item 1 only) still reaches a clinician, the same day
        ({"1": "yes", "2": "no", "6": "no"}, [("suicidality", "same_day")]),
        (
            {"1": "yes", "2": "yes", "3": "yes", "4": "no", "5": "no", "6": "no"},
            [("suicidality", "urgent")],
        ),
        (
            {"1": "no", "2": "no", "6": "yes", "6b": "yes"},
            [("suicidality", "immediate")],
        ),
    ],
)
def test_cssrs_risk_alerts(staff, patient, answers, expected):
    services.record_administration(
        patient=patient, actor=staff["nurse"], instrument="cssrs", answers=answers
    )
    got = sorted(SafetyAlert.objects.values_list("kind", "severity"))
    assert got == sorted(expected)
    assert RiskFlag.objects.filter(cleared_at__isnull=True).count() == (1 if expected else 0)


def test_second_alert_attaches_to_the_open_flag(staff, patient):
    for _ in range(2):
        services.record_administration(
            patient=patient, actor=staff["nurse"], instrument="phq9", answers=phq9(1, item9=2)
        )
    assert SafetyAlert.objects.count() == 2 and RiskFlag.objects.count() == 1


def _alerted(staff, patient):
    services.record_administration(
        patient=patient, actor=staff["nurse"], instrument="phq9", answers=phq9(1, item9=1)
    )
    return SafetyAlert.objects.get(), RiskFlag.objects.get()


def test_acknowledge_once_then_clear_with_documented_action(clinic, staff, patient):
    alert, flag = _alerted(staff, patient)
    with pytest.raises(ValidationError) as exc:
        services.clear_flag(
            flag_id=flag.pk,
            clinic=clinic,
            actor=staff["prescriber"],
            action="contacted",
            note="Called the patient, safe, plan reviewed",
        )
    assert "Acknowledge" in exc.value.message_dict["flag"][0]
    before = AuditEvent.objects.count()
    services.acknowledge_alert(alert_id=alert.pk, clinic=clinic, actor=staff["prescriber"])
    with pytest.raises(services.AlreadyDone) as exc:
        services.acknowledge_alert(alert_id=alert.pk, clinic=clinic, actor=staff["nurse"])
    assert "Already acknowledged by" in exc.value.messages[0]
    alert.refresh_from_db()
    assert alert.acknowledged_by == staff["prescriber"]
    with pytest.raises(ValidationError) as exc:
        services.clear_flag(
            flag_id=flag.pk, clinic=clinic, actor=staff["prescriber"], action="", note="short"
        )
    assert set(exc.value.message_dict) == {"action", "note"}
    services.clear_flag(
        flag_id=flag.pk,
        clinic=clinic,
        actor=staff["prescriber"],
        action="safety_plan",
        note="Called the patient, safety plan reviewed",
    )
    flag.refresh_from_db()
    assert flag.cleared_by == staff["prescriber"] and flag.clear_action == "safety_plan"
    with pytest.raises(services.AlreadyDone):
        services.clear_flag(
            flag_id=flag.pk,
            clinic=clinic,
            actor=staff["nurse"],
            action="contacted",
            note="Called the patient again today",
        )
    events = list(AuditEvent.objects.order_by("id")[before:])
    assert [(e.action, e.object_type, e.actor) for e in events] == [
        ("update", "measures.safetyalert", staff["prescriber"]),
        ("update", "measures.riskflag", staff["prescriber"]),
    ]


@pytest.mark.parametrize("role", ["owner", "front_desk"])
def test_responding_to_alerts_needs_alerts_respond(clinic, staff, patient, role):
    alert, _flag = _alerted(staff, patient)
    with pytest.raises(PermissionDenied):
        services.acknowledge_alert(alert_id=alert.pk, clinic=clinic, actor=staff[role])


def test_alerts_of_another_clinic_are_not_found(clinic, other_clinic, staff, make_user, patient):
    from django.http import Http404

    alert, _flag = _alerted(staff, patient)
    outsider = make_user(other_clinic, "prescriber")
    with pytest.raises(Http404):
        services.acknowledge_alert(alert_id=alert.pk, clinic=other_clinic, actor=outsider)


def test_escalation_after_clinic_delay(clinic, staff, make_user, patient, mailoutbox):
    MeasuresSettings.objects.create(clinic=clinic, escalation_minutes=30)
    alert, _flag = _alerted(staff, patient)
    mailoutbox.clear()
    assert tasks.escalate_alerts.call() == 0  # too early
    SafetyAlert.objects.filter(pk=alert.pk).update(
        created_at=services.now() - datetime.timedelta(minutes=31)
    )
    assert tasks.escalate_alerts.call() == 1
    alert.refresh_from_db()
    assert alert.escalated_at is not None
    assert "ESCALATED" in mailoutbox[0].subject
    # every clinician who may respond, and the owner
    assert staff["owner"].email in mailoutbox[0].to and staff["therapist"].email in mailoutbox[0].to
    assert staff["front_desk"].email not in mailoutbox[0].to
    assert (
        AuditEvent.objects.filter(
            object_type="measures.safetyalert", detail__escalated=True
        ).count()
        == 1
    )
    assert tasks.escalate_alerts.call() == 0  # once only


def test_acknowledged_alerts_do_not_escalate(clinic, staff, patient):
    alert, _flag = _alerted(staff, patient)
    services.acknowledge_alert(alert_id=alert.pk, clinic=clinic, actor=staff["nurse"])
    SafetyAlert.objects.filter(pk=alert.pk).update(
        created_at=services.now() - datetime.timedelta(hours=5)
    )
    assert tasks.escalate_alerts.call() == 0


# ---------------------------------------------------------------------------- links


def test_link_stores_only_a_hash_and_expires_after_clinic_setting(clinic, staff, patient):
    MeasuresSettings.objects.create(clinic=clinic, link_expiry_hours=48)
    link, raw = services.create_link(
        patient=patient, actor=staff["front_desk"], instruments=["phq9"]
    )
    assert raw not in link.token_hash and len(raw) >= 40
    assert link.token_hash == PatientLink.hash_token(raw)
    hours = (link.expires_at - link.created_at).total_seconds() / 3600
    assert 47.9 < hours < 48.1
    assert services.find_link(raw) == link
    assert services.find_link(raw[:-1] + ("A" if raw[-1] != "A" else "B")) is None
    PatientLink.objects.filter(pk=link.pk).update(expires_at=services.now())
    assert services.find_link(raw) is None


def test_link_refuses_clinician_only_instruments_and_email_without_address(staff, patient):
    with pytest.raises(ValidationError) as exc:
        services.create_link(patient=patient, actor=staff["nurse"], instruments=["madrs"])
    assert "instruments" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.create_link(
            patient=patient, actor=staff["nurse"], instruments=["phq9"], send_email=True
        )
    assert "send_email" in exc.value.message_dict
    with pytest.raises(PermissionDenied):
        services.create_link(patient=patient, actor=staff["owner"], instruments=["phq9"])


def test_link_email_has_first_name_only_and_crisis_line(clinic, staff, patient, mailoutbox):
    patient.email = "riley@example.test"
    patient.save()
    link, raw = services.create_link(
        patient=patient,
        actor=staff["nurse"],
        instruments=["phq9", "gad7"],
        send_email=True,
        base_url="https://clinic.example.test",
    )
    body = mailoutbox[0].body
    assert f"https://clinic.example.test/measures/r/{raw}/" in body
    assert "Riley" in body and "Alvarez" not in body
    assert clinic.crisis_line in body
    assert link.emailed_to == "riley@example.test"


def test_submit_is_single_use_and_creates_self_reports(staff, patient):
    link, raw = services.create_link(patient=patient, actor=staff["nurse"], instruments=["phq9"])
    with pytest.raises(ValidationError) as exc:
        services.submit_link(link=link)
    assert "phq9" in exc.value.message_dict
    services.save_link_progress(link=link, code="phq9", answers=phq9(0))
    adms, alerts = services.submit_link(link=link)
    assert [a.source for a in adms] == ["self_report"] and alerts == []
    assert adms[0].entered_by is None and adms[0].link == link
    with pytest.raises(PermissionDenied):
        services.submit_link(link=link)
    assert services.find_link(raw) is None
    assert Administration.objects.count() == 1
    event = AuditEvent.objects.filter(object_type="measures.patientlink").latest("id")
    assert event.actor is None and event.actor_label == services.PATIENT_VIA_LINK


def test_reminders_rotate_the_token_and_keep_answers(clinic, staff, patient, mailoutbox):
    patient.email = "riley@example.test"
    patient.save()
    MeasuresSettings.objects.create(clinic=clinic, reminder_hours=24)
    link, raw = services.create_link(
        patient=patient, actor=staff["nurse"], instruments=["phq9"], send_email=True
    )
    services.save_link_progress(link=link, code="phq9", answers={"1": 2})
    assert tasks.send_reminders.call() == 0  # sent just now
    PatientLink.objects.filter(pk=link.pk).update(
        last_sent_at=services.now() - datetime.timedelta(hours=25)
    )
    assert tasks.send_reminders.call() == 1
    assert services.find_link(raw) is None  # the old token no longer opens
    new_raw = mailoutbox[-1].body.split("/measures/r/")[1].split("/")[0]
    assert services.find_link(new_raw).partial == {"phq9": {"1": 2}}
    assert "reminder" in mailoutbox[-1].body.lower()


def test_weekly_and_pre_treatment_schedules(
    clinic, staff, patient, mailoutbox, make_plan, dosing_visit
):
    patient.email = "riley@example.test"
    patient.save()
    plan = make_plan(patient)
    weekly = services.create_schedule(
        patient=patient, actor=staff["nurse"], instruments=["phq9"], cadence="weekly"
    )
    pre = services.create_schedule(
        patient=patient,
        actor=staff["nurse"],
        instruments=["gad7"],
        cadence="before_each_treatment",
        plan=plan,
    )
    now = services.now()
    # Not treatments to send before: a completed visit, a booked consultation, a visit beyond
    # the lead time (24 h), a booked visit of another course.
    dosing_visit(plan, now - datetime.timedelta(hours=3))
    dosing_visit(plan, now + datetime.timedelta(hours=5), status="booked", type_code="consultation")
    far = dosing_visit(plan, now + datetime.timedelta(hours=30), status="booked")
    other = make_plan(patient, code="esketamine-trd")
    dosing_visit(other, now + datetime.timedelta(hours=2), status="booked")
    assert tasks.send_due_measures.call() == 1  # weekly is due now; no visit of the plan soon
    weekly.refresh_from_db()
    assert weekly.next_due > services.now() + datetime.timedelta(days=6)
    assert tasks.send_due_measures.call() == 0
    soon = dosing_visit(plan, now + datetime.timedelta(hours=20), status="booked")
    assert tasks.send_due_measures.call() == 1
    assert tasks.send_due_measures.call() == 0  # once per visit
    pre.refresh_from_db()
    assert pre.last_treatment_sent_for == soon.start
    link = PatientLink.objects.get(schedule=pre)
    assert link.plan == plan and link.instruments == ["gad7"]
    # The next visit comes within the lead time: one more link, for it.
    from ketaflow.scheduling.models import Appointment

    Appointment.objects.filter(pk=far.pk).update(
        start=now + datetime.timedelta(hours=22), end=now + datetime.timedelta(hours=23)
    )
    assert tasks.send_due_measures.call() == 1
    pre.refresh_from_db()
    assert pre.last_treatment_sent_for == now + datetime.timedelta(hours=22)
    assert sorted(PatientLink.objects.values_list("schedule_id", flat=True)) == sorted(
        [weekly.pk, pre.pk, pre.pk]
    )
    assert len(mailoutbox) == 3
    services.stop_schedule(schedule=weekly, actor=staff["nurse"])
    MeasureSchedule.objects.filter(pk=weekly.pk).update(next_due=services.now())
    assert tasks.send_due_measures.call() == 0


def test_pre_treatment_schedule_without_a_course_uses_every_dosing_visit(
    clinic, staff, patient, mailoutbox, make_plan, dosing_visit
):
    patient.email = "riley@example.test"
    patient.save()
    services.create_schedule(
        patient=patient,
        actor=staff["nurse"],
        instruments=["phq9"],
        cadence="before_each_treatment",
    )
    assert tasks.send_due_measures.call() == 0
    dosing_visit(make_plan(patient), services.now() + datetime.timedelta(hours=4), status="booked")
    assert tasks.send_due_measures.call() == 1
    assert PatientLink.objects.get().plan is None


def test_schedule_needs_an_email_address(staff, patient):
    with pytest.raises(ValidationError):
        services.create_schedule(
            patient=patient, actor=staff["nurse"], instruments=["phq9"], cadence="weekly"
        )


def test_measures_tick_runs_the_periodic_tasks(staff, patient):
    from io import StringIO

    out = StringIO()
    call_command("measures_tick", "--now", stdout=out)
    assert "escalate_alerts: 0" in out.getvalue()
    out = StringIO()
    call_command("measures_tick", stdout=out)  # immediate backend in tests
    assert out.getvalue().count("enqueued") == 3


def test_settings_and_on_call_list(clinic, staff):
    services.update_settings(
        clinic=clinic,
        actor=staff["owner"],
        data={
            "link_expiry_hours": 24,
            "escalation_minutes": 10,
            "reminder_hours": 12,
            "pre_treatment_hours": 24,
            "madrs_remission_cutoff": 10,
            "pcl5_ptsd_cutoff": 33,
        },
        on_call_user_ids=[staff["nurse"].pk],
    )
    assert services.settings_for(clinic).escalation_minutes == 10
    assert list(OnCall.objects.values_list("user_id", flat=True)) == [staff["nurse"].pk]
    with pytest.raises(ValidationError) as exc:
        services.update_settings(
            clinic=clinic,
            actor=staff["owner"],
            data={
                "link_expiry_hours": 0,
                "escalation_minutes": 10,
                "reminder_hours": 12,
                "pre_treatment_hours": 24,
                "madrs_remission_cutoff": 10,
                "pcl5_ptsd_cutoff": 33,
            },
            on_call_user_ids=[],
        )
    assert "link_expiry_hours" in exc.value.message_dict
    with pytest.raises(PermissionDenied):
        services.update_settings(
            clinic=clinic, actor=staff["prescriber"], data={}, on_call_user_ids=[]
        )


@pytest.mark.django_db(transaction=True)
def test_concurrent_acknowledgements_produce_one(clinic, staff, patient):
    from ketaflow.testing.concurrency import at_once

    alert, _flag = _alerted(staff, patient)
    results = at_once(
        *(
            lambda user=staff[r]: services.acknowledge_alert(
                alert_id=alert.pk, clinic=clinic, actor=user
            )
            for r in ("prescriber", "nurse")
        )
    )
    assert sum(isinstance(r, services.AlreadyDone) for r in results) == 1
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert AuditEvent.objects.filter(object_type="measures.safetyalert").count() == 1


def test_mail_failure_never_loses_a_submission_or_alert(staff, patient, monkeypatch, mailoutbox):
    def broken(*args, **kwargs):
        raise OSError("mail server down")

    monkeypatch.setattr(services, "send_mail", broken)
    link, _raw = services.create_link(patient=patient, actor=staff["nurse"], instruments=["phq9"])
    services.save_link_progress(link=link, code="phq9", answers=phq9(1, item9=1))
    adms, alerts = services.submit_link(link=link)
    assert len(adms) == 1 and len(alerts) == 1
    assert SafetyAlert.objects.get().notified == []  # stays in the list, escalates later
    SafetyAlert.objects.update(created_at=services.now() - datetime.timedelta(hours=1))
    assert tasks.escalate_alerts.call() == 0  # failed send rolled back: retried next tick
    assert SafetyAlert.objects.get().escalated_at is None
    patient.email = "riley@example.test"
    patient.save()
    with pytest.raises(ValidationError) as exc:
        services.create_link(
            patient=patient, actor=staff["nurse"], instruments=["phq9"], send_email=True
        )
    assert "send_email" in exc.value.message_dict
    assert PatientLink.objects.count() == 1
