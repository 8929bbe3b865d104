import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketaflow.clinical import vitals as v

T0 = datetime.datetime(2030, 1, 7, 9, 0, tzinfo=datetime.UTC)


def at(minutes):
    return T0 + datetime.timedelta(minutes=minutes)


def R(minutes, sys_=None, dia=None, hr=None, spo2=None, rr=None):
    return v.Reading(
        at=at(minutes), systolic=sys_, diastolic=dia, heart_rate=hr, spo2=spo2, resp_rate=rr
    )


BASE = R(-10, 120, 80, 70, 98, 14)


def rules_of(findings, kind="alert"):
    return sorted(f.rule for f in findings if f.kind == kind)


# ---------------------------------------------------------------------------- plausibility


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [
        ("systolic", 50, 300),
        ("diastolic", 20, 200),
        ("heart_rate", 20, 250),
        ("resp_rate", 4, 60),
        ("spo2", 50, 100),
        ("temperature", 30, 43),
    ],
)
def test_plausibility_limits_from_section_6(name, low, high):
    assert v.PLAUSIBLE[name] == (low, high)
    other = {"systolic": 300, "diastolic": 20} if name in ("systolic", "diastolic") else {}
    for value, ok in ((low - 1, False), (low, True), (high, True), (high + 1, False)):
        values = {**other, name: value}
        if name == "systolic":
            values["diastolic"] = 20 if value > 20 else None
        if name == "diastolic":
            values["systolic"] = 300
        errors = v.plausibility_errors(values)
        assert (name not in errors) is ok, (name, value, errors)
        if not ok:
            assert "typing error" in errors[name]


def test_systolic_must_be_above_diastolic_and_both_given():
    assert "systolic" in v.plausibility_errors({"systolic": 80, "diastolic": 80})
    assert "diastolic" in v.plausibility_errors({"systolic": 120})
    assert "__all__" in v.plausibility_errors({})
    assert v.plausibility_errors({"systolic": 121, "diastolic": 80, "spo2": 97}) == {}


@given(st.integers(50, 300), st.integers(20, 200))
def test_any_bp_in_limits_is_accepted_iff_systolic_above(sys_, dia):
    errors = v.plausibility_errors({"systolic": sys_, "diastolic": dia})
    assert (errors == {}) is (sys_ > dia)


def test_codes_are_loinc_and_ucum():
    assert v.CODES["systolic"][:2] == ("8480-6", "mm[Hg]")
    assert v.CODES["spo2"][:2] == ("59408-5", "%")
    assert v.CODES["temperature"][:2] == ("8310-5", "Cel")


# ---------------------------------------------------------------------------- alert rules


def confirmed(findings):
    return sorted(f.code for f in findings if f.level == "alert" and f.confirmed)


def unconfirmed(findings):
    return sorted(f.code for f in findings if f.level == "alert" and not f.confirmed)


def resolved(findings):
    return sorted(f.code for f in findings if f.level == "info" and f.resolves)


def test_defaults_match_reference():
    d = v.DEFAULTS
    assert (d.systolic_max, d.diastolic_max, d.bp_confirm_minutes) == (180, 110, 5)
    assert (d.heart_rate_max, d.heart_rate_sustained_readings) == (120, 2)
    assert (d.spo2_min, d.resp_rate_min, d.systolic_rise, d.diastolic_rise) == (92, 10, 40, 25)
    assert (d.predose_systolic_max, d.predose_diastolic_max) == (140, 90)
    # The emergency-department ketamine trial's exclusion limits (reference section 3).
    assert (d.systolic_min, d.heart_rate_min, d.resp_rate_max) == (90, 50, 30)
    assert set(v.SOURCES) == {f for f in v.VitalsSettings.__dataclass_fields__}


def test_every_default_without_a_published_value_is_labelled_a_clinic_default():
    for name in (
        "systolic_rise",
        "diastolic_rise",
        "discharge_systolic_margin",
        "discharge_diastolic_margin",
        "discharge_heart_rate_margin",
        "heart_rate_sustained_readings",
        "escalation_minutes",
    ):
        assert v.SOURCES[name].startswith("Clinic default, set by the medical director"), name
    for name in ("systolic_min", "heart_rate_min", "resp_rate_max"):
        assert "emergency-department ketamine trial" in v.SOURCES[name]
    assert not any("clinical-reference.md" in text for text in v.SOURCES.values())


