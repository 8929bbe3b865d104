"""Property-based tests: any valid answer set scores within range; every missing,
unknown, out-of-range or non-integer answer is refused naming the right item."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ketaflow.clinical.instruments import ScoringError, get, score

NUMERIC = ["phq9", "gad7", "who5", "qids-sr16", "pcl5", "madrs", "wsas", "moaas", "cadss", "bprs-positive"]  # fmt: skip
QIDS_APPETITE_WEIGHT = ("6", "7", "8", "9")

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def valid_answers(draw, code):
    inst = get(code)
    answers = {}
    for item in inst.items:
        value = draw(st.sampled_from(item.values))
        if not item.required and draw(st.booleans()):
            continue
        answers[item.key] = value if draw(st.booleans()) else str(value)
    if code == "qids-sr16":  # exactly one answer of each pair 6/7 and 8/9
        for pair in (("6", "7"), ("8", "9")):
            for key in pair:
                answers.pop(key, None)
            answers[draw(st.sampled_from(pair))] = draw(st.integers(0, 3))
    return answers


def expected_total(code, answers):
    """Independent re-statement of each instrument's total."""
    v = {k: int(x) for k, x in answers.items() if x != "na"}  # WSAS item 1 not applicable
    if code == "qids-sr16":
        return (
            max(v[k] for k in ("1", "2", "3", "4"))
            + v["5"]
            + max(v[k] for k in QIDS_APPETITE_WEIGHT if k in v)
            + sum(v[k] for k in ("10", "11", "12", "13", "14"))
            + max(v["15"], v["16"])
        )
    total = sum(x for k, x in v.items() if k != "difficulty")
    return total * 4 if code == "who5" else total


@pytest.mark.parametrize("code", NUMERIC)
def test_totals_in_range_and_bands_consistent(code):
    inst = get(code)

    @SETTINGS
    @given(valid_answers(code))
    def check(answers):
        r = score(code, answers)
        lo, hi = inst.score_range
        assert lo <= r.total <= hi
        assert r.total == expected_total(code, answers)
        bands = [b.label for b in inst.bands if b.low <= r.total <= b.high]
        assert r.severity == (bands[0] if bands else None)
        assert all(isinstance(x, int) or x == "na" for x in r.items.values())

    check()


@pytest.mark.parametrize("code", NUMERIC)
def test_missing_required_item_is_named(code):
    inst = get(code)
    required = [i.key for i in inst.items if i.required]

    @SETTINGS
    @given(valid_answers(code), st.sampled_from(required))
    def check(answers, missing):
        answers = dict(answers)
        answers.pop(missing)
        with pytest.raises(ScoringError) as exc:
            score(code, answers)
        assert exc.value.item == missing
        assert "missing" in str(exc.value)

    check()


@pytest.mark.parametrize("code", [*NUMERIC, "cssrs"])
def test_unknown_item_is_named(code):
    inst = get(code)
    keys = st.one_of(
        st.text(min_size=0, max_size=6),
        st.integers(-5, 100).map(str),
    ).filter(lambda k: k not in inst.item_keys)

    @SETTINGS
    @given(keys)
    def check(key):
        answers = {"1": "no", "2": "no", "6": "no"} if code == "cssrs" else {}
        answers[key] = 1
        with pytest.raises(ScoringError) as exc:
            score(code, answers)
        assert exc.value.item == key
        assert "unknown item" in str(exc.value)

    check()


@pytest.mark.parametrize("code", NUMERIC)
def test_out_of_range_value_is_named(code):
    inst = get(code)

    @SETTINGS
    @given(
        valid_answers(code),
        st.sampled_from(inst.items),
        st.integers(-1000, 1000),
        st.booleans(),
    )
    def check(answers, item, bad, as_text):
        if bad in item.values:
            bad = max(x for x in item.values if isinstance(x, int)) + 1 + abs(bad)
        answers = dict(answers) | {item.key: str(bad) if as_text else bad}
        with pytest.raises(ScoringError) as exc:
            score(code, answers)
        assert exc.value.item == item.key
        assert "out of range" in str(exc.value)

    check()


NON_INTEGERS = st.one_of(
    st.floats(allow_nan=True),
    st.booleans(),
    st.text().filter(
        lambda s: not s.strip().lstrip("+-").isascii() or not s.strip().lstrip("+-").isdigit()
    ),
    st.lists(st.integers(), max_size=2),
)


@pytest.mark.parametrize("code", NUMERIC)
def test_non_integer_value_is_named(code):
    inst = get(code)

    @SETTINGS
    @given(valid_answers(code), st.sampled_from(inst.items), NON_INTEGERS)
    def check(answers, item, bad):
        if isinstance(bad, str) and bad.strip().lower() in item.value_set:
            return  # a named answer of the item (WSAS item 1 "na")
        answers = dict(answers) | {item.key: bad}
        with pytest.raises(ScoringError) as exc:
            score(code, answers)
        assert exc.value.item == item.key
        assert "not an integer" in str(exc.value)

    check()


@pytest.mark.parametrize("raw", ["1.0", "1.5", "one", "", " ", "²", "١", "0x1", "1e0", 1.0])
def test_specific_non_integers_refused(raw):
    with pytest.raises(ScoringError) as exc:
        score("gad7", {"1": raw, **{str(k): 0 for k in range(2, 8)}})
    assert exc.value.item == "1"


@pytest.mark.parametrize(("raw", "value"), [("2", 2), (" 3 ", 3), ("+1", 1), ("0", 0), (2, 2)])
def test_digit_strings_accepted(raw, value):
    r = score("gad7", {"1": raw, **{str(k): 0 for k in range(2, 8)}})
    assert r.items["1"] == value
    assert r.total == value


def test_none_counts_as_not_answered():
    answers = {str(k): 0 for k in range(1, 10)} | {"difficulty": None}
    assert "difficulty" not in score("phq9", answers).items
    answers["3"] = None
    with pytest.raises(ScoringError) as exc:
        score("phq9", answers)
    assert exc.value.item == "3"


def test_int_keys_are_accepted_as_item_numbers():
    assert score("gad7", {k: 1 for k in range(1, 8)}).total == 7


def test_difficulty_out_of_range_refused():
    with pytest.raises(ScoringError) as exc:
        score("phq9", {str(k): 0 for k in range(1, 10)} | {"difficulty": 4})
    assert exc.value.item == "difficulty"


def test_scoring_error_is_value_error_with_item():
    err = ScoringError("9", "missing")
    assert isinstance(err, ValueError)
    assert err.item == "9"
    assert "item 9" in str(err)


def test_answers_must_be_a_mapping():
    with pytest.raises(TypeError):
        score("phq9", [("1", 0)])
