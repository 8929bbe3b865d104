"""The `ketaflow score` command function."""

import json

import pytest

from ketaflow.clinical.instruments import codes
from ketaflow.clinical.instruments.cli import main


def run(capsys, argv):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_phq9_prints_one_json_object(capsys):
    rc, out, err = run(capsys, ["phq9", *[f"{k}=2" for k in range(1, 10)], "difficulty=1"])
    assert rc == 0
    assert err == ""
    assert out.count("\n") == 1
    assert json.loads(out) == {
        "instrument": "phq9",
        "total": 18,
        "severity": "moderately severe",
        "flags": ["suicidality"],
        "subscores": {},
    }


def test_who5_total_is_the_percentage(capsys):
    rc, out, _ = run(capsys, ["who5", "1=5", "2=4", "3=3", "4=2", "5=1"])
    assert rc == 0
    d = json.loads(out)
    assert d["total"] == 60
    assert d["subscores"] == {"raw": 15}


def test_cssrs_includes_risk(capsys):
    rc, out, _ = run(capsys, ["cssrs", "1=yes", "2=no", "6=YES", "6b=yes"])
    assert rc == 0
    d = json.loads(out)
    assert d["risk"] == "high"
    assert d["total"] is None
    assert d["flags"] == ["suicidality"]


def test_list_prints_codes(capsys):
    rc, out, _ = run(capsys, ["--list"])
    assert rc == 0
    assert out.split() == list(codes())


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["phq9", *[f"{k}=0" for k in range(1, 9)]], "item 9"),  # missing
        (["phq9", *[f"{k}=0" for k in range(1, 10)], "10=1"], "item 10"),  # unknown
        (["phq9", *[f"{k}=0" for k in range(1, 9)], "9=4"], "item 9"),  # out of range
        (["phq9", *[f"{k}=0" for k in range(1, 9)], "9=two"], "item 9"),  # not an integer
        (["gad7", *[f"{k}=0" for k in range(1, 8)], "difficulty=9"], "item difficulty"),
        (["cssrs", "1=no", "2=no", "3=no", "6=no"], "item 3"),  # skipped by branching
        (["cssrs", "1=no", "2=no", "6=no", "6b=no"], "item 6b"),
        (["cssrs", "1=no", "2=no", "6=yes"], "item 6b"),
        (["phq9", "1=0", "1=1"], "item 1"),  # duplicate
    ],
)
def test_scoring_errors_exit_2_naming_the_item(capsys, argv, needle):
    rc, out, err = run(capsys, argv)
    assert rc == 2
    assert out == ""
    assert needle in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("pair", ["1", "=2", "1=", "1:2", ""])
def test_malformed_pair_exit_2(capsys, pair):
    rc, out, err = run(capsys, ["gad7", pair])
    assert rc == 2
    assert out == ""
    assert "malformed" in err
    assert err.count("\n") == 1


def test_unknown_instrument_exit_2(capsys):
    rc, out, err = run(capsys, ["bdi2", "1=0"])
    assert rc == 2
    assert out == ""
    assert "unknown instrument 'bdi2'" in err


@pytest.mark.parametrize("argv", [[], ["--help"], ["--list", "phq9"]])
def test_usage_errors_exit_2(capsys, argv):
    rc, out, err = run(capsys, argv)
    assert rc == 2
    assert out == ""
    assert "usage" in err
