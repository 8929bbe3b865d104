"""The suicidality table: every suicidality item of every instrument alerts, at its urgency.

These tests iterate all instrument definitions, so an instrument added later with a
suicide or self-harm item cannot be left out of the table."""

import itertools
import re

import pytest

from ketaflow.clinical.instruments import all_instruments, get, score, suicidality
from ketaflow.clinical.instruments.suicidality import (
    IMMEDIATE,
    RULES,
    RULES_BY_KEY,
    SAME_DAY,
    URGENCIES,
    URGENT,
    OverrideError,
    evaluate,
    validate_overrides,
    worst,
)

from .test_instruments_cssrs_paths import PATHS

# Words of an item that asks about death, suicide or self-harm (published item texts and
# item names). An item whose text matches must be marked ``suicidality`` and be in RULES.
SUICIDAL_WORDS = re.compile(
    r"suicid|dead\b|death|kill(ing)? yourself|hurting yourself|end your life|self-harm",
    re.IGNORECASE,
)


def suicidality_items():
    return [(i, it) for i in all_instruments() for it in i.items if it.suicidality]


def test_every_item_that_asks_about_suicide_is_marked_and_in_the_table():
    for inst in all_instruments():
        for item in inst.items:
            if SUICIDAL_WORDS.search(item.text):
                assert item.suicidality, f"{inst.code} item {item.key} is not marked"
            if item.suicidality:
                assert f"{inst.code}:{item.key}" in RULES_BY_KEY, (inst.code, item.key)


def test_every_endorsed_answer_of_every_suicidality_item_has_an_urgency():
    for inst, item in suicidality_items():
        rule = RULES_BY_KEY[f"{inst.code}:{item.key}"]
        endorsed = suicidality.endorsed_answers(inst, item.key)
        assert endorsed, (inst.code, item.key)
        assert sorted(map(str, (lv.answer for lv in rule.levels))) == sorted(map(str, endorsed))
        for level in rule.levels:
            assert level.urgency in URGENCIES
            assert level.source  # every urgency says where it comes from
        # 0 / "no" never alerts
        for value in item.values:
            if value not in endorsed:
                assert rule.level(value) is None


def test_every_rule_names_a_real_suicidality_item():
    for rule in RULES:
        inst = get(rule.instrument)
        assert inst.item(rule.item).suicidality, rule.key


def test_the_instruments_named_by_the_issue_are_covered():
    keys = set(RULES_BY_KEY)
    assert {"phq9:9", "qids-sr16:12", "madrs:10"} <= keys
    assert {f"cssrs:{k}" for k in ("1", "2", "3", "4", "5", "6", "6b")} <= keys


@pytest.mark.parametrize(("code", "item"), [("phq9", "9"), ("qids-sr16", "12"), ("madrs", "10")])
def test_urgency_never_falls_as_the_answer_rises(code, item):
    rule = RULES_BY_KEY[f"{code}:{item}"]
    ranks = [suicidality.rank(lv.urgency) for lv in sorted(rule.levels, key=lambda lv: lv.answer)]
    assert ranks == sorted(ranks)
    assert ranks[0] >= suicidality.rank(SAME_DAY)  # PHQ-9 guidance: at least same day


@pytest.mark.parametrize(
    ("answer", "urgency"), [(0, None), (1, SAME_DAY), (2, URGENT), (3, IMMEDIATE)]
)
def test_phq9_item9_urgency_rises_with_the_answer(answer, urgency):
    answers = {str(k): 0 for k in range(1, 9)} | {"9": answer}
    found = evaluate("phq9", score("phq9", answers).items)
    assert (found[0].urgency if found else None) == urgency
    assert ("suicidality" in score("phq9", answers).flags) is (urgency is not None)


@pytest.mark.parametrize(
    ("answer", "urgency"), [(0, None), (1, SAME_DAY), (2, URGENT), (3, IMMEDIATE)]
)
def test_qids_item12_urgency(answer, urgency):
    answers = {str(k): 0 for k in range(1, 17) if k not in (7, 9)} | {"12": answer}
    found = evaluate("qids-sr16", score("qids-sr16", answers).items)
    assert (found[0].urgency if found else None) == urgency


@pytest.mark.parametrize(
    ("score_10", "urgency"),
    [(0, None), (1, SAME_DAY), (2, SAME_DAY), (3, URGENT), (4, URGENT), (5, IMMEDIATE), (6, IMMEDIATE)],
)  # fmt: skip
def test_madrs_item10_urgency(score_10, urgency):
    answers = {str(k): 0 for k in range(1, 10)} | {"10": score_10}
    result = score("madrs", answers)
    found = evaluate("madrs", result.items)
    assert (found[0].urgency if found else None) == urgency
    assert ("suicidality" in result.flags) is (urgency is not None)


def test_cssrs_item1_alone_stays_low_risk_but_reaches_a_clinician():
    result = score("cssrs", {"1": "yes", "2": "no", "6": "no"})
    found = evaluate("cssrs", result.items)
    assert result.risk == "low"
    assert [(e.item, e.urgency) for e in found] == [("1", SAME_DAY)]
    assert result.flags == ("suicidality",)


@pytest.mark.parametrize("answers", PATHS, ids=lambda a: ",".join(f"{k}={v}" for k, v in a.items()))
def test_cssrs_worst_urgency_agrees_with_the_screener_triage_on_every_path(answers):
    result = score("cssrs", answers)
    top = worst(evaluate("cssrs", result.items))
    band = suicidality.CSSRS_BAND_OF_URGENCY[top.urgency] if top else "none"
    assert band == result.risk
    # every yes is in the list, none is lost behind the worst one
    yes = sorted(k for k, v in answers.items() if v == "yes")
    assert sorted(e.item for e in evaluate("cssrs", result.items)) == yes


def test_only_clinic_levels_can_be_overridden_and_never_below_same_day():
    assert validate_overrides({"phq9:9": {"1": "urgent", "2": "urgent"}}) == {
        "phq9:9": {"1": "urgent", "2": "urgent"}
    }
    answers = {str(k): 0 for k in range(1, 9)} | {"9": 1}
    found = evaluate("phq9", answers, {"phq9:9": {"1": "urgent"}})
    assert found[0].urgency == URGENT
    refused = [
        ({"cssrs:4": {"yes": "same_day"}}, "cssrs:4"),  # the screener's own triage
        ({"phq9:9": {"1": "none"}}, "phq9:9"),  # every endorsed answer alerts
        ({"phq9:9": {"0": "same_day"}}, "phq9:9"),  # 0 is not an endorsement
        ({"phq9:9": {"3": "same_day"}}, "phq9:9"),  # 3 less urgent than 2
        ({"gad7:1": {"1": "urgent"}}, "gad7:1"),
    ]
    for overrides, key in refused:
        with pytest.raises(OverrideError) as exc:
            validate_overrides(overrides)
        assert exc.value.key == key


def test_worst_takes_the_most_urgent_and_text_names_item_and_answer():
    result = score("cssrs", {"1": "yes", "2": "yes", "3": "no", "4": "yes", "5": "no", "6": "no"})
    found = evaluate("cssrs", result.items)
    top = worst(found)
    assert (top.item, top.urgency) == ("4", IMMEDIATE)
    assert top.text == "item 4 (active suicidal ideation with some intent to act) answered yes"
    assert worst(()) is None


def test_table_urgencies_are_ordered_least_to_most():
    assert URGENCIES == (SAME_DAY, URGENT, IMMEDIATE)
    for a, b in itertools.pairwise(URGENCIES):
        assert suicidality.rank(a) < suicidality.rank(b)
