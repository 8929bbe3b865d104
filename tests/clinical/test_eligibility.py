"""Tests for ketaflow.clinical.eligibility (pure Python; synthetic cases only)."""

from __future__ import annotations

import copy
import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketaflow.clinical import eligibility as el

ROUTES = ["iv-ketamine", "im-ketamine", "sc-ketamine", "oral-ketamine", "esketamine-nasal"]
RACEMIC = ["iv-ketamine", "im-ketamine", "sc-ketamine", "oral-ketamine"]

# Expected severity per condition, written out here (not read from the module) so a change
# to the rules fails a test. (racemic, esketamine)
EXPECTED_CONDITION_SEVERITY = {
    "aneurysmal_vascular_disease": ("absolute", "absolute"),
    "arteriovenous_malformation": ("absolute", "absolute"),
    "intracerebral_hemorrhage_history": ("absolute", "absolute"),
    "hypersensitivity_ketamine": ("absolute", "absolute"),
    "schizophrenia": ("absolute", "review"),
    "psychosis_history": ("review", "review"),
    "mania_history": ("review", "review"),
    "substance_use_disorder": ("review", "review"),
    "uncontrolled_hypertension": ("review", "review"),
    "arrhythmia": ("review", "review"),
    "ischemic_heart_disease": ("review", "review"),
    "heart_failure": ("review", "review"),
    "cerebrovascular_disease": ("review", "review"),
    "raised_intracranial_pressure": ("review", "review"),
    "raised_intraocular_pressure": ("review", "review"),
    "severe_hepatic_impairment": ("review", "review"),
    "pregnancy": ("review", "review"),
    "breastfeeding": ("review", "review"),
}
MEDICATION_CLASSES = ["benzodiazepine", "sedative_hypnotic", "psychostimulant", "maoi", "opioid"]
RANK = {"eligible": 0, "review": 1, "ineligible": 2}


def trial(drug="sertraline", adequate=True, weeks=6, current=True, outcome="no_response"):
    return {
        "drug": drug,
        "adequate_dose": adequate,
        "weeks": weeks,
        "current_episode": current,
        "outcome": outcome,
    }


def case_dict(**overrides):
    """A synthetic case that meets TRD and has no other finding."""
    data = {
        "route": "iv-ketamine",
        "age": 40,
        "antidepressant_trials": [trial("sertraline"), trial("venlafaxine")],
        "conditions": [],
        "medication_classes": [],
        "blood_pressure": {"systolic": 120, "diastolic": 80},
    }
    data.update(overrides)
    return data


def run(**overrides) -> el.EligibilityResult:
    return el.evaluate(el.parse_case(case_dict(**overrides)))


def codes(result, severity=None):
    return [r.code for r in result.reasons if severity is None or r.severity == severity]


# --- baseline -----------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
def test_clean_trd_case_is_eligible_on_every_route(route):
    result = run(route=route)
    assert result.decision == "eligible"
    assert result.trd is True
    assert result.adequate_failed_trials == 2
    assert codes(result, "absolute") == []
    assert codes(result, "review") == []
    assert "trd_met" in codes(result, "info")


# --- every condition on every route --------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("condition", sorted(EXPECTED_CONDITION_SEVERITY))
def test_every_condition_on_every_route(route, condition):
    result = run(route=route, conditions=[condition])
    racemic_sev, esk_sev = EXPECTED_CONDITION_SEVERITY[condition]
    expected = esk_sev if route == "esketamine-nasal" else racemic_sev
    matching = [r for r in result.reasons if r.code == condition]
    assert len(matching) == 1
    reason = matching[0]
    assert reason.severity == expected
    assert reason.message.strip()
    assert "clinical-reference.md" in reason.source
    assert result.decision == ("ineligible" if expected == "absolute" else "review")


@pytest.mark.parametrize(
    "condition",
    [
        "aneurysmal_vascular_disease",
        "arteriovenous_malformation",
        "intracerebral_hemorrhage_history",
    ],
)
def test_bp_hazard_conditions_cite_label_for_esketamine_and_bp_rule_for_racemic(condition):
    esk = run(route="esketamine-nasal", conditions=[condition])
    iv = run(route="iv-ketamine", conditions=[condition])
    assert "Spravato" in esk.reasons[0].source
    assert "significant rise in blood pressure" in iv.reasons[0].source


