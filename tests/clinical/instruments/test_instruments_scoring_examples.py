"""Worked examples and band edges for every instrument (expected values computed by
hand from the reference's scoring rules)."""

import pytest

from ketaflow.clinical.instruments import ScoringError, get, score


def fill(code, total, skip=()):
    """Answers whose plain sum is `total`, filling items in order with their maximum."""
    inst = get(code)
    answers = {}
    left = total
    for item in inst.scored_items:
        if item.key in skip:
            continue
        v = min(left, max(x for x in item.values if isinstance(x, int)))
        answers[item.key] = v
        left -= v
    assert left == 0, "total too large for this instrument"
    return answers


# --- PHQ-9 -------------------------------------------------------------------


def test_phq9_example_all_several_days():
    r = score("phq9", {str(k): 1 for k in range(1, 10)})
    assert (r.total, r.severity, r.flags) == (9, "mild", ("suicidality",))


def test_phq9_example_no_item9_no_flag_with_difficulty():
    answers = {"1": 3, "2": 3, "3": 2, "4": 2, "5": 1, "6": 1, "7": 0, "8": 0, "9": 0}
    answers["difficulty"] = 2
    r = score("phq9", answers)
    assert r.total == 12
    assert r.severity == "moderate"
    assert r.flags == ()
    assert r.items["difficulty"] == 2


def test_phq9_difficulty_is_not_scored():
    base = {str(k): 1 for k in range(1, 10)}
    assert score("phq9", {**base, "difficulty": 3}).total == score("phq9", base).total == 9


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "minimal"),
        (4, "minimal"),
        (5, "mild"),
        (9, "mild"),
        (10, "moderate"),
        (14, "moderate"),
        (15, "moderately severe"),
        (19, "moderately severe"),
        (20, "severe"),
        (27, "severe"),
    ],
)
def test_phq9_band_edges(total, band):
    # Fill items 1-8 first so item 9 stays 0 unless needed.
    r = score("phq9", fill("phq9", total))
    assert (r.total, r.severity) == (total, band)


@pytest.mark.parametrize(("item9", "flagged"), [(0, False), (1, True), (2, True), (3, True)])
def test_phq9_item9_flags_suicidality(item9, flagged):
    answers = {str(k): 0 for k in range(1, 9)} | {"9": item9}
    r = score("phq9", answers)
    assert ("suicidality" in r.flags) is flagged
    assert r.total == item9


# --- GAD-7 -------------------------------------------------------------------


def test_gad7_example():
    r = score("gad7", {"1": 2, "2": 2, "3": 1, "4": 3, "5": 0, "6": 1, "7": 2, "difficulty": 1})
    assert (r.total, r.severity, r.flags) == (11, "moderate", ())


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "minimal"),
        (4, "minimal"),
        (5, "mild"),
        (9, "mild"),
        (10, "moderate"),
        (14, "moderate"),
        (15, "severe"),
        (21, "severe"),
    ],
)
def test_gad7_band_edges(total, band):
    r = score("gad7", fill("gad7", total))
    assert (r.total, r.severity) == (total, band)


# --- WHO-5 -------------------------------------------------------------------


def test_who5_total_is_percentage_and_raw_in_subscores():
    r = score("who5", {"1": 5, "2": 4, "3": 3, "4": 2, "5": 1})
    assert r.total == 60
    assert r.subscores == {"raw": 15}
    assert r.severity is None
    assert r.flags == ()


@pytest.mark.parametrize(
    ("raw", "percent", "flags"),
    [
        (0, 0, ("poor-wellbeing", "likely-depression")),
        (7, 28, ("poor-wellbeing", "likely-depression")),
        (8, 32, ("poor-wellbeing",)),
        (12, 48, ("poor-wellbeing",)),
        (13, 52, ()),
        (25, 100, ()),
    ],
)
def test_who5_threshold_edges(raw, percent, flags):
    r = score("who5", fill("who5", raw))
    assert r.subscores["raw"] == raw
    assert r.total == percent
    assert r.flags == flags


# --- QIDS-SR16 ---------------------------------------------------------------


def test_qids_example_domains_take_the_highest_item():
    answers = {
        "1": 1, "2": 3, "3": 0, "4": 2,  # sleep = 3
        "5": 2,  # sad mood
        "7": 1, "8": 2,  # appetite/weight = 2 (one answer of each pair 6/7, 8/9)
        "10": 1, "11": 2, "12": 0, "13": 1, "14": 3,
        "15": 1, "16": 2,  # psychomotor = 2
    }  # fmt: skip
    r = score("qids-sr16", answers)
    assert r.subscores == {
        "sleep": 3,
        "sad_mood": 2,
        "appetite_weight": 2,
        "concentration": 1,
        "view_of_self": 2,
        "thoughts_of_death_or_suicide": 0,
        "interest": 1,
        "energy": 3,
        "psychomotor": 2,
    }
    assert r.total == 16
    assert r.severity == "severe"
    assert r.flags == ()


