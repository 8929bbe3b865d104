"""Outcome rules: change, response, partial response, remission, reliable change,
baseline selection, rapid response and relapse."""

from datetime import UTC, datetime, timedelta

import pytest

from ketaflow.clinical.instruments import baseline_of, compare, evaluate_series, get

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # first treatment (synthetic)


def h(hours):
    return T0 + timedelta(hours=hours)


def test_phq9_response_example_text():
    o = compare("phq9", 18, 8)
    assert o.change == -10
    assert o.percent_change == pytest.approx(-55.5556, abs=1e-3)
    assert o.response is True
    assert o.partial_response is False
    assert o.rules["response"] == "Response: PHQ-9 fell ≥50% from baseline 18 to 8 (−56%)"


@pytest.mark.parametrize(
    ("baseline", "follow", "response", "partial"),
    [
        (20, 10, True, False),  # exactly 50%: response
        (20, 11, False, True),  # 45%
        (20, 15, False, True),  # exactly 25%: partial
        (20, 16, False, False),  # 20%
        (20, 0, True, False),
        (20, 20, False, False),
        (10, 27, False, False),  # worse
        (19, 9, True, False),  # 52.6%
        (19, 10, False, True),  # 47.4%
        (17, 13, False, False),  # 23.5%
        (17, 12, False, True),  # 29.4%
    ],
)
def test_response_and_partial_edges(baseline, follow, response, partial):
    o = compare("phq9", baseline, follow)
    assert (o.response, o.partial_response) == (response, partial)


def test_response_undefined_from_zero_baseline():
    o = compare("phq9", 0, 0)
    assert o.percent_change is None
    assert o.response is None and o.partial_response is None
    assert "baseline is 0" in o.rules["response"]


@pytest.mark.parametrize(("follow", "remission"), [(4, True), (5, False), (0, True)])
def test_phq9_remission_below_5(follow, remission):
    o = compare("phq9", 20, follow)
    assert o.remission is remission
    assert "below 5" in o.rules["remission"]


@pytest.mark.parametrize(("follow", "remission"), [(5, True), (6, False)])
def test_qids_remission_5_or_less(follow, remission):
    assert compare("qids-sr16", 20, follow).remission is remission


@pytest.mark.parametrize(
    ("follow", "cutoff", "remission"),
    [(10, None, True), (11, None, False), (12, 12, True), (13, 12, False), (11, 10, False)],
)
def test_madrs_remission_setting(follow, cutoff, remission):
    o = compare("madrs", 30, follow, remission_cutoff=cutoff)
    assert o.remission is remission
    assert f"total {cutoff or 10} or less" in o.rules["remission"]
    assert "clinic setting" in o.rules["remission"]


def test_fixed_remission_cutoff_cannot_be_changed():
    with pytest.raises(ValueError, match="fixed"):
        compare("phq9", 20, 4, remission_cutoff=6)
    with pytest.raises(ValueError, match="no documented remission"):
        compare("gad7", 20, 4, remission_cutoff=6)


@pytest.mark.parametrize(
    ("baseline", "follow", "improve", "worse"),
    [(18, 12, True, False), (18, 13, False, False), (12, 18, False, True), (12, 17, False, False)],
)
def test_phq9_reliable_change_6(baseline, follow, improve, worse):
    o = compare("phq9", baseline, follow)
    assert (o.reliable_improvement, o.reliable_deterioration) == (improve, worse)


@pytest.mark.parametrize(
    ("baseline", "follow", "improve", "worse"),
    [(15, 11, True, False), (15, 12, False, False), (5, 9, False, True)],
)
def test_gad7_reliable_change_4_and_no_response_rule(baseline, follow, improve, worse):
    o = compare("gad7", baseline, follow)
    assert (o.reliable_improvement, o.reliable_deterioration) == (improve, worse)
    assert o.response is None and o.remission is None
    assert o.rules["response"] == "No response rule is documented for GAD-7"


@pytest.mark.parametrize(
    ("baseline", "follow", "improve", "worse"),
    [
        (40, 52, True, False),  # +12 >= 10
        (40, 48, False, False),  # +8 < 10
        (60, 48, False, True),  # -12
        (60, 52, False, False),  # -8
    ],
)
def test_who5_higher_is_better_meaningful_change(baseline, follow, improve, worse):
    # WHO-5 percentages move in steps of 4.
    o = compare("who5", baseline, follow)
    assert (o.reliable_improvement, o.reliable_deterioration) == (improve, worse)
    assert o.response is None and o.partial_response is None and o.remission is None