def test_bp_high_alerts_at_once_unconfirmed_then_confirms_within_5_min():
    first = R(20, 185, 100)
    f = v.evaluate(first, [BASE], None)
    assert unconfirmed(f) == ["bp_high"] and confirmed(f) == []
    [alert] = f
    assert alert.level == "alert" and alert.recheck_by == at(25)
    assert "unconfirmed: recheck within 5 minutes" in alert.message
    second = R(24, 182, 98)
    assert confirmed(v.evaluate(second, [BASE, first], None)) == ["bp_high"]


def test_bp_repeat_after_5_min_does_not_confirm():
    first = R(20, 185, 100)
    assert confirmed(v.evaluate(R(25.02, 190, 100), [first], None)) == []
    assert unconfirmed(v.evaluate(R(25.02, 190, 100), [first], None)) == ["bp_high"]
    assert confirmed(v.evaluate(R(25, 190, 100), [first], None)) == ["bp_high"]  # 5 min: within
    assert confirmed(v.evaluate(R(24, 181, 90), [R(20, 181, 90)], None)) == ["bp_high"]
    # a later reading never confirms an earlier one
    assert confirmed(v.evaluate(R(20, 185, 100), [R(22, 185, 100)], None)) == []


def test_bp_at_the_limit_is_not_high_and_diastolic_alone_counts():
    assert confirmed(v.evaluate(R(22, 181, 90), [R(20, 150, 90)], None)) == []
    assert confirmed(v.evaluate(R(22, 150, 111), [R(20, 150, 112)], None)) == ["bp_high"]
    at_limit = v.evaluate(R(22, 180, 110), [R(20, 180, 110)], None)
    assert confirmed(at_limit) == [] and unconfirmed(at_limit) == []


def test_normal_recheck_resolves_an_unconfirmed_bp_alert():
    high = R(20, 200, 124)
    f = v.evaluate(R(24, 150, 90), [BASE, high], None)
    assert resolved(f) == ["bp_high"] and confirmed(f) == [] and unconfirmed(f) == []
    assert "200/124" in f[0].message and "150/90" in f[0].message
    # a late recheck still resolves it, and says it was late
    late = v.evaluate(R(31, 150, 90), [BASE, high], None)
    assert resolved(late) == ["bp_high"] and "late" in late[0].message
    # a normal reading after a confirmed high does not resolve anything (acknowledge it)
    assert resolved(v.evaluate(R(30, 150, 90), [R(20, 200, 124), R(24, 200, 120)], None)) == []
    # a reading without blood pressure is no recheck of it
    assert resolved(v.evaluate(R(24, spo2=97), [high], None)) == []


def test_hr_sustained_means_two_consecutive_readings():
    assert unconfirmed(v.evaluate(R(10, hr=121), [], None)) == ["hr_high"]
    assert v.evaluate(R(10, hr=121), [], None)[0].recheck_by == at(15)
    assert confirmed(v.evaluate(R(20, hr=125), [R(10, hr=121)], None)) == ["hr_high"]
    assert confirmed(v.evaluate(R(20, hr=125), [R(5, hr=130), R(10, hr=110)], None)) == []
    # readings without a heart rate do not break the run
    run = v.evaluate(R(20, hr=125), [R(10, hr=121), R(15, spo2=97)], None)
    assert confirmed(run) == ["hr_high"]
    three = v.VitalsSettings(heart_rate_sustained_readings=3)
    assert confirmed(v.evaluate(R(20, hr=125), [R(10, hr=121)], None, three)) == []
    assert v.evaluate(R(20, hr=120), [R(10, hr=121)], None) == [
        v.Finding(
            "hr_high",
            "info",
            "Recheck heart rate 120/min within 120: resolves the unconfirmed alert on 121/min "
            "at 09:10.",
            resolves=True,
        )
    ]


def test_sustained_tachycardia_needs_the_earlier_reading_above_not_at_the_limit():
    exactly = v.evaluate(R(20, hr=125), [R(10, hr=120)], None)
    assert confirmed(exactly) == [] and unconfirmed(exactly) == ["hr_high"]
    above = v.evaluate(R(20, hr=125), [R(10, hr=121)], None)
    assert confirmed(above) == ["hr_high"]


