"""Instrument definitions: registry, structure, bands and wording against the reference."""

import ast
import pathlib
import re
import subprocess
import sys

import pytest

from ketaflow.clinical.instruments import (
    Instrument,
    UnknownInstrumentError,
    all_instruments,
    codes,
    get,
)

# The shared clinical reference sits beside the repository (../shared/), in CI too.
REFERENCE = pathlib.Path(__file__).resolve().parents[4] / "shared" / "clinical-reference.md"
PACKAGE = pathlib.Path(__file__).resolve().parents[3] / "ketaflow" / "clinical" / "instruments"

EXPECTED_CODES = [
    "phq9",
    "gad7",
    "cssrs",
    "who5",
    "qids-sr16",
    "pcl5",
    "madrs",
    "wsas",
    "moaas",
    "cadss",
    "bprs-positive",
]

# code -> (respondent, number of items incl. unscored, score range, wording)
STRUCTURE = {
    "phq9": ("patient", 10, (0, 27), "published"),
    "gad7": ("patient", 8, (0, 21), "published"),
    "cssrs": ("patient", 7, None, "published"),
    "who5": ("patient", 5, (0, 100), "published"),
    "qids-sr16": ("patient", 16, (0, 27), "item-names"),
    "pcl5": ("patient", 20, (0, 80), "published"),
    "madrs": ("clinician", 10, (0, 60), "item-names"),
    "wsas": ("patient", 5, (0, 40), "item-names"),
    "moaas": ("clinician", 1, (0, 5), "item-names"),
    "cadss": ("clinician", 23, (0, 92), "item-names"),
    "bprs-positive": ("clinician", 4, (0, 24), "item-names"),
}

# code -> item option values (every scored item)
ITEM_VALUES = {
    "phq9": [0, 1, 2, 3],
    "gad7": [0, 1, 2, 3],
    "who5": [5, 4, 3, 2, 1, 0],
    "qids-sr16": [0, 1, 2, 3],
    "pcl5": [0, 1, 2, 3, 4],
    "madrs": [0, 1, 2, 3, 4, 5, 6],
    "wsas": [0, 1, 2, 3, 4, 5, 6, 7, 8],
    "moaas": [5, 4, 3, 2, 1, 0],
    "cadss": [0, 1, 2, 3, 4],
    "bprs-positive": [0, 1, 2, 3, 4, 5, 6],
}

BANDS = {
    "phq9": [
        (0, 4, "minimal"),
        (5, 9, "mild"),
        (10, 14, "moderate"),
        (15, 19, "moderately severe"),
        (20, 27, "severe"),
    ],
    "gad7": [(0, 4, "minimal"), (5, 9, "mild"), (10, 14, "moderate"), (15, 21, "severe")],
    "qids-sr16": [
        (0, 5, "none"),
        (6, 10, "mild"),
        (11, 15, "moderate"),
        (16, 20, "severe"),
        (21, 27, "very severe"),
    ],
    "madrs": [(0, 6, "normal"), (7, 19, "mild"), (20, 34, "moderate"), (35, 60, "severe")],
    "wsas": [
        (0, 9, "subclinical"),
        (10, 20, "significant impairment"),
        (21, 40, "moderately severe or worse"),
    ],
}


def test_registry_has_exactly_the_expected_codes_in_order():
    assert list(codes()) == EXPECTED_CODES
    assert [i.code for i in all_instruments()] == EXPECTED_CODES


@pytest.mark.parametrize("code", EXPECTED_CODES)
def test_get_returns_the_instrument_with_that_code(code):
    inst = get(code)
    assert isinstance(inst, Instrument)
    assert inst.code == code


@pytest.mark.parametrize("bad", ["PHQ9", "phq-9", "bdi2", "", "phq9 "])
def test_unknown_code_raises_clear_error(bad):
    with pytest.raises(UnknownInstrumentError) as exc:
        get(bad)
    assert repr(bad) in str(exc.value)
    assert "phq9" in str(exc.value)  # lists the known codes
    assert isinstance(exc.value, ValueError)


def test_bdi_ii_is_not_included():
    # BDI-II is copyrighted (reference §5): it must not be shipped.
    assert not any("bdi" in c for c in codes())


