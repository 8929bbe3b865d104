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


def test_defaults_match_reference():
    d = v.DEFAULTS
    assert (d.systolic_max, d.diastolic_max, d.bp_confirm_minutes) == (180, 110, 5)
    assert (d.heart_rate_max, d.heart_rate_sustained_readings) == (120, 2)
    assert (d.spo2_min, d.resp_rate_min, d.systolic_rise, d.diastolic_rise) == (92, 10, 40, 25)
    assert (d.predose_systolic_max, d.predose_diastolic_max) == (140, 90)
    assert set(v.SOURCES) == {f for f in v.VitalsSettings.__dataclass_fields__}


def test_bp_high_first_reading_asks_for_repeat_then_confirms_within_5_min():
    first = R(20, 185, 100)
    f = v.evaluate(first, [BASE], None)
    assert rules_of(f) == [] and rules_of(f, "recheck") == ["bp_high"]
    assert [x.recheck_by for x in f if x.kind == "recheck"] == [at(25)]
    second = R(24, 182, 98)
    assert rules_of(v.evaluate(second, [BASE, first], None)) == ["bp_high"]


def test_bp_repeat_after_5_min_does_not_confirm():
    first = R(20, 185, 100)
    assert rules_of(v.evaluate(R(25.02, 190, 100), [first], None)) == []
    assert rules_of(v.evaluate(R(25, 190, 100), [first], None)) == ["bp_high"]  # 5 min: within
    assert rules_of(v.evaluate(R(24, 181, 90), [R(20, 181, 90)], None)) == ["bp_high"]
    # a later reading never confirms an earlier one
    assert rules_of(v.evaluate(R(20, 185, 100), [R(22, 185, 100)], None)) == []


def test_bp_repeat_normal_does_not_confirm_and_diastolic_alone_counts():
    assert rules_of(v.evaluate(R(22, 181, 90), [R(20, 150, 90)], None)) == []
    assert rules_of(v.evaluate(R(22, 150, 111), [R(20, 150, 112)], None)) == ["bp_high"]
    assert rules_of(v.evaluate(R(22, 180, 110), [R(20, 180, 110)], None)) == []


def test_hr_sustained_means_two_consecutive_readings():
    assert rules_of(v.evaluate(R(10, hr=121), [], None)) == []
    assert rules_of(v.evaluate(R(10, hr=121), [], None), "recheck") == ["hr_high"]
    assert rules_of(v.evaluate(R(20, hr=125), [R(10, hr=121)], None)) == ["hr_high"]
    assert rules_of(v.evaluate(R(20, hr=125), [R(5, hr=130), R(10, hr=110)], None)) == []
    # readings without a heart rate do not break the run
    assert rules_of(v.evaluate(R(20, hr=125), [R(10, hr=121), R(15, spo2=97)], None)) == ["hr_high"]
    three = v.VitalsSettings(heart_rate_sustained_readings=3)
    assert rules_of(v.evaluate(R(20, hr=125), [R(10, hr=121)], None, three)) == []
    assert rules_of(v.evaluate(R(20, hr=120), [R(10, hr=121)], None)) == []


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
