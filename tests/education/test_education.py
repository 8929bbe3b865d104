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
    # Four models, each named; the time below 100 ng/mL is their range, not one point.
    for code in ("domino", "clements-250", "hijazi-2003", "kamp-2020"):
        assert f"<title>{code}</title>" in curve.svg
    assert "between about 44 and 68 minutes" in curve.time_below
    assert "Kamp" in " ".join(curve.model_citations)
    assert "Krystal" in curve.band_source and "Zanos" in curve.band_source


# Words that tie a blood level to how a person feels or to the effect of the treatment.
EFFECT_WORDS = re.compile(
    r"(effects? happen|dreamlike|dissociat|feel|work|respon|antidepress|benefit)[^.]*"
    r"(level|ng/mL|band|curve)|(level|ng/mL|band|curve)[^.]*(effects? happen|dreamlike|"
    r"dissociat|feel\b|feeling|respon|antidepress|benefit)",
    re.IGNORECASE,
)


@pytest.mark.parametrize("route", sorted(TOPICS))
def test_no_patient_text_ties_a_level_to_an_effect(db, route):
    """The reference gives no concentration-effect relation, so no page claims one; the
    only sentence naming both says the curve does not tell how you will feel."""
    html = Client().get(f"/education/{route}/").content.decode()
    text = re.sub(r"<svg.*?</svg>", " ", html, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        if EFFECT_WORDS.search(sentence):
            assert "does not tell you how you will feel" in sentence, sentence
    assert "mostly while the level" not in text
    assert "clinical reference" not in text.lower()


def test_iv_page_shows_the_model_range_and_the_measured_range_with_sources(db):
    html = Client().get("/education/iv-ketamine/").content.decode()
    assert "between about 44 and 68 minutes after the drip starts" in html
    assert "Krystal et al. 1994" in html and "Zanos et al. 2018" in html
    assert "from a vein" in html


def test_esketamine_curve_has_no_racemic_range_and_routes_without_models_have_no_curve(db):
    curve = curve_for("esketamine-nasal")
    assert curve.time_below == "" and curve.band_source == ""
    assert "ng/mL measured" not in curve.svg and 'fill="#e8d9f2"' not in curve.svg
    assert "does not apply to esketamine" in curve.svg
    assert curve_for("im-ketamine") is None
    html = Client().get("/education/esketamine-nasal/").content.decode()
    assert re.search(r"not eat for 2 hours", html)
    assert "not a measurement of you" in html
