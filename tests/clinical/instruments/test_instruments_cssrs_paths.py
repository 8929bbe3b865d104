"""C-SSRS screener: every answer path the branching permits, and every refused one."""

import itertools

import pytest

from ketaflow.clinical.instruments import ScoringError, score


def expected_risk(a):
    """Triage written out from the reference, independently of the package."""
    if a.get("4") == "yes" or a.get("5") == "yes" or a.get("6b") == "yes":
        return "high"
    if a.get("3") == "yes" or (a.get("6") == "yes" and a.get("6b") == "no"):
        return "moderate"
    if a.get("1") == "yes" or a.get("2") == "yes":
        return "low"
    return "none"


def all_paths():
    yn = ("yes", "no")
    paths = []
    for q1, q2, q6 in itertools.product(yn, yn, yn):
        mids = itertools.product(yn, yn, yn) if q2 == "yes" else [None]
        for mid in mids:
            tails = yn if q6 == "yes" else [None]
            for q6b in tails:
                a = {"1": q1, "2": q2, "6": q6}
                if mid is not None:
                    a.update(dict(zip(("3", "4", "5"), mid, strict=True)))
                if q6b is not None:
                    a["6b"] = q6b
                paths.append(a)
    return paths


PATHS = all_paths()


def test_path_count():
    # q1 (2) × [q2 no (1) + q2 yes × 3,4,5 (8)] × [q6 no (1) + q6 yes × 6b (2)]
    assert len(PATHS) == 2 * 9 * 3 == 54


@pytest.mark.parametrize("answers", PATHS, ids=lambda a: ",".join(f"{k}={v}" for k, v in a.items()))
def test_every_permitted_path(answers):
    r = score("cssrs", answers)
    assert r.risk == expected_risk(answers)
    assert r.total is None and r.severity is None
    # Every yes reaches a clinician, item 1 (wish to be dead) included.
    suicidal = any(answers.get(k) == "yes" for k in ("1", "2", "3", "4", "5", "6"))
    assert ("suicidality" in r.flags) is suicidal
    assert r.items == answers


@pytest.mark.parametrize(
    ("answers", "risk"),
    [
        ({"1": "no", "2": "no", "6": "no"}, "none"),
        ({"1": "yes", "2": "no", "6": "no"}, "low"),
        ({"1": "no", "2": "yes", "3": "no", "4": "no", "5": "no", "6": "no"}, "low"),
        ({"1": "yes", "2": "yes", "3": "yes", "4": "no", "5": "no", "6": "no"}, "moderate"),
        ({"1": "no", "2": "no", "6": "yes", "6b": "no"}, "moderate"),
        ({"1": "yes", "2": "yes", "3": "yes", "4": "yes", "5": "no", "6": "no"}, "high"),
        ({"1": "yes", "2": "yes", "3": "no", "4": "no", "5": "yes", "6": "no"}, "high"),
        ({"1": "no", "2": "no", "6": "yes", "6b": "yes"}, "high"),
    ],
)
def test_named_triage_examples(answers, risk):
    assert score("cssrs", answers).risk == risk


def test_item1_alone_stays_low_risk_but_is_flagged_for_a_clinician():
    r = score("cssrs", {"1": "yes", "2": "no", "6": "no"})
    assert (r.risk, r.flags) == ("low", ("suicidality",))


@pytest.mark.parametrize("key", ["3", "4", "5"])
@pytest.mark.parametrize("value", ["yes", "no"])
def test_3_4_5_refused_when_2_is_no(key, value):
    with pytest.raises(ScoringError) as exc:
        score("cssrs", {"1": "no", "2": "no", key: value, "6": "no"})
    assert exc.value.item == key
    assert "item 2 is yes" in str(exc.value)


@pytest.mark.parametrize("value", ["yes", "no"])
def test_6b_refused_when_6_is_no(value):
    with pytest.raises(ScoringError) as exc:
        score("cssrs", {"1": "no", "2": "no", "6": "no", "6b": value})
    assert exc.value.item == "6b"


@pytest.mark.parametrize("key", ["3", "4", "5"])
def test_3_4_5_required_when_2_is_yes(key):
    answers = {"1": "no", "2": "yes", "3": "no", "4": "no", "5": "no", "6": "no"}
    del answers[key]
    with pytest.raises(ScoringError) as exc:
        score("cssrs", answers)
    assert exc.value.item == key
    assert "missing" in str(exc.value)


def test_6b_required_when_6_is_yes():
    with pytest.raises(ScoringError) as exc:
        score("cssrs", {"1": "no", "2": "no", "6": "yes"})
    assert exc.value.item == "6b"


@pytest.mark.parametrize("key", ["1", "2", "6"])
def test_always_asked_items_are_required(key):
    answers = {"1": "no", "2": "no", "6": "no"}
    del answers[key]
    with pytest.raises(ScoringError) as exc:
        score("cssrs", answers)
    assert exc.value.item == key


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [("YES", "yes"), (" No ", "no"), ("Yes", "yes"), (True, "yes"), (False, "no")],
)
def test_yes_no_spellings_accepted(raw, normalised):
    r = score("cssrs", {"1": raw, "2": "no", "6": "no"})
    assert r.items["1"] == normalised


@pytest.mark.parametrize("raw", [1, 0, "1", "0", "y", "n", "true", "", "maybe", 2.0])
def test_other_answers_refused(raw):
    with pytest.raises(ScoringError) as exc:
        score("cssrs", {"1": "no", "2": raw, "6": "no"})
    assert exc.value.item == "2"
    assert "yes or no" in str(exc.value)
