"""Tests for ketaflow.clinical.protocols (pure Python)."""

from __future__ import annotations

import copy
import itertools
import json
from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketaflow.clinical import protocols as pr

MONDAY = date(2025, 1, 6)
assert MONDAY.weekday() == 0

SHIPPED = [
    "iv-ketamine-clinic-6",
    "iv-ketamine-murrough-2013",
    "iv-ketamine-clinic-taper",
    "iv-ketamine-cusin-2017-step-up",
    "im-ketamine",
    "sc-ketamine-kads",
    "esketamine-trd",
    "esketamine-mdd-suicidal-ideation",
    "kap-sublingual-series",
]


def gaps(dates):
    return [(b - a).days for a, b in itertools.pairwise(dates)]


# --- library ------------------------------------------------------------------------------------


def test_library_contents():
    assert [p.code for p in pr.all_protocols()] == SHIPPED
    with pytest.raises(KeyError, match="unknown protocol"):
        pr.get("iv-ketamine-weekly")


@pytest.mark.parametrize("code", SHIPPED)
def test_each_protocol_validates_and_cites_sources(code):
    p = pr.get(code)
    again = pr.from_dict(json.loads(json.dumps(p.to_dict())))  # full validation path
    assert again == p
    assert "clinical-reference.md" in p.source
    assert p.dose.source.strip()
    assert p.min_interval_source.strip()
    for phase in p.phases:
        assert phase.source.strip()
        assert phase.kind in ("induction", "taper", "maintenance")
    for visit in p.companion_visits:
        assert visit.source.strip()
    assert p.min_interval_hours == D(24)


def test_esketamine_trd():
    p = pr.get("esketamine-trd")
    assert p.route == "esketamine-nasal"
    assert p.dose.unit == "mg"
    assert p.dose.start_dose == D(56)
    assert p.dose.allowed_doses == (D(56), D(84))
    assert p.dose.maximum == D(84)
    assert p.dose.step == D(28)
    assert p.monitoring_minutes == 120
    assert p.dose.planned_dose(1, age=64) == D(56)
    assert p.dose.planned_dose(1, age=65) == D(28)
    assert p.dose.planned_dose(1) == D(56)
    assert p.dose.planned_dose(2, age=70) == D(56)
    induction, weeks_5_8, week_9_on = p.phases
    assert (induction.visits, induction.per_week, induction.weeks) == (
        pr.IntRange(8, 8),
        pr.IntRange(2, 2),
        pr.IntRange(4, 4),
    )
    assert (weeks_5_8.visits, weeks_5_8.per_week) == (pr.IntRange(4, 4), pr.IntRange(1, 1))
    assert week_9_on.interval_weeks == pr.IntRange(1, 2)
    assert week_9_on.open_ended


def test_esketamine_suicidal_ideation():
    p = pr.get("esketamine-mdd-suicidal-ideation")
    assert p.dose.start_dose == D(84)
    assert p.dose.allowed_doses == (D(56), D(84))
    assert p.dose.special_starts == ()
    assert p.phases[0].per_week == pr.IntRange(2, 2)
    assert p.phases[0].weeks == pr.IntRange(4, 4)
    assert p.monitoring_minutes == 120


def test_iv_protocols():
    murrough = pr.get("iv-ketamine-murrough-2013")
    assert murrough.phases[0].visits == pr.IntRange(1, 6)
    assert murrough.phases[0].per_week == pr.IntRange(3, 3)
    assert murrough.infusion_minutes == 40
    assert murrough.dose.start_dose == D("0.5")
    assert "Murrough" in murrough.source
    clinic = pr.get("iv-ketamine-clinic-6")
    assert clinic.phases[0].visits == pr.IntRange(6, 6)
    assert clinic.phases[0].weeks == pr.IntRange(2, 3)
    assert clinic.phases[1].interval_weeks == pr.IntRange(2, 6)
    taper = pr.get("iv-ketamine-clinic-taper")
    assert taper.phases[0].weekly_visits == (
        pr.IntRange(3, 4),
        pr.IntRange(2, 3),
        pr.IntRange(1, 2),
    )
    assert taper.phases[1].interval_weeks == pr.IntRange(2, 4)


def test_cusin_step_up_doses():
    p = pr.get("iv-ketamine-cusin-2017-step-up")
    assert [p.dose.planned_dose(v) for v in range(1, 8)] == [D("0.5")] * 3 + [D("0.75")] * 3 + [
        D("0.5")
    ]
    assert p.infusion_minutes == 45
    assert "Cusin" in p.source


def test_im_and_sc():
    im = pr.get("im-ketamine")
    assert (im.dose.start_dose, im.dose.minimum, im.dose.maximum) == (D("0.5"), D("0.25"), D("0.7"))
    assert "Chilukuri" in im.source
    sc = pr.get("sc-ketamine-kads")
    assert (sc.dose.start_dose, sc.dose.maximum) == (D("0.5"), D("0.9"))
    assert sc.phases[0].per_week == pr.IntRange(2, 2)


