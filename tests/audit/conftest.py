import pytest


@pytest.fixture(autouse=True)
def audit_anchor(settings, tmp_path, monkeypatch):
    """Each test gets its own audit key and anchor file (the database is rolled back too)."""
    monkeypatch.delenv("KETAFLOW_AUDIT_KEY", raising=False)
    settings.KETAFLOW_AUDIT_KEY_FILE = str(tmp_path / "audit_key")
    settings.KETAFLOW_AUDIT_ANCHOR = str(tmp_path / "audit-anchor" / "anchor.jsonl")
    return tmp_path / "audit-anchor" / "anchor.jsonl"
