"""Sessions and request metadata: polling is not activity, private caching, the client
address behind proxies, request ids, file permissions and the deployment checks."""

import os
import sqlite3
import stat

import pytest
from django.apps import apps
from django.test import Client, RequestFactory

from ketaflow import config
from ketaflow.accounts import middleware
from ketaflow.accounts.middleware import LAST_SEEN
from ketaflow.audit.middleware import client_address, safe_request_id
from ketaflow.audit.models import AuditEvent
from ketaflow.web.checks import ketaflow_deploy_checks

needs_treatment = pytest.mark.skipif(
    not apps.is_installed("ketaflow.treatment"), reason="the chair board is in treatment"
)


class _Clock:
    def __init__(self, now):
        self.now = now

    def time(self):
        return self.now


@needs_treatment
def test_a_session_that_only_polls_expires_at_the_idle_limit(staff, client_for, monkeypatch):
    nurse = staff["nurse"]
    client = client_for(nurse)
    start = client.session[LAST_SEEN]
    clock = _Clock(start)
    monkeypatch.setattr(middleware, "time", clock)
    poll = {"HX-Request": "true", "X-KF-Poll": "1"}
    for minutes in (1, 5, 10, 14.5):
        clock.now = start + minutes * 60
        assert client.get("/treatment/board/live/", headers=poll).status_code == 200
    assert client.session[LAST_SEEN] == start
    clock.now = start + 15 * 60 + 5
    expired = client.get("/treatment/board/live/", headers=poll)
    assert "expired=idle" in expired["HX-Redirect"]
    assert AuditEvent.objects.get(action="logout").detail["reason"] == "idle"


@needs_treatment
def test_a_real_request_still_counts_as_activity(staff, client_for, monkeypatch):
    client = client_for(staff["nurse"])
    start = client.session[LAST_SEEN]
    clock = _Clock(start + 10 * 60)
    monkeypatch.setattr(middleware, "time", clock)
    assert client.get("/treatment/board/").status_code == 200
    clock.now = start + 20 * 60
    assert client.get("/treatment/board/live/", headers={"X-KF-Poll": "1"}).status_code == 200


@needs_treatment
def test_self_refreshing_pages_mark_their_polls(staff, client_for):
    page = client_for(staff["nurse"]).get("/treatment/board/").content.decode()
    assert 'hx-trigger="every 5s" hx-headers=\'{"X-KF-Poll": "1"}\'' in page


def test_private_pages_and_json_are_not_stored(staff, client_for):
    client = client_for(staff["nurse"])
    for url in ("/today/", "/patients/", "/api/v1/me", "/accounts/me/"):
        cache = client.get(url)["Cache-Control"]
        assert "no-store" in cache and "private" in cache, url
    # A patient's link (no session) may show their data: not stored either.
    assert "no-store" in Client().get("/healthz")["Cache-Control"]


def test_public_education_pages_are_unaffected():
    if not apps.is_installed("ketaflow.education"):
        pytest.skip("education not installed")
    response = Client().get("/education/")
    assert "no-store" not in response.get("Cache-Control", "")


FORGED = "6.6.6.6, 203.0.113.7"


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, FORGED, "10.0.0.2"),
        (1, FORGED, "203.0.113.7"),
        (2, FORGED, "6.6.6.6"),
        (1, "6.6.6.6, not-an-address", "10.0.0.2"),
        (3, FORGED, "10.0.0.2"),  # shorter than the proxy chain: the header is not trusted
        (1, "", "10.0.0.2"),
        (1, "2001:db8::1", "2001:db8::1"),
    ],
)
def test_client_address_trusts_only_the_declared_proxies(settings, proxies, forwarded, expected):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.KETAFLOW_TRUSTED_PROXIES = proxies
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_address(request) == expected