def test_kap_companion_visits():
    p = pr.get("kap-sublingual-series")
    kinds = {(v.kind, v.timing) for v in p.companion_visits}
    assert ("kap_preparation", "before_course") in kinds
    assert ("integration", "after_each_dose") in kinds
    assert p.dose.unit == "mg"
    assert p.dose.start_dose is None  # the reference fixes none


# --- schedules ----------------------------------------------------------------------------------


def test_murrough_three_a_week_over_12_days():
    dates = pr.propose_schedule(pr.get("iv-ketamine-murrough-2013"), "induction", MONDAY)
    assert len(dates) == 6
    assert [d.weekday() for d in dates] == [0, 2, 4, 0, 2, 4]  # Mon/Wed/Fri
    assert (dates[-1] - dates[0]).days + 1 == 12
    assert (
        pr.propose_schedule(pr.get("iv-ketamine-murrough-2013"), "induction", MONDAY, visits=4)
        == dates[:4]
    )
    with pytest.raises(pr.ProtocolError) as exc:
        pr.propose_schedule(pr.get("iv-ketamine-murrough-2013"), "induction", MONDAY, visits=7)
    assert exc.value.field == "visits"


def test_esketamine_trd_full_course():
    p = pr.get("esketamine-trd")
    induction = pr.propose_schedule(p, "induction", MONDAY)
    assert len(induction) == 8
    assert gaps(induction) == [3, 4] * 3 + [3]
    assert induction[-1] < MONDAY + timedelta(weeks=4)
    start_5 = MONDAY + timedelta(weeks=4)
    weekly = pr.propose_schedule(p, "maintenance-weeks-5-8", start_5)
    assert weekly == [start_5 + timedelta(weeks=i) for i in range(4)]
    start_9 = MONDAY + timedelta(weeks=8)
    with pytest.raises(pr.ProtocolError) as exc:
        pr.propose_schedule(p, "maintenance-week-9-on", start_9)
    assert exc.value.field == "visits"
    with pytest.raises(pr.ProtocolError) as exc:
        pr.propose_schedule(p, "maintenance-week-9-on", start_9, visits=3)
    assert exc.value.field == "interval_weeks"
    every_2 = pr.propose_schedule(p, "maintenance-week-9-on", start_9, visits=3, interval_weeks=2)
    assert gaps(every_2) == [14, 14]
    with pytest.raises(pr.ProtocolError) as exc:
        pr.propose_schedule(p, "maintenance-week-9-on", start_9, visits=3, interval_weeks=3)
    assert exc.value.field == "interval_weeks"
    with pytest.raises(pr.ProtocolError) as exc:
        pr.propose_schedule(p, "induction", MONDAY, per_week=3)
    assert exc.value.field == "per_week"


def test_clinic_six_needs_a_choice_of_visits_a_week():
    p = pr.get("iv-ketamine-clinic-6")
    with pytest.raises(pr.ProtocolError) as exc:
        pr.propose_schedule(p, "induction", MONDAY)
    assert exc.value.field == "per_week"
    two_weeks = pr.propose_schedule(p, "induction", MONDAY, per_week=3)
    three_weeks = pr.propose_schedule(p, "induction", MONDAY, per_week=2)
    assert len(two_weeks) == len(three_weeks) == 6
    assert two_weeks[-1] < MONDAY + timedelta(weeks=2)
    assert MONDAY + timedelta(weeks=2) <= three_weeks[-1] < MONDAY + timedelta(weeks=3)
    for bad in (1, 4, 0):
        with pytest.raises(pr.ProtocolError) as exc:
            pr.propose_schedule(p, "induction", MONDAY, per_week=bad)
        assert exc.value.field == "per_week"
    boosters = pr.propose_schedule(p, "boosters", MONDAY, visits=2, interval_weeks=6)
    assert gaps(boosters) == [42]


def test_taper_needs_weekly_counts():
    p = pr.get("iv-ketamine-clinic-taper")
    with pytest.raises(pr.ProtocolError) as exc:
        pr.propose_schedule(p, "taper", MONDAY)
    assert exc.value.field == "weekly_counts"
    dates = pr.propose_schedule(p, "taper", MONDAY, weekly_counts=[4, 3, 2])
    assert len(dates) == 9
    for week, count in enumerate([4, 3, 2]):
        start = MONDAY + timedelta(weeks=week)
        assert sum(start <= d < start + timedelta(weeks=1) for d in dates) == count
    assert min(gaps(dates)) >= 1
    lowest = pr.propose_schedule(p, "taper", MONDAY, weekly_counts=[3, 2, 1])
    assert len(lowest) == 6
    for bad, field in (
        ([5, 3, 2], "weekly_counts[0]"),
        ([4, 3, 0], "weekly_counts[2]"),
        ([4, 3], "weekly_counts"),
    ):
        with pytest.raises(pr.ProtocolError) as exc:
            pr.propose_schedule(p, "taper", MONDAY, weekly_counts=bad)
        assert exc.value.field == field
    with pytest.raises(pr.ProtocolError) as exc:
        pr.propose_schedule(p, "taper", MONDAY, per_week=3)
    assert exc.value.field == "per_week"
    monthly = pr.propose_schedule(p, "maintenance", MONDAY, visits=3, interval_weeks=4)
    assert gaps(monthly) == [28, 28]


