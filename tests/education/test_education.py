import re

import pytest
from django.test import Client

from ketaflow.education.content import TOPICS, curve_for


@pytest.mark.parametrize("route", sorted(TOPICS))
def test_every_route_page_is_public_plain_and_printable(db, route):
    page = Client().get(f"/education/{route}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert TOPICS[route].title in html
    assert "988" in html and "911" in html  # generic crisis resources without a clinic
    assert "Do not drive" in html and "data-print" in html
    assert "<script>" not in html


def test_clinic_page_shows_the_clinics_own_crisis_resources(clinic):
    clinic.crisis_line = "Lisbon SOS line 808 200 204"
    clinic.emergency_phone = "112"
    clinic.save()
    html = Client().get(f"/education/c/{clinic.slug}/iv-ketamine/").content.decode()
    assert "Lisbon SOS line 808 200 204" in html and "call 112" in html
    assert Client().get("/education/c/no-such-clinic/iv-ketamine/").status_code == 404
    assert Client().get("/education/unknown-route/").status_code == 404


def test_iv_curve_is_a_labelled_population_estimate():
    curve = curve_for("iv-ketamine")
    assert curve is not None and "<svg" in curve.svg and "<title>" in curve.svg
    assert "Population estimate, not a measurement" in curve.svg
    # 0.5 mg/kg over 40 min: the level passes 100 ng/mL during the infusion and falls below it after.
    assert 40 < curve.falls_below_100_min < 240
    assert "Kamp" in curve.model_citation


def test_esketamine_curve_has_no_racemic_range_and_routes_without_models_have_no_curve(db):
    assert curve_for("esketamine-nasal").falls_below_100_min is None
    assert curve_for("im-ketamine") is None
    html = Client().get("/education/esketamine-nasal/").content.decode()
    assert re.search(r"not eat for 2 hours", html)
    assert "not a measurement of you" in html
