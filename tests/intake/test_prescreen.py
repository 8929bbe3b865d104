import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketaflow.intake.prescreen import LIKELY, NOT_SUITABLE, REVIEW, summarise

YNU = st.sampled_from(["yes", "no", "unsure"])
answers = st.fixed_dictionaries(
    {
        "seeking": st.lists(
            st.sampled_from(["depression", "anxiety", "ptsd", "bipolar_depression", "other"]),
            min_size=1,
            unique=True,
        ),
        "diagnosed_depression": YNU,
        "antidepressants_tried": st.integers(0, 30),
        "antidepressant_helped": YNU,
        "antidepressant_intolerance": YNU,
        "pregnant": YNU,
        "heart_bp": YNU,
        "psychosis_mania": YNU,
        "substance_use": YNU,
    }
)


@given(answers, st.one_of(st.none(), st.integers(0, 3)))
def test_summary_properties(data, item9):
    result = summarise(data, phq9_item9=item9)
    assert result.reasons  # a summary always says why
    assert result.urgent == (item9 is not None and item9 > 0)
    if data["antidepressants_tried"] == 0:
        assert result.level == NOT_SUITABLE
    warnings = any(
        data[k] in ("yes", "unsure")
        for k in ("pregnant", "heart_bp", "psychosis_mania", "substance_use")
    )
    if result.level == LIKELY:
        assert not warnings and data["antidepressants_tried"] >= 2 and not result.urgent
        assert data["diagnosed_depression"] == "yes"
    if warnings and result.level != NOT_SUITABLE:
        assert result.level == REVIEW


def test_examples():
    base = {
        "seeking": ["depression"],
        "diagnosed_depression": "yes",
        "antidepressants_tried": 3,
        "antidepressant_helped": "no",
        "pregnant": "no",
        "heart_bp": "no",
        "psychosis_mania": "no",
        "substance_use": "no",
    }
    assert summarise(base).level == LIKELY
    assert summarise({**base, "heart_bp": "yes"}).level == REVIEW
    assert "blood-pressure" in summarise({**base, "heart_bp": "yes"}).reasons[0]
    assert summarise({**base, "antidepressants_tried": 0}).level == NOT_SUITABLE
    assert (
        summarise({**base, "seeking": ["anxiety"], "diagnosed_depression": "no"}).level
        == NOT_SUITABLE
    )
    urgent = summarise(base, phq9_item9=1)
    assert urgent.urgent and urgent.level == REVIEW


@pytest.mark.parametrize(("item9", "urgency"), [(1, "same day"), (2, "urgent"), (3, "immediate")])
def test_item9_reason_gives_the_urgency_of_the_suicidality_table(item9, urgency):
    """The queue's urgent mark and its reason come from the same table as the chart's
    alerts, and say that converting the request flags the patient."""
    base = {
        "seeking": ["depression"],
        "diagnosed_depression": "yes",
        "antidepressants_tried": 3,
        "antidepressant_helped": "no",
    }
    result = summarise(base, phq9_item9=item9)
    reason = next(r for r in result.reasons if "item 9" in r)
    assert result.urgent and f"answered {item9}" in reason and f": {urgency}," in reason
    assert "risk flag" in reason
    assert not summarise(base, phq9_item9=0).urgent