@pytest.mark.parametrize("code", EXPECTED_CODES)
def test_structure(code):
    respondent, n_items, score_range, wording = STRUCTURE[code]
    inst = get(code)
    assert inst.respondent == respondent
    assert len(inst.items) == n_items
    assert inst.score_range == score_range
    assert inst.wording == wording
    assert inst.licence_note.strip()
    assert inst.source.strip()
    assert inst.direction in ("lower_is_better", "higher_is_better")


@pytest.mark.parametrize("code", EXPECTED_CODES)
def test_item_keys_are_published_numbers(code):
    inst = get(code)
    numbered = [i.key for i in inst.items if i.key not in ("difficulty", "6b")]
    assert numbered == [str(n) for n in range(1, len(numbered) + 1)]
    assert len(set(inst.item_keys)) == len(inst.item_keys)


@pytest.mark.parametrize("code", sorted(ITEM_VALUES))
def test_scored_item_option_values(code):
    inst = get(code)
    for item in inst.scored_items:
        numbers = [v for v in item.values if isinstance(v, int)]
        assert numbers == ITEM_VALUES[code], item.key
        # Only WSAS item 1 has a named (not applicable) answer besides its numbers.
        named = [v for v in item.values if not isinstance(v, int)]
        assert named == (["na"] if (code, item.key) == ("wsas", "1") else []), item.key


@pytest.mark.parametrize("code", sorted(ITEM_VALUES))
def test_score_range_matches_item_maxima(code):
    inst = get(code)
    lo, hi = inst.score_range
    assert lo == 0
    if code == "qids-sr16":
        assert hi == 9 * 3  # nine domains 0-3
    elif code == "who5":
        assert hi == 4 * 5 * 5  # raw 0-25 × 4
    else:
        assert hi == sum(max(v for v in i.values if isinstance(v, int)) for i in inst.scored_items)


@pytest.mark.parametrize("code", EXPECTED_CODES)
def test_bands(code):
    inst = get(code)
    assert [(b.low, b.high, b.label) for b in inst.bands] == BANDS.get(code, [])


@pytest.mark.parametrize("code", sorted(BANDS))
def test_bands_are_contiguous_and_cover_the_range(code):
    inst = get(code)
    lo, hi = inst.score_range
    assert inst.bands[0].low == lo
    assert inst.bands[-1].high == hi
    for a, b in zip(inst.bands, inst.bands[1:], strict=False):
        assert b.low == a.high + 1
    for band in inst.bands:
        assert band.label == band.label.lower()


def test_difficulty_questions_are_optional_and_unscored():
    for code in ("phq9", "gad7"):
        item = get(code).item("difficulty")
        assert not item.required
        assert not item.scored
        assert [(o.label, o.value) for o in item.options] == [
            ("Not difficult at all", 0),
            ("Somewhat difficult", 1),
            ("Very difficult", 2),
            ("Extremely difficult", 3),
        ]


def test_loinc_codes():
    phq9 = get("phq9")
    assert (phq9.loinc_panel, phq9.loinc_total) == ("44249-1", "44261-6")
    assert phq9.item("9").loinc == "44260-8"
    assert [i.key for i in phq9.items if i.loinc] == ["9"]
    gad7 = get("gad7")
    assert (gad7.loinc_panel, gad7.loinc_total) == ("69737-5", "70274-6")
    # Only PHQ-9 and GAD-7 have LOINC codes in the reference; nothing else may claim one.
    for inst in all_instruments():
        if inst.code not in ("phq9", "gad7"):
            assert inst.loinc_panel is None and inst.loinc_total is None, inst.code
            assert not any(i.loinc for i in inst.items), inst.code


def test_madrs_uses_a_local_total_code():
    madrs = get("madrs")
    assert madrs.local_total_code == "ketaflow-madrs-total"
    assert madrs.total_coding == ("urn:ketaflow:instrument", "ketaflow-madrs-total")
    assert get("phq9").total_coding == ("http://loinc.org", "44261-6")