def test_schizophrenia_sources_differ_by_route():
    iv = run(conditions=["schizophrenia"])
    esk = run(route="esketamine-nasal", conditions=["schizophrenia"])
    assert "Emergency medicine guidance" in iv.reasons[0].source
    assert "Not an esketamine label contraindication" in esk.reasons[0].source


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("med", MEDICATION_CLASSES)
def test_every_medication_class_on_every_route_needs_review(route, med):
    result = run(route=route, medication_classes=[med])
    assert result.decision == "review"
    reason = next(r for r in result.reasons if r.code == f"medication_{med}")
    assert reason.severity == "review"
    assert "section 4" in reason.source


def test_medication_messages_say_why():
    msgs = {r.code: r.message for r in run(medication_classes=MEDICATION_CLASSES).reasons}
    assert "CNS depressant" in msgs["medication_benzodiazepine"]
    assert "blunt" in msgs["medication_benzodiazepine"]
    assert "CNS depressant" in msgs["medication_sedative_hypnotic"]
    assert "CNS depressant" in msgs["medication_opioid"]
    assert "blood pressure" in msgs["medication_psychostimulant"]
    assert "blood pressure" in msgs["medication_maoi"]


def test_absolute_beats_review_and_reasons_are_sorted():
    result = run(
        conditions=["pregnancy", "hypersensitivity_ketamine"], medication_classes=["opioid"]
    )
    assert result.decision == "ineligible"
    sev = [r.severity for r in result.reasons]
    assert sev == sorted(sev, key=["absolute", "review", "info"].index)
    assert sev[0] == "absolute"
    assert {"pregnancy", "medication_opioid"} <= set(codes(result, "review"))


def test_all_reasons_reported_not_just_the_first():
    result = run(
        conditions=list(EXPECTED_CONDITION_SEVERITY), medication_classes=MEDICATION_CLASSES
    )
    assert set(EXPECTED_CONDITION_SEVERITY) <= set(codes(result))
    assert {f"medication_{m}" for m in MEDICATION_CLASSES} <= set(codes(result))


# --- TRD counting ---------------------------------------------------------------------------


def test_one_adequate_failure_is_not_trd():
    result = run(antidepressant_trials=[trial("sertraline")])
    assert result.trd is False
    assert result.adequate_failed_trials == 1
    assert result.decision == "review"
    assert "not_trd" in codes(result, "review")


def test_intolerance_only_is_listed_but_does_not_count():
    result = run(
        antidepressant_trials=[
            trial("sertraline", outcome="intolerance"),
            trial("venlafaxine", outcome="intolerance"),
        ]
    )
    assert result.trd is False
    assert result.adequate_failed_trials == 0
    assert codes(result, "info").count("trial_intolerance") == 2


def test_trial_in_previous_episode_does_not_count():
    result = run(antidepressant_trials=[trial("sertraline"), trial("venlafaxine", current=False)])
    assert result.trd is False
    assert result.adequate_failed_trials == 1
    info = [r.message for r in result.reasons if r.code == "trial_not_counted"]
    assert any("previous episode" in m for m in info)


def test_inadequate_dose_does_not_count():
    result = run(antidepressant_trials=[trial("sertraline"), trial("venlafaxine", adequate=False)])
    assert result.trd is False
    assert any("dose was not adequate" in r.message for r in result.reasons)


def test_too_short_does_not_count():
    result = run(antidepressant_trials=[trial("sertraline"), trial("venlafaxine", weeks=5.9)])
    assert result.trd is False
    assert result.adequate_failed_trials == 1
    assert any("less than the clinic minimum of 6 weeks" in r.message for r in result.reasons)


def test_exactly_min_weeks_counts():
    result = run(
        antidepressant_trials=[trial("sertraline", weeks=6), trial("venlafaxine", weeks=6.0)]
    )
    assert result.trd is True
    assert result.adequate_failed_trials == 2