@pytest.mark.parametrize(
    ("reading", "code", "alert"),
    [
        (R(1, 89, 60), "sbp_low", True),
        (R(1, 90, 60), "sbp_low", False),
        (R(1, hr=49), "hr_low", True),
        (R(1, hr=50), "hr_low", False),
        (R(1, rr=31), "rr_high", True),
        (R(1, rr=30), "rr_high", False),
    ],
)
def test_trial_exclusion_limits_alert_at_once(reading, code, alert):
    found = confirmed(v.evaluate(reading, [], None))
    assert (found == [code]) is alert, found


def test_new_limits_are_settings():
    cfg = v.VitalsSettings(systolic_min=100, heart_rate_min=55, resp_rate_max=25)
    found = confirmed(v.evaluate(R(1, 95, 60, hr=52, rr=26), [], None, cfg))
    assert found == ["hr_low", "rr_high", "sbp_low"]


@pytest.mark.parametrize(("spo2", "alert"), [(91, True), (92, False), (50, True), (100, False)])
def test_spo2_below_92(spo2, alert):
    assert (rules_of(v.evaluate(R(1, spo2=spo2), [], None)) == ["spo2_low"]) is alert


@pytest.mark.parametrize(("rr", "alert"), [(9, True), (10, False), (4, True)])
def test_rr_below_10(rr, alert):
    assert (rules_of(v.evaluate(R(1, rr=rr), [], None)) == ["rr_low"]) is alert


@pytest.mark.parametrize(
    ("sys_", "dia", "alert"),
    [(160, 80, True), (159, 104, False), (159, 105, True), (130, 80, False)],
)
def test_rise_from_baseline(sys_, dia, alert):
    assert (rules_of(v.evaluate(R(30, sys_, dia), [BASE], BASE)) == ["bp_rise"]) is alert


def test_clinic_settings_change_thresholds():
    strict = v.VitalsSettings(spo2_min=95, resp_rate_min=12, systolic_rise=20)
    assert rules_of(v.evaluate(R(1, spo2=94, rr=11), [], None, strict)) == ["rr_low", "spo2_low"]
    assert rules_of(v.evaluate(R(30, 140, 80), [BASE], BASE, strict)) == ["bp_rise"]


def test_settings_refuse_esketamine_monitoring_below_label():
    with pytest.raises(ValueError, match="120"):
        v.VitalsSettings(esketamine_monitoring_minutes=90)
    with pytest.raises(ValueError):
        v.VitalsSettings(spo2_min=-1)


readings = st.builds(
    lambda m, s, d, h, o, r: R(m, s, min(d, s - 1), h, o, r),
    st.integers(0, 200),
    st.integers(60, 300),
    st.integers(20, 200),
    st.integers(20, 250),
    st.integers(50, 100),
    st.integers(4, 60),
)


@given(readings, st.lists(readings, max_size=6))
def test_alerts_only_when_a_limit_is_crossed(reading, earlier):
    found = rules_of(v.evaluate(reading, earlier, BASE))
    d = v.DEFAULTS
    # a reading beyond a severe limit always raises its alert, confirmed or not
    assert ("bp_high" in found) is (reading.systolic > 180 or reading.diastolic > 110)
    assert ("hr_high" in found) is (reading.heart_rate > 120)
    assert ("sbp_low" in found) is (reading.systolic < 90)
    assert ("hr_low" in found) is (reading.heart_rate < 50)
    assert ("rr_high" in found) is (reading.resp_rate > 30)
    if "spo2_low" in found:
        assert reading.spo2 < d.spo2_min
    if "rr_low" in found:
        assert reading.resp_rate < d.resp_rate_min
    if "bp_high" in found:
        assert reading.systolic > 180 or reading.diastolic > 110
    if "hr_high" in found:
        assert reading.heart_rate > 120
    assert ("spo2_low" in found) is (reading.spo2 < 92)
    assert ("rr_low" in found) is (reading.resp_rate < 10)
    rise = reading.systolic - 120 >= 40 or reading.diastolic - 80 >= 25
    assert ("bp_rise" in found) is rise


