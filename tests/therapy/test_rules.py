"""Property tests of the small rules: consent status and measured goal targets."""

import datetime

from hypothesis import given
from hypothesis import strategies as st

from ketaflow.therapy.models import Goal, OutsideClinician

days = st.dates(min_value=datetime.date(2020, 1, 1), max_value=datetime.date(2030, 12, 31))


@given(today=days, given_on=st.none() | days, expires=st.none() | days, withdrawn=st.none() | days)
def test_consent_is_valid_exactly_when_given_in_force_and_not_withdrawn(
    today, given_on, expires, withdrawn
):
    c = OutsideClinician(
        consent_given_on=given_on, consent_expires_on=expires, consent_withdrawn_on=withdrawn
    )
    valid = (
        given_on is not None
        and given_on <= today
        and (expires is None or today <= expires)
        and (withdrawn is None or withdrawn > today)
    )
    assert (c.consent_status(today) == "valid") is valid
    if given_on is None:
        assert c.consent_status(today) == "none"


@given(total=st.integers(0, 60), threshold=st.integers(0, 60))
def test_goal_comparators(total, threshold):
    expected = {
        "lt": total < threshold,
        "le": total <= threshold,
        "ge": total >= threshold,
        "gt": total > threshold,
    }
    for comp, want in expected.items():
        assert Goal(comparator=comp, threshold=threshold).met_by(total) is want
    assert Goal(comparator="", threshold=threshold).met_by(total) is None
    assert Goal(comparator="lt", threshold=None).met_by(total) is None
    assert Goal(comparator="lt", threshold=threshold).met_by(None) is None