def test_partial_response_counts():
    result = run(
        antidepressant_trials=[
            trial("sertraline", outcome="partial_response"),
            trial("venlafaxine", outcome="partial_response"),
        ]
    )
    assert result.trd is True
    assert result.decision == "eligible"


def test_response_does_not_count():
    result = run(
        antidepressant_trials=[trial("sertraline"), trial("venlafaxine", outcome="response")]
    )
    assert result.trd is False
    assert any("responded" in r.message for r in result.reasons)


def test_same_drug_twice_counts_once():
    result = run(antidepressant_trials=[trial("Sertraline"), trial("sertraline ")])
    assert result.adequate_failed_trials == 1
    assert result.trd is False


def test_three_failures_counted():
    result = run(antidepressant_trials=[trial("a"), trial("b"), trial("c")])
    assert result.adequate_failed_trials == 3
    assert result.trd is True


def test_min_weeks_is_a_setting():
    data = case_dict(antidepressant_trials=[trial("a", weeks=4), trial("b", weeks=4)])
    assert el.evaluate(el.parse_case(data)).trd is False
    assert el.evaluate(el.parse_case(data), el.EligibilitySettings(trd_min_weeks=4)).trd is True
    assert el.DEFAULTS.trd_min_weeks == 6
    assert "4-6 weeks" in el.SETTING_SOURCES["trd_min_weeks"]


@pytest.mark.parametrize("route", ROUTES)
def test_not_trd_is_review_on_every_route(route):
    result = run(route=route, antidepressant_trials=[])
    reason = next(r for r in result.reasons if r.code == "not_trd")
    assert reason.severity == "review"
    assert result.decision == "review"
    if route == "esketamine-nasal":
        assert "suicidal ideation" in reason.message


# --- blood pressure and age -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("systolic", "diastolic", "raised"),
    [(140, 90, False), (141, 80, True), (120, 91, True), (139, 89, False), (140.5, 70, True)],
)
@pytest.mark.parametrize("route", ["iv-ketamine", "esketamine-nasal"])
def test_blood_pressure_above_label_example_needs_review(route, systolic, diastolic, raised):
    result = run(route=route, blood_pressure={"systolic": systolic, "diastolic": diastolic})
    assert ("blood_pressure_raised" in codes(result, "review")) is raised
    assert result.decision == ("review" if raised else "eligible")


def test_blood_pressure_threshold_is_a_setting():
    case = el.parse_case(case_dict(blood_pressure={"systolic": 135, "diastolic": 80}))
    assert el.evaluate(case).decision == "eligible"
    lowered = el.EligibilitySettings(bp_review_systolic=130)
    assert el.evaluate(case, lowered).decision == "review"


def test_missing_blood_pressure_is_info():
    data = case_dict()
    del data["blood_pressure"]
    result = el.evaluate(el.parse_case(data))
    assert result.decision == "eligible"
    assert "blood_pressure_missing" in codes(result, "info")


@pytest.mark.parametrize("route", ROUTES)
def test_under_adult_age_needs_review(route):
    assert "age_under_adult" in codes(run(route=route, age=17), "review")
    assert "age_under_adult" not in codes(run(route=route, age=18))


@pytest.mark.parametrize(
    ("route", "age", "expected"),
    [
        ("esketamine-nasal", 65, True),
        ("esketamine-nasal", 64, False),
        ("esketamine-nasal", 90, True),
        ("iv-ketamine", 70, False),
    ],
)
def test_age_65_esketamine_start_dose_info(route, age, expected):
    result = run(route=route, age=age)
    assert ("age_65_start_28mg" in codes(result, "info")) is expected
    assert result.decision == "eligible"
    if expected:
        reason = next(r for r in result.reasons if r.code == "age_65_start_28mg")
        assert "28 mg" in reason.message


def test_as_dict_shape():
    out = run(conditions=["pregnancy"]).as_dict()
    assert set(out) == {"decision", "trd", "adequate_failed_trials", "reasons"}
    assert out["decision"] == "review"
    assert out["trd"] is True
    assert out["adequate_failed_trials"] == 2
    for reason in out["reasons"]:
        assert set(reason) == {"code", "severity", "message", "source"}
    json.dumps(out)


# --- monotonicity property -----------------------------------------------------------------