def test_qids_all_items_max_is_27_not_48():
    r = score("qids-sr16", {str(k): 3 for k in range(1, 17) if k not in (7, 9)})
    assert r.total == 27
    assert r.severity == "very severe"
    assert r.flags == ("suicidality",)


def test_qids_one_appetite_and_one_weight_item_is_enough():
    answers = {str(k): 0 for k in range(1, 17) if k not in (7, 9)}
    answers["6"] = 2
    r = score("qids-sr16", answers)
    assert r.total == 2
    assert r.subscores["appetite_weight"] == 2


def test_qids_needs_an_appetite_and_a_weight_item():
    answers = {str(k): 0 for k in range(1, 17) if k not in (6, 7, 8, 9)}
    with pytest.raises(ScoringError) as exc:
        score("qids-sr16", answers)
    assert exc.value.item == "6"
    assert "6/7" in exc.value.message
    with pytest.raises(ScoringError) as exc:
        score("qids-sr16", answers | {"7": 1})
    assert exc.value.item == "8"
    assert "8/9" in exc.value.message


@pytest.mark.parametrize(("pair", "other"), [(("6", "7"), "8"), (("8", "9"), "6")])
def test_qids_refuses_both_answers_of_a_pair(pair, other):
    """The form asks for either 6 or 7 (not both) and either 8 or 9 (not both)."""
    answers = {str(k): 0 for k in range(1, 17) if k not in (6, 7, 8, 9)}
    answers |= {pair[0]: 1, pair[1]: 2, other: 0}
    with pytest.raises(ScoringError) as exc:
        score("qids-sr16", answers)
    assert exc.value.item == pair[1]
    assert f"{pair[0]}/{pair[1]}" in exc.value.message and "not both" in exc.value.message


def qids_with_total(total):
    """Answers whose domain sum is `total`: one item per domain carries the score."""
    reps = ["1", "5", "6", "10", "11", "12", "13", "14", "15"]
    answers = {str(k): 0 for k in range(1, 17) if k not in (7, 9)}
    left = total
    for key in reps:
        v = min(left, 3)
        answers[key] = v
        left -= v
    assert left == 0
    return answers


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "none"),
        (5, "none"),
        (6, "mild"),
        (10, "mild"),
        (11, "moderate"),
        (15, "moderate"),
        (16, "severe"),
        (20, "severe"),
        (21, "very severe"),
        (27, "very severe"),
    ],
)
def test_qids_band_edges(total, band):
    r = score("qids-sr16", qids_with_total(total))
    assert (r.total, r.severity) == (total, band)


@pytest.mark.parametrize(("item12", "flagged"), [(0, False), (1, True), (3, True)])
def test_qids_item12_flags_suicidality(item12, flagged):
    answers = {str(k): 0 for k in range(1, 17) if k not in (7, 9)} | {"12": item12}
    assert ("suicidality" in score("qids-sr16", answers).flags) is flagged


# --- PCL-5 -------------------------------------------------------------------


def test_pcl5_example_clusters_and_flags():
    answers = {str(k): 0 for k in range(1, 21)}
    answers.update({"1": 2, "6": 3, "8": 2, "9": 4, "15": 2, "20": 2})
    r = score("pcl5", answers)
    assert r.total == 15
    assert r.subscores == {"B": 2, "C": 3, "D": 6, "E": 4}
    # DSM-5 rule met (1 B, 1 C, 2 D, 2 E rated >= 2) but below the cut-off.
    assert r.flags == ("provisional-ptsd-dsm5-criteria",)
    assert r.severity is None


@pytest.mark.parametrize(
    ("total", "cutoff", "flagged"),
    [
        (32, None, False),
        (33, None, True),
        (30, 31, False),
        (31, 31, True),
        (31, 32, False),
        (32, 32, True),
        (32, 33, False),
        (33, 33, True),
        (80, 31, True),
    ],
)
def test_pcl5_provisional_ptsd_cutoff_setting(total, cutoff, flagged):
    settings = None if cutoff is None else {"provisional_ptsd_cutoff": cutoff}
    r = score("pcl5", fill("pcl5", total), settings=settings)
    assert r.total == total
    assert ("provisional-ptsd" in r.flags) is flagged
    assert f"cut-off {cutoff or 33}" in r.notes[0]


@pytest.mark.parametrize("bad", [30, 34, 0, True, "33"])
def test_pcl5_cutoff_outside_31_33_is_refused(bad):
    with pytest.raises(ValueError, match="31-33"):
        score("pcl5", fill("pcl5", 0), settings={"provisional_ptsd_cutoff": bad})


def test_unknown_setting_is_refused():
    with pytest.raises(ValueError, match="unknown setting"):
        score("phq9", fill("phq9", 0), settings={"provisional_ptsd_cutoff": 33})


def _pcl5_symptoms(b, c, d, e, value=2):
    answers = {str(k): 0 for k in range(1, 21)}
    for start, n in ((1, b), (6, c), (8, d), (15, e)):
        for k in range(start, start + n):
            answers[str(k)] = value
    return answers