def test_outcome_rule_data():
    phq9 = get("phq9")
    assert phq9.response_fall_pct == 50
    assert (phq9.remission.value, phq9.remission.inclusive) == (5, False)  # below 5
    assert (phq9.reliable_change.low, phq9.reliable_change.high) == (6, 6)
    assert (get("gad7").reliable_change.low, get("gad7").reliable_change.high) == (4, 4)
    assert get("gad7").response_fall_pct is None
    assert get("gad7").remission is None
    qids = get("qids-sr16")
    assert (qids.remission.value, qids.remission.inclusive) == (5, True)
    assert qids.response_fall_pct == 50
    madrs = get("madrs")
    assert (madrs.remission.value, madrs.remission.inclusive) == (10, True)
    assert madrs.remission.setting and madrs.remission.documented == (10, 12)
    who5 = get("who5")
    assert who5.direction == "higher_is_better"
    assert (who5.reliable_change.low, who5.reliable_change.unit) == (10, "percentage points")
    assert who5.response_fall_pct is None and who5.remission is None
    pcl5 = get("pcl5")
    assert (pcl5.reliable_change.low, pcl5.reliable_change.high) == (5, 10)
    assert pcl5.reliable_change.is_range


def test_pcl5_cutoff_is_a_setting_31_to_33_default_33():
    from ketaflow.clinical.instruments.forms import pcl5

    assert pcl5.PROVISIONAL_PTSD.value == 33
    assert pcl5.PROVISIONAL_PTSD.setting
    assert pcl5.PROVISIONAL_PTSD.documented == (31, 32, 33)
    assert "31-33" in pcl5.PROVISIONAL_PTSD.note


def test_pcl5_clusters():
    from ketaflow.clinical.instruments.forms import pcl5

    assert pcl5.CLUSTERS == {
        "B": ("1", "2", "3", "4", "5"),
        "C": ("6", "7"),
        "D": ("8", "9", "10", "11", "12", "13", "14"),
        "E": ("15", "16", "17", "18", "19", "20"),
    }
    assert pcl5.DSM5_MINIMUM == {"B": 1, "C": 1, "D": 2, "E": 2}


def test_bprs_states_its_0_to_6_convention():
    inst = get("bprs-positive")
    assert [i.text for i in inst.items] == [
        "Suspiciousness",
        "Hallucinations",
        "Unusual thought content",
        "Conceptual disorganization",
    ]
    assert any("0-6" in n and "1-7" in n for n in inst.notes)


def test_item_names():
    assert [i.text for i in get("madrs").items] == [
        "Apparent sadness",
        "Reported sadness",
        "Inner tension",
        "Reduced sleep",
        "Reduced appetite",
        "Concentration difficulties",
        "Lassitude",
        "Inability to feel",
        "Pessimistic thoughts",
        "Suicidal thoughts",
    ]
    assert [i.text for i in get("wsas").items] == [
        "Work",
        "Home management",
        "Social leisure",
        "Private leisure",
        "Close relationships",
    ]
    assert get("qids-sr16").item("1").text == "Falling asleep"
    assert get("qids-sr16").item("12").text == "Thoughts of death or suicide"


def test_moaas_levels_copied_from_reference():
    inst = get("moaas")
    assert [(o.value, o.label) for o in inst.item("1").options] == [
        (5, "responds readily to name in normal tone"),
        (4, "lethargic response to name in normal tone"),
        (3, "responds only after name is called loudly and/or repeatedly"),
        (2, "responds only after mild prodding or shaking"),
        (1, "responds only after painful trapezius squeeze"),
        (0, "no response to painful trapezius squeeze"),
    ]


PUBLISHED_TEXT = {
    "phq9": [
        "Little interest or pleasure in doing things",
        "Feeling down, depressed, or hopeless",
        "Trouble falling or staying asleep, or sleeping too much",
        "Feeling tired or having little energy",
        "Poor appetite or overeating",
        "Feeling bad about yourself — or that you are a failure or have let yourself or your family down",
        "Trouble concentrating on things, such as reading the newspaper or watching television",
        "Moving or speaking so slowly that other people could have noticed? Or the opposite — being so fidgety or restless that you have been moving around a lot more than usual",
        "Thoughts that you would be better off dead or of hurting yourself in some way",
        "If you checked off any problems, how difficult have these problems made it for you to do your work, take care of things at home, or get along with other people?",
    ],
    "gad7": [
        "Feeling nervous, anxious or on edge",
        "Not being able to stop or control worrying",
        "Worrying too much about different things",
        "Trouble relaxing",
        "Being so restless that it is hard to sit still",
        "Becoming easily annoyed or irritable",
        "Feeling afraid as if something awful might happen",
        "If you checked off any problems, how difficult have these problems made it for you to do your work, take care of things at home, or get along with other people?",
    ],
    "cssrs": [
        "Have you wished you were dead or wished you could go to sleep and not wake up?",
        "Have you actually had any thoughts of killing yourself?",
        "Have you been thinking about how you might do this?",
        "Have you had these thoughts and had some intention of acting on them?",
        "Have you started to work out or worked out the details of how to kill yourself? Do you intend to carry out this plan?",
        "Have you ever done anything, started to do anything, or prepared to do anything to end your life?",
        "If yes: was this within the past 3 months?",
    ],
    "who5": [
        "I have felt cheerful and in good spirits",
        "I have felt calm and relaxed",
        "I have felt active and vigorous",
        "I woke up feeling fresh and rested",
        "My daily life has been filled with things that interest me",
    ],
}