trial_strategy = st.builds(
    trial,
    drug=st.sampled_from(["a", "b", "c"]),
    adequate=st.booleans(),
    weeks=st.integers(0, 12),
    current=st.booleans(),
    outcome=st.sampled_from(["no_response", "partial_response", "intolerance", "response"]),
)


@settings(max_examples=300, deadline=None)
@given(
    route=st.sampled_from(ROUTES),
    age=st.integers(1, 120),
    trials=st.lists(trial_strategy, max_size=4),
    conditions=st.sets(st.sampled_from(sorted(EXPECTED_CONDITION_SEVERITY))),
    meds=st.sets(st.sampled_from(MEDICATION_CLASSES)),
    bp=st.one_of(st.none(), st.tuples(st.integers(100, 200), st.integers(50, 99))),
    extra=st.one_of(
        st.tuples(st.just("conditions"), st.sampled_from(sorted(EXPECTED_CONDITION_SEVERITY))),
        st.tuples(st.just("medication_classes"), st.sampled_from(MEDICATION_CLASSES)),
    ),
)
def test_adding_a_condition_or_medication_never_makes_decision_more_permissive(
    route, age, trials, conditions, meds, bp, extra
):
    base = case_dict(
        route=route,
        age=age,
        antidepressant_trials=trials,
        conditions=sorted(conditions),
        medication_classes=sorted(meds),
        blood_pressure=None if bp is None else {"systolic": bp[0], "diastolic": bp[1]},
    )
    before = el.evaluate(el.parse_case(base))
    key, code = extra
    more = copy.deepcopy(base)
    if code not in more[key]:
        more[key].append(code)
    after = el.evaluate(el.parse_case(more))
    assert RANK[after.decision] >= RANK[before.decision]
    # and the added finding is always reported
    expected_code = code if key == "conditions" else f"medication_{code}"
    assert expected_code in codes(after)


# --- parsing --------------------------------------------------------------------------------


def _with_trial_field(i, key, value):
    data = case_dict()
    data["antidepressant_trials"][i][key] = value
    return data


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ([], "case"),
        (case_dict(route="ketamine-iv"), "route"),
        (case_dict(route=None), "route"),
        (case_dict(age=-1), "age"),
        (case_dict(age=121), "age"),
        (case_dict(age=40.5), "age"),
        (case_dict(age="40"), "age"),
        (case_dict(age=True), "age"),
        (case_dict(extra=1), "extra"),
        ({k: v for k, v in case_dict().items() if k != "conditions"}, "conditions"),
        ({k: v for k, v in case_dict().items() if k != "route"}, "route"),
        ({k: v for k, v in case_dict().items() if k != "age"}, "age"),
        (case_dict(conditions=["pregnant"]), "conditions[0]"),
        (case_dict(conditions=["pregnancy", "pregnancy"]), "conditions[1]"),
        (case_dict(conditions="pregnancy"), "conditions"),
        (case_dict(conditions=[1]), "conditions[0]"),
        (case_dict(medication_classes=["ssri"]), "medication_classes[0]"),
        (case_dict(antidepressant_trials={}), "antidepressant_trials"),
        (case_dict(antidepressant_trials=[trial(), "x"]), "antidepressant_trials[1]"),
        (_with_trial_field(1, "weeks", -1), "antidepressant_trials[1].weeks"),
        (_with_trial_field(1, "weeks", "6"), "antidepressant_trials[1].weeks"),
        (_with_trial_field(1, "weeks", float("nan")), "antidepressant_trials[1].weeks"),
        (_with_trial_field(1, "weeks", True), "antidepressant_trials[1].weeks"),
        (_with_trial_field(0, "outcome", "remission"), "antidepressant_trials[0].outcome"),
        (_with_trial_field(0, "adequate_dose", "yes"), "antidepressant_trials[0].adequate_dose"),
        (_with_trial_field(0, "current_episode", 1), "antidepressant_trials[0].current_episode"),
        (_with_trial_field(0, "drug", " "), "antidepressant_trials[0].drug"),
        (_with_trial_field(0, "dose_mg", 50), "antidepressant_trials[0].dose_mg"),
        (case_dict(blood_pressure={"systolic": 80, "diastolic": 80}), "blood_pressure.systolic"),
        (case_dict(blood_pressure={"systolic": 70, "diastolic": 90}), "blood_pressure.systolic"),
        (case_dict(blood_pressure={"systolic": 301, "diastolic": 90}), "blood_pressure.systolic"),
        (case_dict(blood_pressure={"systolic": 120, "diastolic": 19}), "blood_pressure.diastolic"),
        (case_dict(blood_pressure={"systolic": 120}), "blood_pressure.diastolic"),
        (case_dict(blood_pressure={"systolic": "120", "diastolic": 80}), "blood_pressure.systolic"),
        (
            case_dict(blood_pressure={"systolic": 120, "diastolic": 80, "hr": 70}),
            "blood_pressure.hr",
        ),
        (case_dict(blood_pressure=[120, 80]), "blood_pressure"),
    ],
)
def test_parse_errors_name_the_field(data, field):
    with pytest.raises(el.CaseError) as exc:
        el.parse_case(data)
    assert exc.value.field == field
    assert isinstance(exc.value, ValueError)
    assert field in str(exc.value)