def test_predose_block_above_140_90():
    assert v.predose_block(R(0, 140, 90)) is None
    assert "prescriber review" in v.predose_block(R(0, 141, 80))
    assert v.predose_block(R(0, 130, 91)) is not None
    assert v.predose_block(None) is None


# ---------------------------------------------------------------------------- schedule


def test_schedule_before_dosing_asks_for_baseline():
    due = v.next_due(route=v.IV, readings=[], dose_start=None, dose_end=None, now=T0)
    assert due.at == T0 and due.status(T0) == "due"
    assert v.next_due(route=v.IV, readings=[T0], dose_start=None, dose_end=None, now=T0) is None


def test_iv_every_10_during_then_15_after():
    due = v.next_due(route=v.IV, readings=[at(-5)], dose_start=at(0), dose_end=None, now=at(3))
    assert due.at == at(10) and due.status(at(3)) == "upcoming" and due.status(at(11)) == "overdue"
    due = v.next_due(route=v.IV, readings=[at(10)], dose_start=at(0), dose_end=None, now=at(12))
    assert due.at == at(20)
    after = v.next_due(route=v.IV, readings=[at(30)], dose_start=at(0), dose_end=at(40), now=at(41))
    assert after.at == at(55)
    later = v.next_due(route=v.IV, readings=[at(50)], dose_start=at(0), dose_end=at(40), now=at(51))
    assert later.at == at(65)


def test_esketamine_at_40_then_every_15():
    due = v.next_due(
        route=v.ESKETAMINE, readings=[at(-5), at(20)], dose_start=at(0), dose_end=at(5), now=at(30)
    )
    assert due.at == at(40) and due.status(at(36)) == "due"
    due = v.next_due(
        route=v.ESKETAMINE, readings=[at(41)], dose_start=at(0), dose_end=at(5), now=at(42)
    )
    assert due.at == at(56)


def test_other_routes_every_15_after_dose():
    due = v.next_due(route="im-ketamine", readings=[], dose_start=at(0), dose_end=at(0), now=at(1))
    assert due.at == at(15)


# ---------------------------------------------------------------------------- discharge


def facts(**kw):
    base = dict(
        route=v.IV,
        now=at(120),
        baseline=BASE,
        latest=R(110, 130, 85, 80, 97),
        moaas_latest=5,
        walks_steadily=True,
        responsible_adult=True,
        dosing_ended=True,
    )
    base.update(kw)
    return v.DischargeFacts(**base)


def test_iv_discharge_met():
    assert v.discharge_unmet(facts()) == []


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"latest": R(110, 141, 80)}, "Systolic 141"),
        ({"latest": R(110, 130, 91)}, "Diastolic 91"),
        ({"latest": R(110, 130, 80, 91)}, "Heart rate 91"),
        ({"latest": R(110, 130, 80, 80, 90)}, "SpO2 90"),
        ({"latest": None}, "No blood pressure recorded after dosing"),
        ({"baseline": None}, "No baseline"),
        ({"moaas_latest": 4}, "MOAA/S is not 5"),
        ({"moaas_latest": None}, "MOAA/S is not 5"),
        ({"walks_steadily": False}, "Walking steadily"),
        ({"responsible_adult": False}, "Responsible adult"),
        ({"dosing_ended": False}, "Dosing has not ended"),
        ({"open_alerts": 1}, "not acknowledged"),
    ],
)
def test_each_unmet_criterion_is_named(change, text):
    unmet = v.discharge_unmet(facts(**change))
    assert len(unmet) == 1 and text in unmet[0]


def test_esketamine_needs_120_minutes_from_first_device():
    esk = dict(route=v.ESKETAMINE, first_device_at=at(0))
    assert "119 of at least 120" in v.discharge_unmet(facts(now=at(119.5), **esk))[0]
    assert v.discharge_unmet(facts(now=at(120), **esk)) == []
    assert "No first nasal device" in v.discharge_unmet(facts(route=v.ESKETAMINE))[0]
    # IV has no 120-minute rule
    assert v.discharge_unmet(facts(now=at(50))) == []