def test_phases_without_reference_spacing_need_caller_spacing():
    cusin = pr.get("iv-ketamine-cusin-2017-step-up")
    with pytest.raises(pr.ProtocolError) as exc:
        pr.propose_schedule(cusin, "induction", MONDAY)
    assert exc.value.field == "per_week"
    dates = pr.propose_schedule(cusin, "induction", MONDAY, per_week=2)
    assert len(dates) == 6
    with pytest.raises(pr.ProtocolError):
        pr.propose_schedule(cusin, "induction", MONDAY, per_week=2, interval_days=3)
    kap = pr.get("kap-sublingual-series")
    dates = pr.propose_schedule(kap, "dosing-sessions", MONDAY, visits=4, interval_days=14)
    assert gaps(dates) == [14, 14, 14]
    with pytest.raises(pr.ProtocolError) as exc:
        pr.propose_schedule(kap, "dosing-sessions", MONDAY, interval_days=14)
    assert exc.value.field == "visits"


def test_schedule_respects_protocol_min_interval():
    data = pr.get("iv-ketamine-cusin-2017-step-up").to_dict()
    data["min_interval_hours"] = 48
    strict = pr.from_dict(data)
    with pytest.raises(pr.ProtocolError) as exc:
        pr.propose_schedule(strict, "induction", MONDAY, per_week=4)  # days 0,1,3,5: gap 1 day
    assert exc.value.field == "min_interval_hours"
    assert min(gaps(pr.propose_schedule(strict, "induction", MONDAY, per_week=3))) >= 2