def test_parse_missing_trial_field_is_named():
    data = case_dict()
    del data["antidepressant_trials"][1]["weeks"]
    with pytest.raises(el.CaseError) as exc:
        el.parse_case(data)
    assert exc.value.field == "antidepressant_trials[1].weeks"


def test_parse_accepts_edges():
    case = el.parse_case(case_dict(age=1, blood_pressure={"systolic": 300, "diastolic": 200}))
    assert case.age == 1
    assert el.parse_case(case_dict(age=120, blood_pressure=None)).blood_pressure is None


def test_direct_case_construction_is_validated():
    with pytest.raises(el.CaseError) as exc:
        el.Case(route="iv-ketamine", age=40, conditions=frozenset({"nope"}))
    assert exc.value.field == "conditions"
    with pytest.raises(el.CaseError):
        el.Case(route="nasal", age=40)


def test_settings_must_be_positive():
    with pytest.raises(ValueError):
        el.EligibilitySettings(trd_min_weeks=0)


# --- CLI -----------------------------------------------------------------------------------


def test_cli_check_file(tmp_path, capsys):
    path = tmp_path / "case.json"
    path.write_text(json.dumps(case_dict(conditions=["pregnancy"])))
    assert el.main(["check", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["decision"] == "review"
    assert out["reasons"][0]["code"] == "pregnancy"


def test_cli_check_stdin(monkeypatch, capsys):
    monkeypatch.setattr(
        "sys.stdin", io.StringIO(json.dumps(case_dict(conditions=["hypersensitivity_ketamine"])))
    )
    assert el.main(["check", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["decision"] == "ineligible"


def test_cli_invalid_case_names_field(tmp_path, capsys):
    data = case_dict()
    data["antidepressant_trials"][1]["weeks"] = -2
    path = tmp_path / "case.json"
    path.write_text(json.dumps(data))
    assert el.main(["check", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "antidepressant_trials[1].weeks" in captured.err


def test_cli_bad_json(tmp_path, capsys):
    path = tmp_path / "case.json"
    path.write_text("{not json")
    assert el.main(["check", str(path)]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_cli_missing_file(tmp_path, capsys):
    assert el.main(["check", str(tmp_path / "nope.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [[], ["check"], ["verify", "x.json"], ["check", "a", "b"]])
def test_cli_usage_errors(argv, capsys):
    assert el.main(argv) == 2
    assert "error" in capsys.readouterr().err


def test_cli_help_exits_zero(capsys):
    assert el.main(["--help"]) == 0
    assert "check" in capsys.readouterr().out


@pytest.mark.parametrize("age", [0, -1, 121, 10**20])
def test_implausible_ages_are_refused_naming_the_field(age):
    with pytest.raises(el.CaseError) as exc:
        el.parse_case(case_dict(age=age))
    assert exc.value.field == "age" and "between 1 and 120" in exc.value.message


def test_a_child_is_still_a_review_reason_not_a_refusal():
    result = el.evaluate(el.parse_case(case_dict(age=12)))
    assert result.decision == "review"
    assert "age_under_adult" in [r.code for r in result.reasons]
