"""Tests for ketaflow.clinical.dosing (pure Python; synthetic values only)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketaflow.clinical import dosing as dz

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def refused(limit, fn, *args, **kwargs):
    with pytest.raises(dz.DoseError) as exc:
        fn(*args, **kwargs)
    assert exc.value.limit == limit, exc.value
    assert isinstance(exc.value, ValueError)
    return exc.value


# --- worked examples -------------------------------------------------------------------------


def test_worked_example_iv_infusion():
    r = dz.calculate_weight_based(
        "iv-ketamine", 70, 0.5, minutes=40, stock_mg_per_ml=10, bag_ml=100
    )
    assert r.dose_mg == D("35")
    assert r.rate_mg_per_min == D("0.875")
    assert r.drug_volume_ml == D("3.5")
    assert r.rate_ml_per_h == D("155.25")
    assert r.weight_basis == "actual"
    assert r.override is None
    assert r.arithmetic[0] == "70 kg (actual body weight) × 0.5 mg/kg = 35 mg"
    assert "35 mg ÷ 40 min = 0.875 mg/min" in r.arithmetic
    assert "35 mg ÷ 10 mg/mL = 3.5 mL of drug" in r.arithmetic
    assert "(100 mL bag + 3.5 mL drug) ÷ 40 min × 60 min/h = 155.25 mL/h" in r.arithmetic
    assert r.rounding["increment_mg"] == D("0.1")
    assert r.warnings == ()


def test_worked_example_as_dict_is_json_with_exact_numbers():
    r = dz.calculate_weight_based(
        "iv-ketamine", "70", "0.5", minutes="40", stock_mg_per_ml="10", bag_ml="100"
    )
    out = json.loads(json.dumps(r.as_dict()))
    assert out["dose_mg"] == 35
    assert out["rate_mg_per_min"] == 0.875
    assert out["drug_volume_ml"] == 3.5
    assert out["rate_ml_per_h"] == 155.25
    assert out["weight_basis"] == "actual"
    assert out["override_reason"] is None
    assert "devices" not in out


def test_cusin_step_dose_over_45_minutes():
    r = dz.calculate_weight_based("iv-ketamine", 80, 0.75, minutes=45)
    assert r.dose_mg == D(60)
    assert r.rate_mg_per_min == D("1.333")  # 60/45 = 1.3333…, shown to 0.001
    assert r.drug_volume_ml is None
    assert r.rate_ml_per_h is None


def test_pump_rate_uses_the_volume_as_shown():
    # 60 kg × 0.5 = 30 mg; 30/7 = 4.2857… → 4.29 mL drawn up;
    # (100 + 4.29)/40 × 60 = 156.435 → 156.44 mL/h (from the unrounded volume it would be 156.43)
    r = dz.calculate_weight_based("iv-ketamine", 60, 0.5, minutes=40, stock_mg_per_ml=7, bag_ml=100)
    assert r.drug_volume_ml == D("4.29")
    assert r.rate_ml_per_h == D("156.44")
    assert "(100 mL bag + 4.29 mL drug) ÷ 40 min × 60 min/h = 156.44 mL/h" in r.arithmetic
    # 77 kg × 0.5 = 38.5 mg; 38.5/50 = 0.77 mL; (100 + 0.77)/40 × 60 = 151.155 → 151.16
    r = dz.calculate_weight_based(
        "iv-ketamine", 77, 0.5, minutes=40, stock_mg_per_ml=50, bag_ml=100
    )
    assert r.drug_volume_ml == D("0.77")
    assert r.rate_ml_per_h == D("151.16")


def test_im_dose_and_volume():
    r = dz.calculate_weight_based("im-ketamine", 80, 0.5, stock_mg_per_ml=50)
    assert r.dose_mg == D(40)
    assert r.drug_volume_ml == D("0.8")
    assert r.rate_mg_per_min is None
    assert r.minutes is None


@pytest.mark.parametrize(
    ("route", "per_kg", "expected"),
    [
        ("sc-ketamine", "0.9", D("54")),
        ("oral-ketamine", "2.5", D("150")),
        ("im-ketamine", "0.25", D("15")),
    ],
)
def test_other_routes(route, per_kg, expected):
    assert dz.calculate_weight_based(route, 60, per_kg).dose_mg == expected


def test_float_inputs_are_exact():
    # 0.1 + 0.2 style float error must not leak: 33.3 kg × 0.3 mg/kg = 9.99 mg → 10.0
    r = dz.calculate_weight_based("im-ketamine", 33.3, 0.3)
    assert r.rounding["unrounded_mg"] == D("9.99")
    assert r.dose_mg == D("10.0")


# --- weight basis ----------------------------------------------------------------------------


@pytest.mark.parametrize("basis", ["actual", "ideal", "adjusted"])
def test_weight_basis_is_shown_and_weight_not_converted(basis):
    s = dz.DosingSettings(weight_basis=basis)
    r = dz.calculate_weight_based("im-ketamine", 90, 0.5, settings=s)
    assert r.weight_basis == basis
    assert r.dose_mg == D(45)
    assert f"({basis} body weight)" in r.arithmetic[0]


def test_unknown_weight_basis_refused():
    refused("settings.weight_basis", dz.DosingSettings, weight_basis="lean")


# --- rounding --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("increment", "weight", "per_kg", "expected"),
    [
        ("0.1", "71.37", "0.5", D("35.7")),  # 35.685 → 35.7
        ("0.1", "70.1", "0.5", D("35.1")),  # 35.05 → 35.1 (half up)
        ("1", "71", "0.5", D("36")),  # 35.5 → 36 (half up)
        ("1", "70.8", "0.5", D("35")),  # 35.4 → 35
        ("5", "73", "0.5", D("35")),  # 36.5 → 35
        ("5", "75", "0.5", D("40")),  # 37.5 → 40 (half up)
    ],
)
def test_rounding_to_nearest_increment(increment, weight, per_kg, expected):
    s = dz.DosingSettings(rounding_mg=D(increment))
    r = dz.calculate_weight_based("im-ketamine", weight, per_kg, settings=s)
    assert r.dose_mg == expected
    assert r.rounding["method"] == "nearest, halves up"
    assert f"Rounded to the nearest {increment} mg: " in r.arithmetic[1]


def test_rounding_never_goes_above_the_maximum():
    # 72.6 kg × 1.0 mg/kg = 72.6 mg; nearest 5 mg would be 75 mg > maximum 72.6 mg → 70 mg
    s = dz.DosingSettings(rounding_mg=D(5))
    r = dz.calculate_weight_based("iv-ketamine", "72.6", "1.0", minutes=40, settings=s)
    assert r.dose_mg == D(70)
    assert r.rounding["method"].startswith("down")
    assert any("Rounded down to 70 mg" in step for step in r.arithmetic)


def test_dose_rounding_to_zero_is_refused():
    s = dz.DosingSettings(rounding_mg=D(5))
    refused("dose_mg", dz.calculate_weight_based, "im-ketamine", 25, "0.05", settings=s)


# --- hard limits ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "maximum", "extra"),
    [
        ("iv-ketamine", "1.0", {"minutes": 40}),
        ("im-ketamine", "0.7", {}),
        ("sc-ketamine", "0.9", {}),
        ("oral-ketamine", "2.5", {}),
    ],
)
def test_max_mg_per_kg_per_route(route, maximum, extra):
    at_max = dz.calculate_weight_based(route, 70, maximum, **extra)
    assert at_max.dose_mg == D(70) * D(maximum)
    above = D(maximum) + D("0.01")
    err = refused("max_mg_per_kg", dz.calculate_weight_based, route, 70, above, **extra)
    assert "override reason" in err.message


def test_default_limits_and_sources():
    d = dz.DEFAULTS
    assert (d.iv_max_mg_per_kg, d.im_max_mg_per_kg, d.esketamine_max_mg) == (
        D("1.0"),
        D("0.7"),
        D(84),
    )
    assert d.weight_basis == "actual"
    assert d.rounding_mg == D("0.1")
    assert d.min_interval_hours == D(24)
    sources = dz.setting_sources()
    assert set(sources) == {
        "iv_max_mg_per_kg",
        "im_max_mg_per_kg",
        "sc_max_mg_per_kg",
        "oral_max_mg_per_kg",
        "esketamine_max_mg",
        "rounding_mg",
        "min_interval_hours",
        "weight_basis",
        *(f"{r}_ceiling_mg_per_kg" for r in ("iv", "im", "sc", "oral")),
        *(f"{r}_ceiling_mg" for r in ("iv", "im", "sc", "oral")),
        *(f"{r}_observation_min" for r in ("iv", "im", "sc", "oral")),
    }
    assert all(isinstance(text, str) and text for text in sources.values())
    assert "0.1 to 1.0 mg/kg" in sources["iv_max_mg_per_kg"]
    assert "clinic setting" in sources["min_interval_hours"].lower()
    assert dz.DoseLimits is dz.DosingSettings


def test_clinic_can_lower_the_maximum():
    s = dz.DosingSettings(iv_max_mg_per_kg=D("0.5"))
    refused(
        "max_mg_per_kg",
        dz.calculate_weight_based,
        "iv-ketamine",
        70,
        "0.75",
        minutes=40,
        settings=s,
    )


def test_override_reason_allows_exceeding_max_and_is_recorded():
    r = dz.calculate_weight_based(
        "iv-ketamine", 70, "1.2", minutes=40, override_reason="  No response at 1.0 mg/kg; Dr A  "
    )
    assert r.dose_mg == D(84)
    assert r.override is not None
    assert r.override.limit == "max_mg_per_kg"
    assert r.override.reason == "No response at 1.0 mg/kg; Dr A"
    assert r.override.max_mg_per_kg == D("1.0")
    assert r.override_reason == "No response at 1.0 mg/kg; Dr A"
    assert any(step.startswith("OVERRIDE") for step in r.arithmetic)
    out = r.as_dict()
    assert out["override"]["requested_mg_per_kg"] == 1.2


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_blank_override_reason_does_not_override(reason):
    refused(
        "max_mg_per_kg",
        dz.calculate_weight_based,
        "iv-ketamine",
        70,
        "1.2",
        minutes=40,
        override_reason=reason,
    )


def test_override_reason_not_needed_is_kept_but_no_override():
    r = dz.calculate_weight_based("iv-ketamine", 70, "0.5", minutes=40, override_reason="note")
    assert r.override is None
    assert r.override_reason == "note"


@pytest.mark.parametrize(
    ("weight", "ok"),
    [
        ("24.9", False),
        ("25", True),
        ("350", True),
        ("350.1", False),
        (0, False),
        (-70, False),
        (1000, False),
    ],
)
def test_weight_limits(weight, ok):
    if ok:
        assert dz.calculate_weight_based("im-ketamine", weight, "0.25").weight_kg == D(weight)
    else:
        refused("weight_kg", dz.calculate_weight_based, "im-ketamine", weight, "0.25")


@pytest.mark.parametrize(
    ("kwargs", "limit"),
    [
        ({"mg_per_kg": 0}, "mg_per_kg"),
        ({"mg_per_kg": -0.5}, "mg_per_kg"),
        ({"mg_per_kg": float("nan")}, "mg_per_kg"),
        ({"mg_per_kg": float("inf")}, "mg_per_kg"),
        ({"mg_per_kg": True}, "mg_per_kg"),
        ({"mg_per_kg": "half"}, "mg_per_kg"),
        ({"weight_kg": "seventy"}, "weight_kg"),
        ({"weight_kg": None}, "weight_kg"),
        ({"minutes": 0}, "minutes"),
        ({"minutes": -40}, "minutes"),
        ({"minutes": None}, "minutes"),
        ({"stock_mg_per_ml": 0}, "stock_mg_per_ml"),
        ({"bag_ml": -1, "stock_mg_per_ml": 10}, "bag_ml"),
        ({"bag_ml": 100}, "stock_mg_per_ml"),
        ({"route": "esketamine-nasal"}, "route"),
        ({"route": "iv"}, "route"),
    ],
)
def test_invalid_inputs_refused_naming_the_input(kwargs, limit):
    args = {"route": "iv-ketamine", "weight_kg": 70, "mg_per_kg": 0.5, "minutes": 40}
    args.update(kwargs)
    refused(limit, dz.calculate_weight_based, **args)


def test_minutes_and_bag_only_for_iv():
    refused("minutes", dz.calculate_weight_based, "im-ketamine", 70, 0.5, minutes=5)
    refused(
        "bag_ml", dz.calculate_weight_based, "sc-ketamine", 70, 0.5, stock_mg_per_ml=10, bag_ml=50
    )


@pytest.mark.parametrize(
    ("minutes", "warned"), [(1, True), (2, False), (40, False), (100, False), (101, True)]
)
def test_unusual_infusion_time_warns(minutes, warned):
    r = dz.calculate_weight_based("iv-ketamine", 70, 0.5, minutes=minutes)
    assert bool(r.warnings) is warned


# --- minimum interval ----------------------------------------------------------------------------


def test_second_dose_inside_min_interval_refused():
    last = NOW - timedelta(hours=23, minutes=59)
    err = refused(
        "min_interval",
        dz.calculate_weight_based,
        "iv-ketamine",
        70,
        0.5,
        minutes=40,
        last_dose_at=last,
        now=NOW,
    )
    assert "24 h" in err.message


def test_dose_exactly_at_min_interval_allowed():
    r = dz.calculate_weight_based(
        "iv-ketamine", 70, 0.5, minutes=40, last_dose_at=NOW - timedelta(hours=24), now=NOW
    )
    assert r.dose_mg == D(35)
    assert any("Interval since last dose 24 h" in step for step in r.arithmetic)


def test_protocol_min_interval_overrides_setting():
    last = NOW - timedelta(hours=48)
    refused(
        "min_interval",
        dz.calculate_weight_based,
        "im-ketamine",
        70,
        0.5,
        last_dose_at=last,
        now=NOW,
        min_interval_hours=72,
    )
    assert dz.calculate_weight_based(
        "im-ketamine", 70, 0.5, last_dose_at=last, now=NOW
    ).dose_mg == D(35)


def test_min_interval_setting():
    s = dz.DosingSettings(min_interval_hours=D(48))
    refused(
        "min_interval",
        dz.calculate_esketamine,
        56,
        last_dose_at=NOW - timedelta(hours=47),
        now=NOW,
        settings=s,
    )


def test_interval_input_errors():
    refused(
        "last_dose_at", dz.calculate_esketamine, 56, last_dose_at=NOW + timedelta(hours=1), now=NOW
    )
    refused(
        "last_dose_at", dz.calculate_esketamine, 56, last_dose_at=NOW.replace(tzinfo=None), now=NOW
    )
    refused("last_dose_at", dz.calculate_esketamine, 56, last_dose_at="2025-01-01")
    refused(
        "min_interval_hours",
        dz.calculate_esketamine,
        56,
        last_dose_at=NOW,
        now=NOW,
        min_interval_hours=-1,
    )


# --- esketamine ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dose", "devices", "times"), [(28, 1, (0,)), (56, 2, (0, 5)), (84, 3, (0, 5, 10))]
)
def test_esketamine_devices(dose, devices, times):
    r = dz.calculate_esketamine(dose)
    assert r.dose_mg == D(dose)
    assert r.devices == devices
    assert r.device_interval_min == 5
    assert r.device_times_min == times
    assert r.minimum_monitoring_min == 120
    assert r.arithmetic[0] == f"{dose} mg ÷ 28 mg per device = {devices} device(s)"
    assert r.weight_basis is None
    out = r.as_dict()
    assert out["devices"] == devices
    assert "rate_mg_per_min" not in out


@pytest.mark.parametrize("dose", [14, 42, 50, 57, 83, "56.5"])
def test_esketamine_non_multiple_refused(dose):
    refused("esketamine_multiple", dz.calculate_esketamine, dose)


@pytest.mark.parametrize("dose", [112, 140, 280])
def test_esketamine_above_84_refused_without_override(dose):
    err = refused("esketamine_max", dz.calculate_esketamine, dose)
    assert "cannot be overridden" in err.message


@pytest.mark.parametrize("dose", [0, -28, "x", None])
def test_esketamine_non_positive_refused(dose):
    refused("dose_mg", dz.calculate_esketamine, dose)


def test_esketamine_clinic_max_can_be_lowered_not_raised():
    s = dz.DosingSettings(esketamine_max_mg=D(56))
    refused("esketamine_max", dz.calculate_esketamine, 84, settings=s)
    assert dz.calculate_esketamine(56, settings=s).devices == 2
    refused("settings.esketamine_max_mg", dz.DosingSettings, esketamine_max_mg=D(112))
    refused("settings.esketamine_max_mg", dz.DosingSettings, esketamine_max_mg=D(50))


@pytest.mark.parametrize("field", ["iv_max_mg_per_kg", "rounding_mg"])
def test_settings_must_be_positive(field):
    refused(f"settings.{field}", dz.DosingSettings, **{field: D(0)})


# --- properties ----------------------------------------------------------------------------------

decimals = st.decimals(min_value=D("0.001"), max_value=D("3"), places=3)


@settings(max_examples=400, deadline=None)
@given(
    route=st.sampled_from(["iv-ketamine", "im-ketamine", "sc-ketamine", "oral-ketamine"]),
    weight=st.decimals(min_value=D(25), max_value=D(350), places=2),
    per_kg=st.one_of(decimals, st.decimals(min_value=D("3"), max_value=D("8"), places=2)),
    rounding=st.sampled_from([D("0.1"), D("1"), D("5"), D("0.5")]),
)
def test_no_accepted_dose_without_override_exceeds_the_maximum(route, weight, per_kg, rounding):
    s = dz.DosingSettings(rounding_mg=rounding)
    extra = {"minutes": 40} if route == "iv-ketamine" else {}
    try:
        r = dz.calculate_weight_based(route, weight, per_kg, settings=s, **extra)
    except dz.DoseError as exc:
        assert exc.limit in {"max_mg_per_kg", "dose_mg", "ceiling_mg_per_kg", "ceiling_mg"}
        if exc.limit == "max_mg_per_kg":
            assert per_kg > s.max_mg_per_kg(route)
        if exc.limit == "ceiling_mg":
            assert weight * per_kg > s.ceiling(route)[1]
        return
    assert r.override is None
    assert r.dose_mg <= weight * s.max_mg_per_kg(route)
    assert r.dose_mg <= s.ceiling(route)[1]
    assert r.dose_mg > 0
    assert r.dose_mg % rounding == 0
    assert abs(r.dose_mg - weight * per_kg) < rounding


@settings(max_examples=200, deadline=None)
@given(dose=st.integers(min_value=1, max_value=400))
def test_esketamine_accepts_only_whole_devices_up_to_84(dose):
    try:
        r = dz.calculate_esketamine(dose)
    except dz.DoseError as exc:
        assert dose % 28 != 0 or dose > 84
        assert exc.limit in {"esketamine_multiple", "esketamine_max"}
        return
    assert dose in (28, 56, 84)
    assert r.devices * 28 == dose


# --- CLI -------------------------------------------------------------------------------------------


def test_cli_iv_worked_example(capsys):
    argv = [
        "--route",
        "iv-ketamine",
        "--weight-kg",
        "70",
        "--mg-per-kg",
        "0.5",
        "--minutes",
        "40",
        "--stock-mg-per-ml",
        "10",
        "--bag-ml",
        "100",
    ]
    assert dz.main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dose_mg"] == 35
    assert out["rate_mg_per_min"] == 0.875
    assert out["drug_volume_ml"] == 3.5
    assert out["rate_ml_per_h"] == 155.25
    assert out["weight_basis"] == "actual"
    assert out["override_reason"] is None
    assert out["arithmetic"][0].startswith("70 kg")
    assert out["rounding"]["increment_mg"] == 0.1


def test_cli_esketamine(capsys):
    assert dz.main(["--route", "esketamine-nasal", "--dose-mg", "56"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["devices"] == 2
    assert out["device_interval_min"] == 5
    assert out["dose_mg"] == 56


def test_cli_refusal_names_the_limit(capsys):
    argv = ["--route", "iv-ketamine", "--weight-kg", "70", "--mg-per-kg", "1.5", "--minutes", "40"]
    assert dz.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "max_mg_per_kg" in captured.err


def test_cli_override(capsys):
    argv = [
        "--route",
        "iv-ketamine",
        "--weight-kg",
        "70",
        "--mg-per-kg",
        "1.5",
        "--minutes",
        "40",
        "--override-reason",
        "documented non-response at 1.0 mg/kg",
    ]
    assert dz.main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dose_mg"] == 105
    assert out["override_reason"] == "documented non-response at 1.0 mg/kg"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--route", "esketamine-nasal", "--dose-mg", "112"], "esketamine_max"),
        (["--route", "esketamine-nasal", "--dose-mg", "50"], "esketamine_multiple"),
        (["--route", "esketamine-nasal"], "dose_mg"),
        (["--route", "esketamine-nasal", "--dose-mg", "56", "--weight-kg", "70"], "weight_kg"),
        (
            ["--route", "esketamine-nasal", "--dose-mg", "112", "--override-reason", "x"],
            "esketamine_max",
        ),
        (["--route", "im-ketamine", "--mg-per-kg", "0.5"], "weight_kg"),
        (["--route", "im-ketamine", "--weight-kg", "70"], "mg_per_kg"),
        (
            [
                "--route",
                "im-ketamine",
                "--weight-kg",
                "70",
                "--mg-per-kg",
                "0.5",
                "--dose-mg",
                "56",
            ],
            "dose_mg",
        ),
        (["--route", "im-ketamine", "--weight-kg", "400", "--mg-per-kg", "0.5"], "weight_kg"),
        (["--route", "im-ketamine", "--weight-kg", "abc", "--mg-per-kg", "0.5"], "weight_kg"),
        (["--route", "iv-ketamine", "--weight-kg", "70", "--mg-per-kg", "0.5"], "minutes"),
        (
            [
                "--route",
                "im-ketamine",
                "--weight-kg",
                "70",
                "--mg-per-kg",
                "0.5",
                "--last-dose-at",
                "yesterday",
            ],
            "last_dose_at",
        ),
    ],
)
def test_cli_refusals(argv, expected, capsys):
    assert dz.main(argv) == 2
    assert f"({expected})" in capsys.readouterr().err


def test_cli_interval_refusal(capsys):
    last = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    assert dz.main(["--route", "esketamine-nasal", "--dose-mg", "56", "--last-dose-at", last]) == 2
    assert "(min_interval)" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [[], ["--route", "iv"], ["--route", "iv-ketamine", "--bogus", "1"]]
)
def test_cli_usage_errors_exit_2(argv, capsys):
    assert dz.main(argv) == 2
    err = capsys.readouterr().err
    assert "ketaflow dose: error:" in err
    assert "usage:" in err


def test_cli_help(capsys):
    assert dz.main(["--help"]) == 0
    assert "--mg-per-kg" in capsys.readouterr().out


# --- issue 17: absolute ceiling, override of real length, given amount, observation ----------

REASON = "No response at 1.0 mg/kg after three infusions (synthetic)"


@pytest.mark.parametrize(
    ("route", "per_kg", "extra"),
    [
        ("iv-ketamine", "100", {"minutes": 40}),
        ("iv-ketamine", "10", {"minutes": 40}),
        ("iv-ketamine", "2.01", {"minutes": 40}),
        ("im-ketamine", "1.01", {}),
        ("sc-ketamine", "1.01", {}),
        ("oral-ketamine", "7.01", {}),
    ],
)
def test_ceiling_mg_per_kg_refuses_even_with_an_override(route, per_kg, extra):
    err = refused(
        "ceiling_mg_per_kg",
        dz.calculate_weight_based,
        route,
        70,
        per_kg,
        override_reason=REASON,
        **extra,
    )
    ceiling = dz.DEFAULTS.ceiling(route)[0]
    assert f"absolute ceiling of {dz.fmt(ceiling)} mg/kg" in err.message
    assert "no override" in err.message


def test_ceiling_defaults_follow_the_issue_and_the_reference():
    d = dz.DEFAULTS
    assert d.ceiling("iv-ketamine") == (D(2), D(200))
    assert d.ceiling("oral-ketamine") == (D(7), D(300))
    assert d.ceiling("im-ketamine")[0] == D("1.0")
    assert d.oral_max_mg_per_kg == D("2.5") and d.im_max_mg_per_kg == D("0.7")
    # every default ceiling stays far below the Ketalar label's anaesthetic induction doses
    assert d.ceiling("iv-ketamine")[0] < D("4.5") and d.ceiling("im-ketamine")[0] < D("6.5")
    sources = dz.setting_sources()
    assert "unit error" in sources["iv_ceiling_mg_per_kg"]
    assert "25-300 mg" in sources["oral_ceiling_mg"]
    for name in ("iv_ceiling_mg", "im_observation_min", "iv_observation_min"):
        assert "clinic default, set by the medical director" in sources[name]


def test_ceiling_in_mg_refuses_a_heavy_patient_even_within_mg_per_kg():
    # 1.5 mg/kg is below the 2 mg/kg ceiling, but 150 kg × 1.5 = 225 mg is above 200 mg.
    err = refused(
        "ceiling_mg",
        dz.calculate_weight_based,
        "iv-ketamine",
        150,
        "1.5",
        minutes=40,
        override_reason=REASON,
    )
    assert "200 mg" in err.message
    # oral: 130 kg × 2.5 mg/kg = 325 mg, within the clinic maximum, above the 300 mg ceiling
    refused("ceiling_mg", dz.calculate_weight_based, "oral-ketamine", 130, "2.5")


def test_override_between_maximum_and_ceiling_still_works():
    r = dz.calculate_weight_based("iv-ketamine", 70, "1.5", minutes=40, override_reason=REASON)
    assert r.dose_mg == D(105) and r.override is not None


@pytest.mark.parametrize("reason", ["x", "per MD", "ok ok ok", "aaaaaaaaaaaaaaaaaaaaaaaaa"])
def test_override_reason_needs_real_length(reason):
    err = refused(
        "override_reason",
        dz.calculate_weight_based,
        "iv-ketamine",
        70,
        "1.2",
        minutes=40,
        override_reason=reason,
    )
    assert "at least 20 characters and 3 words" in err.message


def test_rounding_never_passes_the_ceiling_even_under_override():
    s = dz.DosingSettings(rounding_mg=D(5), iv_ceiling_mg_per_kg=D("1.5"), iv_ceiling_mg=D(500))
    # 73 kg × 1.5 mg/kg = 109.5 mg: nearest 5 mg would be 110, above the ceiling -> 105
    r = dz.calculate_weight_based(
        "iv-ketamine", 73, "1.5", minutes=40, override_reason=REASON, settings=s
    )
    assert r.dose_mg == D(105)
    assert "absolute ceiling" in r.rounding["method"]


def test_boundary_clinic_maximum_075_with_5mg_rounding_rounds_down():
    s = dz.DosingSettings(rounding_mg=D(5), iv_max_mg_per_kg=D("0.75"))
    # 73 kg × 0.75 = 54.75 mg: nearest 5 mg is 55 (above the maximum) -> down to 50
    r = dz.calculate_weight_based("iv-ketamine", 73, "0.75", minutes=40, settings=s)
    assert r.dose_mg == D(50)
    assert "clinic maximum" in r.rounding["method"]
    # 80 kg × 0.74 = 59.2 mg rounds to 60 mg, exactly the maximum 80 × 0.75: allowed
    r = dz.calculate_weight_based("iv-ketamine", 80, "0.74", minutes=40, settings=s)
    assert r.dose_mg == D(60) == D(80) * D("0.75")
    assert r.rounding["method"] == "nearest, halves up"


def test_settings_refuse_a_maximum_above_the_ceiling_and_a_ceiling_above_the_label():
    with pytest.raises(dz.DoseError) as exc:
        dz.DosingSettings(iv_max_mg_per_kg=D(3))
    assert exc.value.limit == "settings.iv_max_mg_per_kg"
    with pytest.raises(dz.DoseError) as exc:
        dz.DosingSettings(iv_ceiling_mg_per_kg=D(20))
    assert exc.value.limit == "settings.iv_ceiling_mg_per_kg"
    # the medical director may raise a ceiling (an audited settings change)
    raised = dz.DosingSettings(iv_ceiling_mg_per_kg=D(3), iv_max_mg_per_kg=D(3))
    assert dz.calculate_weight_based("iv-ketamine", 70, "2.5", minutes=40, settings=raised)


def test_cli_refuses_above_the_ceiling_even_with_an_override(capsys):
    argv = [
        "--route",
        "iv-ketamine",
        "--weight-kg",
        "70",
        "--mg-per-kg",
        "10",
        "--minutes",
        "40",
        "--override-reason",
        "per MD",
    ]
    assert dz.main(argv) == 2
    err = capsys.readouterr()
    assert err.out == ""
    assert "ceiling_mg_per_kg" in err.err and "2 mg/kg" in err.err
    assert dz.main([*argv[:-1], REASON]) == 2
    assert "absolute ceiling" in capsys.readouterr().err


T0 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)


def ev(kind, minute, rate=None):
    return dz.DoseEventIn(kind, T0 + timedelta(minutes=minute), None if rate is None else D(rate))


def test_infusion_stopped_at_4_of_40_minutes_gives_4_08_of_40_8_mg():
    g = dz.administered_mg("iv-ketamine", "40.8", [ev("start", 0, "1.02"), ev("stop", 4)])
    assert (g.given_mg, g.unused_mg) == (D("4.08"), D("36.72"))
    assert any("4 min × 1.02 mg/min" in line for line in g.arithmetic)


def test_full_infusion_gives_what_was_drawn_within_the_rate_rounding():
    # 35 mg over 40 min: 0.875 mg/min exactly; 36.5 mg: 0.913 mg/min shown (0.9125)
    g = dz.administered_mg("iv-ketamine", "36.5", [ev("start", 0, "0.913"), ev("stop", 40)])
    assert g.given_mg == D("36.5") and g.unused_mg == 0
    g = dz.administered_mg("iv-ketamine", "35", [ev("start", 0, "0.875"), ev("stop", 45)])
    assert g.given_mg == D(35)  # never more than was drawn


def test_infusion_with_rate_change_and_pause():
    events = [
        ev("start", 0, "1"),
        ev("rate", 10, "0.5"),  # 10 mg
        ev("pause", 20),  # 5 mg
        ev("resume", 30, "1"),
        ev("stop", 35),  # 5 mg
    ]
    g = dz.administered_mg("iv-ketamine", "40", events)
    assert (g.given_mg, g.unused_mg) == (D(20), D(20))


def test_infusion_cut_short_by_the_session_end():
    g = dz.administered_mg(
        "iv-ketamine", "40", [ev("start", 0, "1")], end=T0 + timedelta(minutes=7)
    )
    assert g.given_mg == D(7)


def test_esketamine_given_counts_devices_and_others_the_single_dose():
    g = dz.administered_mg("esketamine-nasal", "84", [ev("device", 0), ev("device", 5)])
    assert (g.given_mg, g.unused_mg) == (D(56), D(28))
    assert dz.administered_mg("im-ketamine", "35", [ev("given", 0)]).given_mg == D(35)


@pytest.mark.parametrize(
    ("route", "minutes"),
    [
        ("iv-ketamine", 30),
        ("im-ketamine", 60),
        ("sc-ketamine", 60),
        ("oral-ketamine", 120),
    ],
)
def test_minimum_observation_after_the_dose_ends(route, minutes):
    end = T0
    assert dz.observation_unmet(route, None, T0) is not None
    early = dz.observation_unmet(route, end, end + timedelta(seconds=30))
    assert early and f"of at least {minutes} min" in early
    assert dz.observation_unmet(route, end, end + timedelta(minutes=minutes - 1)) is not None
    assert dz.observation_unmet(route, end, end + timedelta(minutes=minutes)) is None


def test_esketamine_observation_stays_with_the_first_device_rule():
    # Spravato: at least 120 min from the first device (treatment setting, never below 120)
    assert dz.DEFAULTS.observation_minutes("esketamine-nasal") is None
    assert dz.observation_unmet("esketamine-nasal", T0, T0) is None
