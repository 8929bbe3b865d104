"""The session page and the session API show the PK prediction honestly (issue 17, item 7)."""

import html
import re

from ketaflow.treatment import selectors


def _caption(page):
    return html.unescape(
        re.search(r'<figcaption id="kf-pk-cap">(.*?)</figcaption>', page, re.S).group(1)
    )


def test_iv_session_page_and_api_show_the_same_range_across_models(build, staff, client_for):
    s = build("monitoring")
    client = client_for(staff["nurse"])
    page = client.get(f"/treatment/sessions/{s.pk}/").content.decode()
    caption = _caption(page)
    shown = client.get(f"/api/v1/treatment/sessions/{s.pk}/prediction").json()["prediction"]
    below = shown["time_below"]
    assert below["basis"] == "range across the 4 shipped racemic ketamine models"
    assert [m["model"] for m in below["by_model"]] == [
        "domino",
        "clements-250",
        "hijazi-2003",
        "kamp-2020",
    ]
    assert below["text"] in caption  # the page and the API say the same thing
    assert "venous blood" in caption and "Krystal" in caption
    assert not re.search(r"below 100 ng/mL at \d+ min", page)
    fc, _markers = selectors.session_forecast(s, selectors.session_view(s))
    assert fc.time_below.sentence() == below["text"]


def test_esketamine_session_has_no_racemic_band(build, staff, client_for):
    s = build("monitoring", route="esk")
    client = client_for(staff["nurse"])
    page = client.get(f"/treatment/sessions/{s.pk}/").content.decode()
    caption = _caption(page)
    assert "does not apply to esketamine" in caption and "Shaded" not in caption
    svg = selectors.pk_overlay(s, selectors.session_view(s))
    assert 'fill="#e8d9f2"' not in svg and "100-250 ng/mL measured" not in svg
    shown = client.get(f"/api/v1/treatment/sessions/{s.pk}/prediction").json()["prediction"]
    assert shown["reference_band"] is None and shown["time_below"] is None


def test_session_prediction_api_is_null_before_a_dose_and_never_a_500(
    build, staff, client_for, monkeypatch
):
    client = client_for(staff["nurse"])
    before = build("checked_in")
    body = client.get(f"/api/v1/treatment/sessions/{before.pk}/prediction").json()
    assert body == {"session_id": before.pk, "prediction": None}
    s = build("monitoring")

    def broken(*args):
        raise ValueError("pause outside the infusion")

    monkeypatch.setattr(selectors, "session_forecast", broken)
    r = client.get(f"/api/v1/treatment/sessions/{s.pk}/prediction")
    assert r.status_code == 200
    assert r.json()["prediction"] is None and "pause" in r.json()["unavailable"]
