"""The `ketaflow` command and start-up configuration, run as a person would: in a subprocess."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ketaflow import config

ROOT = Path(__file__).resolve().parents[1]


def run(*args, env=None, tmp_path=None):
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KETAFLOW_", "DATABASE_URL", "DJANGO_ALLOW"))
    }
    base["KETAFLOW_VAR_DIR"] = str(tmp_path)
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ketaflow.cli", *args],
        capture_output=True,
        text=True,
        env=base,
        cwd=ROOT,
        timeout=120,
    )


def test_secret_key_is_generated_once_with_mode_600(tmp_path):
    key = config.secret_key(tmp_path)
    path = tmp_path / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert config.secret_key(tmp_path) == key and len(key) >= 50


def test_short_env_secret_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("KETAFLOW_SECRET_KEY", "short")
    with pytest.raises(config.ConfigError, match="shorter than 50"):
        config.secret_key(tmp_path)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u:p@h/db", "has the scheme 'mysql'"),
        ("nonsense", r"has the scheme '\(none\)'"),
        ("postgresql://u@localhost:5432/", "needs a database name"),
    ],
)
def test_malformed_database_url(monkeypatch, tmp_path, url, message):
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(config.ConfigError, match=message):
        config.database(tmp_path)


def test_sqlite_defaults_to_var_with_wal_and_foreign_keys(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    db = config.database(tmp_path)
    assert db["NAME"] == str(tmp_path / "ketaflow.sqlite3")
    assert "journal_mode=WAL" in db["OPTIONS"]["init_command"]
    assert "foreign_keys=ON" in db["OPTIONS"]["init_command"]


def test_startup_errors_are_one_clear_line(tmp_path):
    bad_url = run("check", env={"DATABASE_URL": "mysql://x"}, tmp_path=tmp_path)
    assert bad_url.returncode == 2
    assert bad_url.stderr.strip().count("\n") == 0 and "DATABASE_URL" in bad_url.stderr
    assert "Traceback" not in bad_url.stderr
    down = run("worker", env={"DATABASE_URL": "postgresql://u@127.0.0.1:1/db"}, tmp_path=tmp_path)
    assert (
        down.returncode == 2
        and "cannot reach the database" in down.stderr
        and "Traceback" not in down.stderr
    )
    unwritable = tmp_path / "ro"
    unwritable.mkdir(mode=0o500)
    if os.geteuid() != 0:  # root can write anywhere; the missing-directory case below covers root
        no_var = run("check", env={"KETAFLOW_VAR_DIR": str(unwritable)}, tmp_path=tmp_path)
        assert no_var.returncode == 2 and "not writable" in no_var.stderr
    missing = run(
        "check", env={"KETAFLOW_VAR_DIR": "/proc/ketaflow-cannot-exist"}, tmp_path=tmp_path
    )
    assert (
        missing.returncode == 2
        and "cannot be created" in missing.stderr
        and "Traceback" not in missing.stderr
    )


def test_check_deploy_fails_with_debug_and_passes_on_production_settings(tmp_path):
    debug = run("check", env={"KETAFLOW_DEBUG": "1"}, tmp_path=tmp_path)
    assert debug.returncode != 0 and "DEBUG is on" in debug.stderr + debug.stdout
    unset = run("check", env={"KETAFLOW_HTTPS": "1"}, tmp_path=tmp_path)
    assert unset.returncode != 0 and "KETAFLOW_PUBLIC_URL is not set" in unset.stderr
    production = run(
        "check",
        env={"KETAFLOW_HTTPS": "1", "KETAFLOW_PUBLIC_URL": "https://clinic.example.org"},
        tmp_path=tmp_path,
    )
    assert production.returncode == 0, production.stderr
    wildcard = run(
        "check",
        env={
            "KETAFLOW_HTTPS": "1",
            "KETAFLOW_PUBLIC_URL": "https://clinic.example.org",
            "KETAFLOW_ALLOWED_HOSTS": "*",
        },
        tmp_path=tmp_path,
    )
    assert wildcard.returncode != 0 and "wildcard" in wildcard.stderr


def test_pure_clinical_commands_are_wired(tmp_path):
    scored = run("score", "phq9", *[f"{i}=1" for i in range(1, 10)], tmp_path=tmp_path)
    assert scored.returncode == 0, scored.stderr
    result = json.loads(scored.stdout)
    assert result["total"] == 9 and "suicidality" in result["flags"]
    assert run("score", "phq9", "1=9", tmp_path=tmp_path).returncode == 2
    dose = run(
        "dose",
        "--route",
        "iv-ketamine",
        "--weight-kg",
        "70",
        "--mg-per-kg",
        "0.5",
        "--minutes",
        "40",
        tmp_path=tmp_path,
    )
    assert dose.returncode == 0 and json.loads(dose.stdout)["dose_mg"] in (35, 35.0, "35.0")
    case = tmp_path / "case.json"
    case.write_text(
        json.dumps(
            {
                "route": "iv-ketamine",
                "age": 40,
                "antidepressant_trials": [],
                "conditions": [],
                "medication_classes": [],
            }
        )
    )
    eligibility = run("eligibility", "check", str(case), tmp_path=tmp_path)
    assert eligibility.returncode == 0 and json.loads(eligibility.stdout)["decision"] == "review"
    assert run("--help", tmp_path=tmp_path).stdout.startswith("usage: ketaflow")


def test_seed_demo_is_idempotent_and_keeps_credentials_private(db, settings, tmp_path, monkeypatch):
    from ketaflow.patients.models import Patient
    from ketaflow.tenancy.models import Clinic
    from ketaflow.web import demo

    monkeypatch.setattr(demo, "var_dir", lambda: tmp_path)
    first = demo.seed()
    path = tmp_path / "demo-credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    counts = {c.slug: Patient.objects.for_clinic(c).count() for c in Clinic.objects.all()}
    # 40 and 8 registered patients; domain apps' demos may add more (e.g. converted requests).
    assert counts["demo"] >= 40 and counts["second-demo"] >= 8
    names = list(
        Patient.objects.order_by("mrn").values_list("mrn", "legal_family_name", "date_of_birth")
    )
    assert all(family.endswith("-Synth") for _, family, _ in names)
    second = demo.seed()
    assert second["users"] == first["users"]  # same passwords and secrets: nothing regenerated
    assert (
        list(
            Patient.objects.order_by("mrn").values_list("mrn", "legal_family_name", "date_of_birth")
        )
        == names
    )
    assert all(c.is_demo for c in Clinic.objects.all())
    statuses = set(Patient.objects.values_list("status", flat=True))
    assert statuses == {"prospective", "active", "paused", "discharged"}
    assert "owner@demo.ketaflow.test" in demo.describe(second)
