"""Browser-test fixtures: Debian's Chromium driven by Playwright against pytest-django's live server.

Never download a browser: Playwright launches /usr/bin/chromium.
"""

import base64
import re
import time
from pathlib import Path

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page, expect

from ketaflow.web.totp import current_code

PASSWORD = "correct horse battery staple 42"  # the literal of tests/conftest.py
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "headless": True,
        "args": CHROMIUM_ARGS,
    }


@pytest.fixture
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1280, "height": 900}, "locale": "en-US"}


@pytest.fixture(scope="session")
def base_url(live_server):
    """pytest-playwright's base_url: relative ``page.goto("/...")`` targets the live server."""
    return live_server.url


@pytest.fixture(autouse=True)
def _page_timeouts(request):
    if "page" in request.fixturenames:
        page = request.getfixturevalue("page")
        page.set_default_timeout(10_000)
        page.set_default_navigation_timeout(15_000)
        expect.set_options(timeout=10_000)


@pytest.fixture
def shoot():
    """``shoot(page, "01-sign-in")`` saves a full-page screenshot under var/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def console_log(page):
    """Console messages and uncaught page errors, as (kind, text, source URL) triples."""
    entries: list[tuple[str, str, str]] = []
    page.on(
        "console", lambda msg: entries.append((msg.type, msg.text, msg.location.get("url", "")))
    )
    page.on("pageerror", lambda exc: entries.append(("pageerror", str(exc), page.url)))
    return entries


class Auth:
    """Sign-in steps through the real pages (helpers live in a fixture: importlib mode)."""

    password = PASSWORD

    @staticmethod
    def totp_code(user) -> str:
        """The code an authenticator app would show that the server still accepts.

        django-otp refuses a code of a time step it has already accepted (replay); a second
        sign-in within 30 s therefore uses the next step's code, inside the device's tolerance.
        """
        device = TOTPDevice.objects.get(user=user, confirmed=True)
        secret = base64.b32encode(device.bin_key).decode()
        now = time.time()
        current = int(now - device.t0) // device.step
        wanted = max(current, device.last_t + 1)
        return current_code(secret, at=now + device.step * (wanted - current))

    @staticmethod
    def submit_password(page: Page, email: str, password: str = PASSWORD) -> None:
        expect(page.get_by_role("heading", name="Sign in to ketaflow")).to_be_visible()
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()

    @staticmethod
    def submit_code(page: Page, code: str) -> None:
        expect(page).to_have_url(re.compile(r"/accounts/mfa/"))
        page.get_by_label("Code").fill(code)
        page.get_by_role("button", name="Verify").click()
        page.wait_for_load_state()

    def sign_in(self, page: Page, user, *, start: str | None = "/accounts/login/") -> None:
        """Password, then the current TOTP code."""
        if start:
            page.goto(start)
        self.submit_password(page, user.email)
        self.submit_code(page, self.totp_code(user))


@pytest.fixture
def auth(live_server):
    return Auth()