@given(st.integers(0, 60), st.integers(0, 40))
def test_margin_is_a_setting(sys_rise, dia_rise):
    cfg = v.VitalsSettings(discharge_systolic_margin=30, discharge_diastolic_margin=15)
    unmet = v.discharge_unmet(facts(latest=R(110, 120 + sys_rise, 80 + dia_rise, 70, 97)), cfg)
    assert any("Systolic" in u for u in unmet) is (sys_rise > 30)
    assert any("Diastolic" in u for u in unmet) is (dia_rise > 15)


# ---------------------------------------------------------------------------- a timed series


def series(route, readings, dose_start=0, dose_end=None, baseline=BASE, **kw):
    return v.evaluate_series(
        route=route,
        dose_start=at(dose_start) if dose_start is not None else None,
        dose_end=at(dose_end) if dose_end is not None else None,
        baseline=baseline,
        readings=readings,
        **kw,
    )


def test_sustained_severe_bp_on_the_iv_schedule_alerts_at_once_and_rechecks_in_5_min():
    """Issue 17: baseline 165/100, then 200/124 every 10 min: an alert at the first reading,
    the recheck due 5 min later (not the regular 10), confirmed by the recheck."""
    base = R(-5, 165, 100, 80)
    result = series(
        v.IV, [base, *(R(m, 200, 124, 88, 97, 14) for m in range(10, 70, 10))], baseline=base
    )
    first = result.readings[1]
    assert unconfirmed(first.findings) == ["bp_high"]
    assert first.due.at == at(15) and "Recheck blood pressure within 5 min" in first.due.reason
    # not rechecked at 15: the next reading at 20 is another unconfirmed alert, recheck at 25
    second = result.readings[2]
    assert unconfirmed(second.findings) == ["bp_high"] and second.due.at == at(25)
    assert result.pending == {"bp_high": at(65)}


def test_series_recheck_confirms_or_resolves_and_the_schedule_resumes():
    base = R(-5, 165, 100, 80)
    confirmed_run = series(v.IV, [base, R(10, 200, 124), R(14, 198, 120)], baseline=base)
    assert confirmed(confirmed_run.readings[2].findings) == ["bp_high"]
    assert confirmed_run.pending == {}
    assert confirmed_run.readings[2].due.at == at(24)  # regular: 10 min after the last reading
    resolved_run = series(v.IV, [base, R(10, 200, 124), R(14, 150, 95)], baseline=base)
    assert resolved(resolved_run.readings[2].findings) == ["bp_high"]
    assert resolved_run.pending == {} and resolved_run.readings[2].due.at == at(24)
    # a recheck without blood pressure leaves the recheck due
    spo2_only = series(v.IV, [base, R(10, 200, 124), R(12, spo2=97)], baseline=base)
    assert spo2_only.pending == {"bp_high": at(15)}
    assert spo2_only.readings[2].due.at == at(15)


def test_series_due_at_now_keeps_the_pending_recheck():
    result = series(v.IV, [BASE, R(10, 200, 124)], now=at(13))
    assert result.due.at == at(15) and result.due.status(at(16)) == "overdue"


def test_esketamine_40_minute_reading():
    esk = dict(dose_start=0, dose_end=5)
    early = series(v.ESKETAMINE, [BASE, R(20, 130, 80), R(34, 132, 80)], **esk)
    assert early.readings[2].due.at == at(40)
    assert "40 min" in early.readings[2].due.reason
    on_time = series(v.ESKETAMINE, [BASE, R(20, 130, 80), R(35, 132, 80)], **esk)
    assert on_time.readings[2].due.at == at(50)
    # a severe reading at 40 min: its recheck (45) comes before the regular 55
    high = series(v.ESKETAMINE, [BASE, R(40, 185, 100)], **esk)
    assert unconfirmed(high.readings[1].findings) == ["bp_high"]
    assert high.readings[1].due.at == at(45)


def test_series_compares_with_the_baseline_only_after_dose_start():
    base = R(-10, 120, 80)
    pre = series(v.IV, [base, R(-5, 165, 100)], baseline=base, dose_start=0)
    assert confirmed(pre.readings[1].findings) == []
    post = series(v.IV, [base, R(5, 165, 100)], baseline=base, dose_start=0)
    assert confirmed(post.readings[1].findings) == ["bp_rise"]