@pytest.mark.parametrize(
    ("b", "c", "d", "e", "met"),
    [
        (1, 1, 2, 2, True),
        (5, 2, 7, 6, True),
        (0, 1, 2, 2, False),
        (1, 0, 2, 2, False),
        (1, 1, 1, 2, False),
        (1, 1, 2, 1, False),
    ],
)
def test_pcl5_dsm5_rule(b, c, d, e, met):
    r = score("pcl5", _pcl5_symptoms(b, c, d, e))
    assert ("provisional-ptsd-dsm5-criteria" in r.flags) is met


def test_pcl5_dsm5_rule_needs_ratings_of_2_not_1():
    r = score("pcl5", _pcl5_symptoms(5, 2, 7, 6, value=1))
    assert r.total == 20
    assert "provisional-ptsd-dsm5-criteria" not in r.flags


# --- MADRS -------------------------------------------------------------------


def test_madrs_example():
    r = score(
        "madrs", {"1": 4, "2": 4, "3": 3, "4": 2, "5": 1, "6": 3, "7": 2, "8": 3, "9": 2, "10": 0}
    )
    assert (r.total, r.severity, r.flags) == (24, "moderate", ())


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "normal"),
        (6, "normal"),
        (7, "mild"),
        (19, "mild"),
        (20, "moderate"),
        (34, "moderate"),
        (35, "severe"),
        (60, "severe"),
    ],
)
def test_madrs_band_edges(total, band):
    r = score("madrs", fill("madrs", total, skip=()))
    assert (r.total, r.severity) == (total, band)


@pytest.mark.parametrize(("item10", "flagged"), [(0, False), (1, True), (6, True)])
def test_madrs_suicidal_thoughts_flag(item10, flagged):
    answers = {str(k): 0 for k in range(1, 11)} | {"10": item10}
    assert ("suicidality" in score("madrs", answers).flags) is flagged


# --- WSAS --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "subclinical"),
        (9, "subclinical"),
        (10, "significant impairment"),
        (20, "significant impairment"),
        (21, "moderately severe or worse"),
        (40, "moderately severe or worse"),
    ],
)
def test_wsas_band_edges(total, band):
    r = score("wsas", fill("wsas", total))
    assert (r.total, r.severity) == (total, band)


@pytest.mark.parametrize(("rest", "total", "band"), [(0, 0, "subclinical"), (8, 32, "moderately severe or worse"), (2, 8, "subclinical"), (3, 12, "significant impairment")])  # fmt: skip
def test_wsas_item1_not_applicable_totals_the_answered_items(rest, total, band):
    """Mundt et al. 2002: the total is the sum of the rated items; item 1 'not applicable'
    (retired or not working for reasons unrelated to the problem) adds nothing."""
    r = score("wsas", {"1": "na", **{str(k): rest for k in range(2, 6)}})
    assert (r.total, r.severity, r.items["1"]) == (total, band, "na")
    assert any("not applicable" in n for n in r.notes)


def test_wsas_is_self_report_and_only_item1_may_be_not_applicable():
    assert get("wsas").respondent == "patient"
    with pytest.raises(ScoringError) as exc:
        score("wsas", {"1": 0, "2": "na", "3": 0, "4": 0, "5": 0})
    assert exc.value.item == "2"


# --- MOAA/S, CADSS, BPRS -----------------------------------------------------


@pytest.mark.parametrize("level", [0, 1, 2, 3, 4, 5])
def test_moaas_total_is_the_level(level):
    r = score("moaas", {"1": level})
    assert (r.total, r.severity, r.flags) == (level, None, ())


def test_cadss_example_and_range():
    r = score("cadss", {str(k): (k % 5) for k in range(1, 24)})
    # 23 items cycling 1,2,3,4,0,...: four full cycles (40) + items 21-23 (1+2+3)
    assert r.total == 46
    assert score("cadss", {str(k): 4 for k in range(1, 24)}).total == 92
    assert score("cadss", {str(k): 0 for k in range(1, 24)}).total == 0


def test_bprs_positive_example():
    r = score("bprs-positive", {"1": 2, "2": 0, "3": 6, "4": 1})
    assert (r.total, r.severity, r.flags) == (9, None, ())
    assert score("bprs-positive", {str(k): 6 for k in range(1, 5)}).total == 24


def test_bprs_refuses_7_from_the_1_to_7_convention():
    with pytest.raises(ScoringError) as exc:
        score("bprs-positive", {"1": 7, "2": 1, "3": 1, "4": 1})
    assert exc.value.item == "1"


# --- as_dict -----------------------------------------------------------------


def test_as_dict_keys_and_json_types():
    import json

    d = score("phq9", fill("phq9", 12)).as_dict()
    assert list(d) == ["instrument", "total", "severity", "flags", "subscores"]
    assert d == {
        "instrument": "phq9",
        "total": 12,
        "severity": "moderate",
        "flags": [],
        "subscores": {},
    }
    assert json.loads(json.dumps(d)) == d


def test_as_dict_has_risk_only_for_cssrs():
    d = score("cssrs", {"1": "no", "2": "no", "6": "no"}).as_dict()
    assert d["risk"] == "none"
    assert d["total"] is None
    assert "risk" not in score("gad7", fill("gad7", 3)).as_dict()