def test_who5_plus_12_is_meaningful_improvement_text():
    o = compare("who5", 40, 52)
    assert o.reliable_improvement is True
    assert o.rules["reliable_change"] == (
        "Reliable improvement: WHO-5 rose 12 percentage points from baseline 40 to 52 "
        "(threshold 10 percentage points)"
    )


def test_pcl5_reliable_change_needs_a_clinic_threshold():
    o = compare("pcl5", 50, 40)
    assert o.reliable_improvement is None
    assert "5-10" in o.rules["reliable_change"]
    assert compare("pcl5", 50, 40, reliable_change_threshold=10).reliable_improvement is True
    assert compare("pcl5", 50, 41, reliable_change_threshold=10).reliable_improvement is False
    assert compare("pcl5", 50, 45, reliable_change_threshold=5).reliable_improvement is True
    for bad in (4, 11):
        with pytest.raises(ValueError, match="5-10"):
            compare("pcl5", 50, 40, reliable_change_threshold=bad)


def test_fixed_reliable_change_cannot_be_changed():
    with pytest.raises(ValueError, match="fixed"):
        compare("phq9", 20, 10, reliable_change_threshold=5)


@pytest.mark.parametrize(("baseline", "follow"), [(-1, 0), (0, 28), (True, 1), (1.0, 1)])
def test_totals_outside_range_refused(baseline, follow):
    with pytest.raises(ValueError):
        compare("phq9", baseline, follow)


def test_cssrs_has_no_outcomes():
    with pytest.raises(ValueError, match="no total"):
        compare("cssrs", 0, 0)


def test_compare_accepts_instrument_object():
    assert compare(get("phq9"), 18, 8).response is True


# --- baseline and time series -------------------------------------------------


def test_baseline_is_last_score_before_first_treatment():
    scores = [(h(-72), 22), (h(-1), 18), (h(2), 10), (h(-24), 20)]
    assert baseline_of(scores, T0) == (h(-1), 18)
    assert baseline_of([(h(1), 5)], T0) is None
    assert baseline_of([(T0, 17), (h(-2), 20)], T0) == (T0, 17)


def test_series_rapid_response_and_relapse():
    scores = [(h(-48), 20), (h(-2), 18), (h(4), 8), (h(72), 7), (h(240), 14), (h(300), 6)]
    s = evaluate_series("phq9", scores, T0)
    assert s.baseline == (h(-2), 18)
    assert [ts for ts, _ in s.points] == [h(4), h(72), h(240), h(300)]
    assert [o.response for _, o in s.points] == [True, True, False, True]
    assert s.first_response_at == h(4)
    assert s.rapid_response is True
    assert s.rules["rapid_response"].startswith("Rapid response: Response: PHQ-9 fell ≥50%")
    assert "4 h after" in s.rules["rapid_response"]
    assert s.relapse is True
    assert s.relapsed_at == h(240)
    assert "Relapse" in s.rules["relapse"]


@pytest.mark.parametrize(("hours", "rapid"), [(24, True), (24.01, None)])
def test_rapid_response_window_is_24_hours(hours, rapid):
    s = evaluate_series("phq9", [(h(-1), 20), (h(hours), 8)], T0)
    assert s.rapid_response is rapid
    assert s.first_response_at == h(hours)


def test_no_rapid_response_when_early_scores_do_not_respond():
    s = evaluate_series("phq9", [(h(-1), 20), (h(3), 15), (h(100), 8)], T0)
    assert s.rapid_response is False
    assert s.first_response_at == h(100)
    assert s.relapse is False


def test_relapse_does_not_apply_without_response():
    s = evaluate_series("phq9", [(h(-1), 20), (h(3), 15), (h(100), 12)], T0)
    assert s.relapse is None
    assert s.first_response_at is None


def test_series_without_baseline():
    s = evaluate_series("phq9", [(h(3), 15)], T0)
    assert s.baseline is None and s.points == ()
    assert s.rapid_response is None and s.relapse is None
    assert "No PHQ-9 baseline" in s.rules["baseline"]


def test_series_for_instrument_without_response_rule():
    s = evaluate_series("gad7", [(h(-1), 15), (h(3), 5)], T0)
    assert s.rapid_response is None and s.relapse is None
    assert s.points[0][1].reliable_improvement is True
