"""Every endorsement of suicidal thoughts reaches a clinician at its true severity (issue 17
item 4): the services, the API and the pages driven by the one suicidality table; a
pre-screen answer flags the patient a consultation request converts to; a flag shows the
worst answer and is never downgraded by a better one."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from ketaflow.audit.models import AuditEvent
from ketaflow.intake import services as intake
from ketaflow.intake.models import ConsultationRequest
from ketaflow.measures import services
from ketaflow.measures.models import Administration, MeasuresSettings, RiskFlag, SafetyAlert
from ketaflow.patients.models import Patient

UTC = datetime.UTC


def phq9(item9, rest=1):
    return {str(k): rest for k in range(1, 9)} | {"9": item9}


def qids(item12=0, **extra):
    return {str(k): 0 for k in range(1, 17) if k not in (7, 9)} | {"12": item12} | extra


def record(staff, patient, instrument, answers, role="nurse", **kw):
    return services.record_administration(
        patient=patient, actor=staff[role], instrument=instrument, answers=answers, **kw
    )


# --- services -------------------------------------------------------------------------------


def test_cssrs_item1_yes_stays_low_risk_and_reaches_a_clinician(clinic, staff, patient, mailoutbox):
    patient.prescriber = staff["prescriber"]
    patient.save()
    adm = record(staff, patient, "cssrs", {"1": "yes", "2": "no", "6": "no"})
    assert adm.risk == "low"
    alert = SafetyAlert.objects.get()
    assert (alert.kind, alert.severity) == ("suicidality", "same_day")
    assert "item 1 (wish to be dead) answered yes" in alert.reason
    assert "low risk" in alert.reason
    flag = RiskFlag.objects.get()
    assert (flag.urgency, flag.worst_alert, flag.cleared_at) == ("same_day", alert, None)
    assert [m.to for m in mailoutbox] == [[staff["prescriber"].email]]


@pytest.mark.parametrize(
    ("answers", "urgency"),
    [
        ({"1": "yes", "2": "yes", "3": "yes", "4": "no", "5": "no", "6": "no"}, "urgent"),
        ({"1": "no", "2": "no", "6": "yes", "6b": "no"}, "urgent"),
        ({"1": "no", "2": "no", "6": "yes", "6b": "yes"}, "immediate"),
        ({"1": "yes", "2": "yes", "3": "no", "4": "no", "5": "yes", "6": "no"}, "immediate"),
    ],
)
def test_cssrs_one_alert_at_the_screener_triage(staff, patient, answers, urgency):
    record(staff, patient, "cssrs", answers)
    assert list(SafetyAlert.objects.values_list("kind", "severity")) == [("suicidality", urgency)]


def test_qids_alert_names_item12_not_a_flagged_answer(staff, patient):
    record(staff, patient, "qids-sr16", qids(item12=2))
    alert = SafetyAlert.objects.get()
    assert alert.severity == "urgent"
    assert "QIDS-SR16: item 12 (thoughts of death or suicide) answered 2" in alert.reason
    assert "flagged answer" not in alert.reason


def test_madrs_item10_alerts_by_score(staff, patient):
    answers = {str(k): 1 for k in range(1, 10)} | {"10": 6}
    record(staff, patient, "madrs", answers, role="prescriber")
    alert = SafetyAlert.objects.get()
    assert (
        alert.severity == "immediate" and "item 10 (suicidal thoughts) answered 6" in alert.reason
    )


def test_a_worse_answer_upgrades_the_flag_and_a_better_one_never_downgrades_it(
    clinic, staff, patient
):
    first = record(
        staff, patient, "phq9", phq9(1), taken_at=datetime.datetime(2026, 3, 1, 9, tzinfo=UTC)
    )
    flag = RiskFlag.objects.get()
    assert flag.urgency == "same_day" and "answered 1 (Several days)" in flag.reason
    worse = record(
        staff, patient, "phq9", phq9(3), taken_at=datetime.datetime(2026, 3, 2, 9, tzinfo=UTC)
    )
    flag.refresh_from_db()
    assert flag.urgency == "immediate"
    assert "answered 3 (Nearly every day)" in flag.reason and "answered 1" not in flag.reason
    assert flag.worst_at == worse.taken_at and flag.worst_alert.administration == worse
    assert flag.raised_by_alert.administration == first and flag.upgraded_at is not None
    upgrade_event = (
        AuditEvent.objects.filter(object_type="measures.administration").order_by("id").last()
    )
    assert upgrade_event.detail["flag_changes"] == [{"id": flag.pk, "change": "upgraded"}]
    for better in (phq9(1), phq9(0)):
        record(staff, patient, "phq9", better)
        flag.refresh_from_db()
        assert flag.urgency == "immediate" and "answered 3" in flag.reason
        assert flag.cleared_at is None
    assert RiskFlag.objects.count() == 1
    # Another instrument, less urgent: the flag keeps its worst answer.
    record(staff, patient, "cssrs", {"1": "yes", "2": "no", "6": "no"})
    flag.refresh_from_db()
    assert flag.urgency == "immediate" and "PHQ-9" in flag.reason


def test_clinic_setting_changes_a_clinic_default_urgency(clinic, staff, patient):
    MeasuresSettings.objects.create(clinic=clinic, suicidality_urgency={"phq9:9": {"1": "urgent"}})
    record(staff, patient, "phq9", phq9(1))
    assert SafetyAlert.objects.get().severity == "urgent"


def test_an_invalid_stored_setting_never_stops_an_alert(clinic, staff, patient):
    MeasuresSettings.objects.create(clinic=clinic, suicidality_urgency={"cssrs:4": {"yes": "x"}})
    record(
        staff,
        patient,
        "cssrs",
        {"1": "no", "2": "yes", "3": "no", "4": "yes", "5": "no", "6": "no"},
    )
    assert SafetyAlert.objects.get().severity == "immediate"
    assert RiskFlag.objects.get().urgency == "immediate"


def test_settings_refuse_an_urgency_below_the_published_triage(clinic):
    conf = MeasuresSettings(clinic=clinic, suicidality_urgency={"cssrs:5": {"yes": "same_day"}})
    with pytest.raises(ValidationError) as exc:
        conf.full_clean()
    assert "cssrs:5" in exc.value.message_dict["suicidality_urgency"][0]


def test_qids_both_answers_of_a_pair_are_refused_naming_the_pair(staff, patient):
    with pytest.raises(ValidationError) as exc:
        record(staff, patient, "qids-sr16", qids(**{"7": 1}))
    message = exc.value.message_dict["item_7"][0]
    assert "6/7" in message and "not both" in message
    assert not Administration.objects.exists()


def test_wsas_is_self_report_with_item1_not_applicable(clinic, staff, patient):
    link, _raw = services.create_link(patient=patient, actor=staff["nurse"], instruments=["wsas"])
    services.save_link_progress(
        link=link, code="wsas", answers={"1": "na", "2": "3", "3": "4", "4": "2", "5": "1"}
    )
    (adm,), alerts = services.submit_link(link=link)
    assert (adm.source, adm.total, adm.severity, adm.answers["1"]) == (
        "self_report",
        10,
        "significant impairment",
        "na",
    )
    assert alerts == []


# --- pre-screen of a consultation request ----------------------------------------------------


def _public_request(clinic, request_data, item9):
    data = dict(request_data)
    for key in range(1, 9):
        data[f"phq9_{key}"] = "1"
    data["phq9_9"] = str(item9)
    response = Client().post(f"/intake/request/{clinic.slug}/", data)
    assert response.status_code == 302, response.content.decode()[:500]
    return ConsultationRequest.objects.get(clinic=clinic)


@pytest.fixture
def request_data():
    from tests.intake.conftest import VALID

    return dict(VALID)


def test_prescreen_item9_flags_the_converted_patient_in_the_same_transaction(
    clinic, staff, request_data
):
    item = _public_request(clinic, request_data, 2)
    assert item.urgent and item.phq9_item9 == 2
    patient = intake.convert_request(item=item, actor=staff["front_desk"])
    adm = Administration.objects.get(patient=patient)
    assert (adm.instrument, adm.source, adm.total, adm.answers["9"]) == ("phq9", "prescreen", 10, 2)
    assert adm.taken_at == item.created_at
    assert adm.context_id == item.pk and adm.context_type.model == "consultationrequest"
    alert = SafetyAlert.objects.get(patient=patient)
    assert alert.severity == "urgent" and alert.administration == adm
    flag = RiskFlag.objects.get(patient=patient)
    assert flag.urgency == "urgent" and flag.worst_at == item.created_at
    kinds = list(
        AuditEvent.objects.filter(patient_id=patient.pk)
        .order_by("id")
        .values_list("object_type", flat=True)
    )
    assert kinds == ["patients.patient", "measures.administration", "intake.consultationrequest"]


def test_prescreen_without_item9_creates_the_score_but_no_flag(clinic, staff, request_data):
    item = _public_request(clinic, request_data, 0)
    patient = intake.convert_request(item=item, actor=staff["front_desk"])
    assert Administration.objects.get(patient=patient).source == "prescreen"
    assert not SafetyAlert.objects.exists() and not RiskFlag.objects.exists()


def test_a_failed_conversion_leaves_no_patient_score_or_alert(
    clinic, staff, request_data, monkeypatch
):
    item = _public_request(clinic, request_data, 3)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    with monkeypatch.context() as patched:
        patched.setattr(ConsultationRequest, "save", broken)
        with pytest.raises(RuntimeError):
            intake.convert_request(item=item, actor=staff["front_desk"])
    assert not Patient.objects.exists()
    assert not Administration.objects.exists() and not SafetyAlert.objects.exists()
    assert not RiskFlag.objects.exists()
    # Tried again, it stores exactly one patient, score, alert and flag.
    patient = intake.convert_request(item=item, actor=staff["front_desk"])
    assert Administration.objects.get().patient == patient
    assert SafetyAlert.objects.get().severity == "immediate"
    assert RiskFlag.objects.get().patient == patient


def test_converted_patient_shows_the_flag_and_the_alert_on_today(
    clinic, staff, request_data, client_for
):
    item = _public_request(clinic, request_data, 2)
    response = client_for(staff["front_desk"]).post(f"/intake/requests/{item.pk}/convert/")
    patient = Patient.objects.get(legal_family_name=request_data["family_name"])
    assert response.status_code == 302
    chart = client_for(staff["prescriber"]).get(f"/patients/{patient.pk}/").content.decode()
    assert "Risk flag: suicidality, urgent." in chart
    assert "item 9 (thoughts that you would be better off dead or of hurting yourself)" in chart
    assert "answered 2 (More than half the days)" in chart
    today = client_for(staff["prescriber"]).get("/today/").content.decode()
    assert "Safety alerts" in today and patient.display_name in today and "Urgent" in today


# --- pages and API -------------------------------------------------------------------------


def test_banner_shows_the_worst_answer_and_when(clinic, staff, patient, client_for):
    record(staff, patient, "phq9", phq9(1), taken_at=datetime.datetime(2026, 3, 1, 9, tzinfo=UTC))
    when = datetime.datetime(2026, 3, 2, 15, 30, tzinfo=UTC)
    record(staff, patient, "phq9", phq9(3), taken_at=when)
    record(staff, patient, "phq9", phq9(1))
    page = client_for(staff["prescriber"]).get(f"/patients/{patient.pk}/").content.decode()
    assert "Risk flag: suicidality, immediate." in page
    local = when.astimezone(clinic.tz).strftime("%Y-%m-%d %H:%M")
    assert f"Worst answer, given {local}" in page
    assert "answered 3 (Nearly every day)" in page
    assert "answered 1 (Several days)" not in page.split('class="risk-flag')[1].split("</div>")[0]


def test_api_alerts_carry_the_urgency_of_the_table(staff, patient, client_for):
    client = client_for(staff["nurse"])
    made = []
    for instrument, answers in (
        ("cssrs", {"1": "yes", "2": "no", "6": "no"}),
        ("phq9", phq9(3)),
        ("qids-sr16", qids(item12=1)),
    ):
        response = client.post(
            "/api/v1/measures/administrations",
            {"patient_id": patient.pk, "instrument": instrument, "answers": answers},
            content_type="application/json",
        )
        assert response.status_code == 201, response.content
        assert len(response.json()["alert_ids"]) == 1
        made.append(response.json()["alert_ids"][0])
    alerts = {a["id"]: a for a in client.get("/api/v1/measures/alerts").json()}
    assert [alerts[i]["severity"] for i in made] == ["same_day", "immediate", "same_day"]
    assert all(alerts[i]["kind"] == "suicidality" for i in made)


def test_api_refuses_both_qids_answers_of_a_pair_with_a_field_error(staff, patient, client_for):
    response = client_for(staff["nurse"]).post(
        "/api/v1/measures/administrations",
        {"patient_id": patient.pk, "instrument": "qids-sr16", "answers": qids(**{"9": 2})},
        content_type="application/json",
    )
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["field"] == "item_9" and "8/9" in error["message"]


SETTINGS_POST = {
    "link_expiry_hours": "72",
    "escalation_minutes": "15",
    "reminder_hours": "48",
    "pre_treatment_hours": "24",
    "madrs_remission_cutoff": "10",
    "pcl5_ptsd_cutoff": "33",
    "pcl5_reliable_change": "",
}


def test_settings_page_sets_clinic_default_urgencies_only(clinic, staff, patient, client_for):
    client = client_for(staff["owner"])
    page = client.get("/measures/settings/").content.decode()
    assert 'name="urgency_phq9_9_1"' in page and 'name="urgency_cssrs_1_yes"' in page
    assert 'name="urgency_cssrs_4_yes"' not in page  # the screener's own triage is fixed
    assert "clinic default, set by the medical director" in page
    response = client.post("/measures/settings/", SETTINGS_POST | {"urgency_phq9_9_1": "urgent"})
    assert response.status_code == 302
    saved = MeasuresSettings.objects.get(clinic=clinic)
    assert saved.suicidality_urgency == {"phq9:9": {"1": "urgent"}}
    event = AuditEvent.objects.filter(object_type="measures.measuressettings").latest("id")
    assert "urgency_phq9_9_1" in event.detail["fields"]
    record(staff, patient, "phq9", phq9(1))
    assert SafetyAlert.objects.get().severity == "urgent"
    falling = client.post("/measures/settings/", SETTINGS_POST | {"urgency_phq9_9_3": "same_day"})
    assert falling.status_code == 200 and "phq9:9: answer 3 would be less urgent" in (
        falling.content.decode()
    )
    saved.refresh_from_db()
    assert saved.suicidality_urgency == {"phq9:9": {"1": "urgent"}}


def test_today_lists_the_most_urgent_alert_first(clinic, staff, patient, make_patient, client_for):
    other = make_patient(clinic)
    record(staff, other, "phq9", phq9(3))  # immediate, older
    record(staff, patient, "cssrs", {"1": "yes", "2": "no", "6": "no"})  # same day, newer
    today = client_for(staff["prescriber"]).get("/today/").content.decode()
    assert today.index(other.display_name) < today.index(patient.display_name)
    assert today.index("Immediate") < today.index("Same day")


def test_record_page_takes_wsas_not_applicable_and_names_the_qids_pair(staff, patient, client_for):
    client = client_for(staff["nurse"])
    url = f"/measures/patients/{patient.pk}/record/"
    form = client.get(url + "?instrument=wsas").content.decode()
    assert 'name="item_1" value="na"' in form
    ok = client.post(
        url,
        {"instrument": "wsas", "item_1": "na", "item_2": "2", "item_3": "2", "item_4": "2", "item_5": "2", "plan": ""},
    )  # fmt: skip
    assert ok.status_code == 302
    adm = Administration.objects.get(instrument="wsas")
    assert (adm.total, adm.answers["1"], adm.source) == (8, "na", "clinician")
    post = {"instrument": "qids-sr16", "plan": ""} | {
        f"item_{k}": str(v) for k, v in qids(**{"6": 1, "7": 2}).items()
    }
    refused = client.post(url, post)
    assert refused.status_code == 200
    assert "either item 6 or item 7" in refused.content.decode()
    assert not Administration.objects.filter(instrument="qids-sr16").exists()


def test_migration_maps_old_severities_and_gives_open_flags_their_worst_alert(staff, patient):
    """Alerts stored as high / moderate / flag become immediate / urgent / same day, and an
    open flag raised by a 'flag' alert shows the worse alert raised after it."""
    import importlib

    from django.apps import apps

    migration = importlib.import_module("ketaflow.measures.migrations.0003_suicidality_urgency")
    first = record(staff, patient, "phq9", phq9(1))
    later = record(staff, patient, "phq9", phq9(3))
    a1, a2 = SafetyAlert.objects.order_by("id")
    SafetyAlert.objects.filter(pk=a1.pk).update(severity="flag")
    SafetyAlert.objects.filter(pk=a2.pk).update(severity="high")
    RiskFlag.objects.update(urgency="same_day", worst_alert=a1, reason=a1.reason, worst_at=None)
    migration.forwards(apps, None)
    assert list(SafetyAlert.objects.order_by("id").values_list("severity", flat=True)) == [
        "same_day",
        "immediate",
    ]
    flag = RiskFlag.objects.get()
    assert (flag.urgency, flag.worst_alert_id, flag.worst_at) == (
        "immediate",
        a2.pk,
        later.taken_at,
    )
    assert flag.raised_by_alert.administration == first
