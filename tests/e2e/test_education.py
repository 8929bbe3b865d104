import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


def test_patient_reads_the_iv_guide_on_a_phone(page, live_server, shoot, console_log, clinic):
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/education/c/{clinic.slug}/iv-ketamine/")
    expect(page.get_by_role("heading", name="Ketamine infusion (IV)")).to_be_visible()
    expect(
        page.get_by_role("img", name=re.compile(r"^Predicted ketamine concentration \(.*kamp-2020"))
    ).to_be_visible()
    expect(page.get_by_text("not a measurement of you")).to_be_visible()
    expect(page.locator(".crisis")).to_contain_text(clinic.crisis_line)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1
    shoot(page, "ed01-iv-guide-phone")
    assert not [e for e in console_log if e[0] in {"error", "pageerror"}]