def test_forged_forwarded_for_does_not_reach_the_audit_trail(staff, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.KETAFLOW_TRUSTED_PROXIES = 1
    Client(REMOTE_ADDR="10.0.0.2").post(
        "/accounts/login/",
        {"email": staff["nurse"].email, "password": "wrong password 123"},
        HTTP_X_FORWARDED_FOR=FORGED,
    )
    assert AuditEvent.objects.get(action="login-failed").client_address == "203.0.113.7"


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        ("req-2026.12.07_a1", True),
        ("abc", True),
        ("x" * 64, True),
        ("x" * 65, False),
        ("abcdefgh\n", False),
        ("<script>alert(1)</script>", False),
        ('=HYPERLINK("http://x")', False),
        ("", False),
    ],
)
def test_request_id_is_a_bounded_safe_token(incoming, kept):
    request = RequestFactory().get("/", HTTP_X_REQUEST_ID=incoming)
    chosen = safe_request_id(request)
    assert (chosen == incoming) is kept
    assert len(chosen) <= 64 and chosen.replace("-", "").replace(".", "").replace("_", "").isalnum()


def test_request_id_stored_in_the_audit_event_is_safe(staff):
    Client().post(
        "/accounts/login/",
        {"email": staff["nurse"].email, "password": "wrong password 123"},
        HTTP_X_REQUEST_ID="abcdefgh\n",
    )
    assert AuditEvent.objects.get(action="login-failed").request_id != "abcdefgh\n"


def test_sqlite_files_and_var_are_private(tmp_path, monkeypatch):
    monkeypatch.setenv("KETAFLOW_VAR_DIR", str(tmp_path / "fresh" / "var"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    old = os.umask(0o022)
    try:
        var = config.var_dir()
        assert stat.S_IMODE(var.stat().st_mode) == 0o700
        database = config.database(var)
        path = database["NAME"]
        connection = sqlite3.connect(path)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE t (x)")
        connection.execute("INSERT INTO t VALUES (1)")
        connection.commit()
        for suffix in ("", "-wal", "-shm"):
            assert stat.S_IMODE(os.stat(f"{path}{suffix}").st_mode) == 0o600, suffix
        connection.close()
    finally:
        os.umask(old)


def test_existing_world_readable_database_is_tightened(tmp_path, monkeypatch):
    var = tmp_path / "var"
    var.mkdir(mode=0o755)
    var.chmod(0o755)
    database = var / "ketaflow.sqlite3"
    database.write_bytes(b"")
    database.chmod(0o644)
    monkeypatch.setenv("KETAFLOW_VAR_DIR", str(var))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    config.database(config.var_dir())
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    assert stat.S_IMODE(var.stat().st_mode) == 0o700


def _ids(_settings):
    return {problem.id for problem in ketaflow_deploy_checks(None)}


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    settings.HTTPS = True
    settings.SECRET_KEY = "k" * 20 + "abcdefghijklmnopqrstuvwxyz0123456789"
    settings.ALLOWED_HOSTS = ["clinic.example.org"]
    settings.PUBLIC_URL_SET = True
    settings.PUBLIC_URL = "https://clinic.example.org"
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "smtp.example.org", "port": 587, "use_tls": True},
        }
    }
    return settings


def test_deploy_checks_pass_a_sound_configuration(production):
    assert _ids(production) <= {"ketaflow.I004"}


@pytest.mark.parametrize("hosts", [["*"], ["clinic.example.org", "*"], [".example.org", "*.x"]])
def test_deploy_checks_fail_with_wildcard_hosts(production, hosts):
    production.ALLOWED_HOSTS = hosts
    assert "ketaflow.E005" in _ids(production)


def test_deploy_checks_want_the_public_url(production):
    production.PUBLIC_URL_SET = False
    assert "ketaflow.E006" in _ids(production)
    production.PUBLIC_URL_SET = True
    production.PUBLIC_URL = "http://clinic.example.org"
    assert "ketaflow.E007" in _ids(production)


def test_deploy_checks_flag_smtp_without_tls(production):
    production.MAILERS["default"]["OPTIONS"]["use_tls"] = False
    assert "ketaflow.W008" in _ids(production)
    production.MAILERS["default"]["OPTIONS"]["use_ssl"] = True
    assert "ketaflow.W008" not in _ids(production)
    production.MAILERS["default"]["OPTIONS"].update(use_ssl=False, host="localhost")
    assert "ketaflow.W008" not in _ids(production)  # a relay on this machine


def test_ketaflow_check_fails_on_a_wildcard_host(production, capsys):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    production.ALLOWED_HOSTS = ["*"]
    with pytest.raises(SystemCheckError, match="wildcard"):
        call_command("check", "--deploy", "--fail-level", "WARNING")