def test_unknown_phase():
    with pytest.raises(pr.ProtocolError) as exc:
        pr.propose_schedule(pr.get("esketamine-trd"), "taper", MONDAY)
    assert exc.value.field == "phase"


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 7),
    count=st.integers(1, 30),
    start=st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31)),
)
def test_per_week_spacing_property(n, count, start):
    p = pr.get("kap-sublingual-series")
    data = p.to_dict()
    data["min_interval_hours"] = 0
    dates = pr.propose_schedule(
        pr.from_dict(data), "dosing-sessions", start, per_week=n, visits=count
    )
    assert len(dates) == count
    assert dates[0] == start
    assert all(g >= 1 for g in gaps(dates))
    # no 7-day window starting at the course start (or any week after) holds more than n visits
    for week in range(0, count // n + 2):
        ws = start + timedelta(weeks=week)
        assert sum(ws <= d < ws + timedelta(weeks=1) for d in dates) <= n
    # the longest gap is at most ceil(7/n)+1 days: visits are spread through the week
    if count > 1:
        assert max(gaps(dates)) <= -(-7 // n) + 1


# --- serialisation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("code", SHIPPED)
def test_round_trip(code):
    p = pr.get(code)
    data = p.to_dict()
    assert pr.to_dict(p) == data
    text = json.dumps(data)
    assert pr.Protocol.from_dict(json.loads(text)) == p
    assert pr.from_dict(json.loads(text)).to_dict() == data


def test_edited_copy_is_accepted():
    data = pr.get("iv-ketamine-clinic-6").to_dict()
    data["code"] = "iv-ketamine-clinic-6-local"
    data["dose"]["maximum"] = 0.75
    data["infusion_minutes"] = 50
    p = pr.from_dict(data)
    assert p.dose.maximum == D("0.75")
    assert p.infusion_minutes == 50


def _mutate(code, fn):
    data = copy.deepcopy(pr.get(code).to_dict())
    fn(data)
    return data


def _set(path, value):
    def fn(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return fn


def _delete(path):
    def fn(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return fn


@pytest.mark.parametrize(
    ("code", "mutation", "field"),
    [
        ("esketamine-trd", _delete(["code"]), "code"),
        ("esketamine-trd", _set(["code"], "Esketamine TRD"), "code"),
        ("esketamine-trd", _set(["colour"], "red"), "colour"),
        ("esketamine-trd", _set(["route"], "nasal"), "route"),
        ("esketamine-trd", _set(["source"], " "), "source"),
        ("esketamine-trd", _set(["dose", "unit"], "mg/kg"), "dose.unit"),
        ("esketamine-trd", _set(["dose", "unit"], "g"), "dose.unit"),
        ("esketamine-trd", _set(["dose", "maximum"], 112), "dose.maximum"),
        ("esketamine-trd", _set(["dose", "start_dose"], 42), "dose.start_dose"),
        ("esketamine-trd", _set(["dose", "start_dose"], "lots"), "dose.start_dose"),
        ("esketamine-trd", _set(["dose", "allowed_doses"], [56, 112]), "dose.allowed_doses[1]"),
        (
            "esketamine-trd",
            _set(["dose", "special_starts", 0, "dose"], 0),
            "dose.special_starts[0].dose",
        ),
        (
            "esketamine-trd",
            _set(["dose", "special_starts", 0, "min_age"], "65"),
            "dose.special_starts[0].min_age",
        ),
        ("esketamine-trd", _delete(["dose", "source"]), "dose.source"),
        ("esketamine-trd", _set(["phases"], []), "phases"),
        ("esketamine-trd", _set(["phases", 1, "code"], "induction"), "phases[1].code"),
        ("esketamine-trd", _set(["phases", 0, "kind"], "loading"), "phases[0].kind"),
        ("esketamine-trd", _set(["phases", 0, "per_week", "max"], 1), "phases[0].per_week.max"),
        (
            "esketamine-trd",
            _set(["phases", 0, "per_week"], {"min": 8, "max": 8}),
            "phases[0].per_week.max",
        ),
        ("esketamine-trd", _set(["phases", 0, "per_week", "min"], 1.5), "phases[0].per_week.min"),
        ("esketamine-trd", _set(["phases", 0, "per_week", "extra"], 1), "phases[0].per_week.extra"),
        (
            "esketamine-trd",
            _set(["phases", 0, "interval_weeks"], {"min": 1, "max": 1}),
            "phases[0].interval_weeks",
        ),
        ("esketamine-trd", _set(["phases", 0, "weeks"], {"min": 9, "max": 9}), "phases[0].weeks"),
        ("esketamine-trd", _delete(["phases", 2, "source"]), "phases[2].source"),
        ("esketamine-trd", _set(["monitoring_minutes"], -5), "monitoring_minutes"),
        ("esketamine-trd", _set(["min_interval_hours"], -1), "min_interval_hours"),
        ("esketamine-trd", _set(["infusion_minutes"], 40), "infusion_minutes"),
        (
            "esketamine-trd",
            _set(["companion_visits", 0, "kind"], "party"),
            "companion_visits[0].kind",
        ),
        (
            "esketamine-trd",
            _set(["companion_visits", 0, "timing"], "whenever"),
            "companion_visits[0].timing",
        ),
        (
            "iv-ketamine-cusin-2017-step-up",
            _set(["dose", "by_visit", 1, "dose"], 1.5),
            "dose.by_visit[1].dose",
        ),
        (
            "iv-ketamine-cusin-2017-step-up",
            _set(["dose", "by_visit", 1, "first_visit"], 5),
            "dose.by_visit[1].first_visit",
        ),
        ("iv-ketamine-cusin-2017-step-up", _set(["dose", "unit"], "mg"), "dose.unit"),
        (
            "iv-ketamine-clinic-taper",
            _set(["phases", 0, "visits"], {"min": 1, "max": 2}),
            "phases[0].visits",
        ),
        (
            "iv-ketamine-clinic-taper",
            _set(["phases", 0, "weekly_visits", 2], {"min": 2, "max": 1}),
            "phases[0].weekly_visits[2].max",
        ),
        ("im-ketamine", _set(["dose", "start_dose"], 0.2), "dose.start_dose"),
        ("im-ketamine", _set(["dose", "minimum"], 0.8), "dose.minimum"),
    ],
)
def test_invalid_dicts_refused_with_field_names(code, mutation, field):
    data = _mutate(code, mutation)
    with pytest.raises(pr.ProtocolError) as exc:
        pr.from_dict(data)
    assert exc.value.field == field, exc.value
    assert isinstance(exc.value, ValueError)


@pytest.mark.parametrize("data", [None, [], "protocol"])
def test_non_object_refused(data):
    with pytest.raises(pr.ProtocolError) as exc:
        pr.from_dict(data)
    assert exc.value.field == "protocol"


def test_schedule_respects_phase_length_in_weeks():
    data = pr.get("iv-ketamine-clinic-6").to_dict()
    data["phases"][0]["weeks"] = {"min": 2, "max": 2}
    two_weeks_only = pr.from_dict(data)
    assert len(pr.propose_schedule(two_weeks_only, "induction", MONDAY, per_week=3)) == 6
    with pytest.raises(pr.ProtocolError) as exc:
        pr.propose_schedule(two_weeks_only, "induction", MONDAY, per_week=2)  # would take 3 weeks
    assert exc.value.field == "per_week"