STEMS = {
    "phq9": "Over the last 2 weeks, how often have you been bothered by any of the following problems?",
    "gad7": "Over the last 2 weeks, how often have you been bothered by the following problems?",
    "who5": "Please indicate for each of the five statements which is closest to how you have been feeling over the last two weeks.",
    "pcl5": "In the past month, how much were you bothered by:",
}

OPTIONS = {
    "phq9": [
        ("Not at all", 0),
        ("Several days", 1),
        ("More than half the days", 2),
        ("Nearly every day", 3),
    ],
    "who5": [
        ("All of the time", 5),
        ("Most of the time", 4),
        ("More than half of the time", 3),
        ("Less than half of the time", 2),
        ("Some of the time", 1),
        ("At no time", 0),
    ],
    "pcl5": [
        ("Not at all", 0),
        ("A little bit", 1),
        ("Moderately", 2),
        ("Quite a bit", 3),
        ("Extremely", 4),
    ],
}


@pytest.mark.parametrize("code", sorted(PUBLISHED_TEXT))
def test_published_item_text_is_exact(code):
    assert [i.text for i in get(code).items] == PUBLISHED_TEXT[code]


@pytest.mark.parametrize("code", sorted(STEMS))
def test_stems_are_exact(code):
    assert get(code).stem == STEMS[code]


@pytest.mark.parametrize("code", sorted(OPTIONS))
def test_option_labels_are_exact(code):
    inst = get(code)
    for item in inst.scored_items:
        assert [(o.label, o.value) for o in item.options] == OPTIONS[code]
    if code == "phq9":
        assert [(o.label, o.value) for o in get("gad7").item("1").options] == OPTIONS[code]


def test_pcl5_published_items_spot_checks():
    pcl5 = get("pcl5")
    assert pcl5.item("1").text == (
        "Repeated, disturbing, and unwanted memories of the stressful experience?"
    )
    assert pcl5.item("17").text == "Being “superalert” or watchful or on guard?"
    assert pcl5.item("20").text == "Trouble falling or staying asleep?"
    assert all(i.text.endswith("?") for i in pcl5.items)


@pytest.mark.parametrize("code", ["phq9", "gad7", "cssrs", "who5"])
def test_published_wording_appears_verbatim_in_the_reference(code):
    ref = REFERENCE.read_text(encoding="utf-8")
    inst = get(code)
    texts = [i.text for i in inst.items]
    if inst.stem:
        texts.append(inst.stem)
    texts += [o.label for i in inst.items for o in i.options if o.label not in ("Yes", "No")]
    for text in texts:
        assert text in ref, text


def test_moaas_and_names_appear_in_the_reference():
    ref = REFERENCE.read_text(encoding="utf-8")
    for option in get("moaas").item("1").options:
        assert f"{option.value} {option.label}" in ref
    madrs_line = next(line for line in ref.splitlines() if line.startswith("- MADRS"))
    for item in get("madrs").items:
        assert item.text.lower() in madrs_line
    for item in get("bprs-positive").items:
        assert item.text.lower() in ref


def test_package_imports_neither_django_nor_fhir_library():
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                assert not re.match(r"(django|fhir)\b", name), f"{path}: imports {name}"


def test_importing_the_package_loads_no_django_module():
    code = (
        "import sys, ketaflow.clinical.instruments as m, ketaflow.clinical.instruments.cli;"
        "bad=[n for n in sys.modules if n.split('.')[0] in ('django','fhir')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