# ---------------------------------------------------------------------------- ketaflow vitals


SERIES = {
    "route": "iv-ketamine",
    "dose_start": "2030-01-07T09:00:00+00:00",
    "dose_end": None,
    "baseline": {"at": "2030-01-07T08:55:00+00:00", "systolic": 165, "diastolic": 100},
    "readings": [
        {
            "at": "2030-01-07T09:10:00+00:00",
            "systolic": 200,
            "diastolic": 124,
            "heart_rate": 88,
            "spo2": 97,
            "resp_rate": 14,
        },
        {"at": "2030-01-07T09:14:00+00:00", "systolic": 150, "diastolic": 95},
    ],
}


def run_cli(tmp_path, capsys, data, *, raw=None):
    import json

    from ketaflow import cli

    path = tmp_path / "series.json"
    path.write_text(raw if raw is not None else json.dumps(data))
    code = cli.main(["vitals", "evaluate", str(path)])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


def test_cli_evaluates_a_series(tmp_path, capsys):
    code, out, err = run_cli(tmp_path, capsys, SERIES)
    assert code == 0 and err == ""
    first, second = out["readings"]
    assert first["findings"] == [
        {
            "code": "bp_high",
            "level": "alert",
            "message": "BP 200/124 mmHg above 180/110: unconfirmed: recheck within 5 minutes "
            "(by 09:15).",
            "confirmed": False,
            "recheck_by": "2030-01-07T09:15:00+00:00",
        }
    ]
    assert first["next_due"] == {
        "due_at": "2030-01-07T09:15:00+00:00",
        "reason": "Recheck blood pressure within 5 min (unconfirmed alert)",
    }
    assert [(f["code"], f["level"]) for f in second["findings"]] == [("bp_high", "info")]
    assert second["next_due"]["due_at"] == "2030-01-07T09:24:00+00:00"
    assert out["pending_rechecks"] == {}


def test_cli_settings_overrides(tmp_path, capsys):
    code, out, _ = run_cli(tmp_path, capsys, {**SERIES, "settings": {"bp_confirm_minutes": 3}})
    assert code == 0
    assert out["readings"][0]["next_due"]["due_at"] == "2030-01-07T09:13:00+00:00"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"route": "oral"}, "route"),
        ({"dose_start": "yesterday"}, "dose_start"),
        ({"dose_end": "2030-01-07T08:00:00+00:00"}, "dose_end"),
        ({"readings": []}, "readings"),
        ({"readings": [{"at": "2030-01-07T09:10:00", "spo2": 97}]}, "readings[0].at"),
        ({"readings": [{"spo2": 97}]}, "readings[0].at"),
        (
            {"readings": [{"at": "2030-01-07T09:10:00Z", "systolic": 400, "diastolic": 90}]},
            "readings[0].systolic",
        ),
        ({"readings": [{"at": "2030-01-07T09:10:00Z", "spo2": "97"}]}, "readings[0].spo2"),
        ({"readings": [{"at": "2030-01-07T09:10:00Z", "pulse": 97}]}, "readings[0].pulse"),
        ({"baseline": {"systolic": 120}}, "baseline.diastolic"),
        ({"settings": {"spo2_floor": 90}}, "settings.spo2_floor"),
        (
            {"settings": {"esketamine_monitoring_minutes": 60}},
            "settings.esketamine_monitoring_minutes",
        ),
        ({"colour": "red"}, "colour"),
    ],
)
def test_cli_bad_input_exits_2_naming_the_field(tmp_path, capsys, change, field):
    code, out, err = run_cli(tmp_path, capsys, {**SERIES, **change})
    assert code == 2 and out is None
    assert f"ketaflow vitals: error: {field}:" in err, err


def test_cli_not_json_missing_file_and_usage(tmp_path, capsys):
    from ketaflow import cli

    code, _, err = run_cli(tmp_path, capsys, None, raw="{not json")
    assert code == 2 and "not JSON" in err
    assert cli.main(["vitals", "evaluate", str(tmp_path / "absent.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert cli.main(["vitals"]) == 2
    assert "usage: ketaflow vitals evaluate" in capsys.readouterr().err
