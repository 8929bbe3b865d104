"""The extension points domain apps use: chart sections and banners, Today panels, navigation."""

import pytest
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from ketaflow.patients import chart
from ketaflow.web import dashboard, navigation


@pytest.fixture
def clean_registries(monkeypatch):
    monkeypatch.setattr(chart, "_sections", {})
    monkeypatch.setattr(chart, "_banners", [])
    monkeypatch.setattr(dashboard, "_panels", [])
    monkeypatch.setattr(navigation, "_items", [])


def test_chart_section_replaces_empty_state_and_banner_shows_on_every_tab(
    clean_registries, staff, patient, client_for
):
    @chart.section("measures")
    def measures(request, p):
        return format_html('<section id="m">Scores of {}</section>', p.mrn)

    @chart.banner
    def risk(request, p):
        return (
            format_html('<div class="risk" role="alert">Risk flag for {}</div>', p.mrn)
            if p.status == "active"
            else None
        )

    client = client_for(staff["nurse"])
    page = client.get(f"/patients/{patient.pk}/measures/").content.decode()
    assert f"Scores of {patient.mrn}" in page and "No questionnaires scored yet" not in page
    for url in (f"/patients/{patient.pk}/", f"/patients/{patient.pk}/notes/"):
        assert f"Risk flag for {patient.mrn}" in client.get(url).content.decode()
    assert "No notes yet" in client.get(f"/patients/{patient.pk}/notes/").content.decode()
    patient.status = "paused"
    patient.save()
    assert "Risk flag" not in client.get(f"/patients/{patient.pk}/").content.decode()
    with pytest.raises(ValueError, match="Unknown chart tab"):
        chart.section("nonsense")


def test_dashboard_panels_in_order(clean_registries, staff, client_for):
    dashboard.panel(order=20)(lambda request: mark_safe("<p>second</p>"))
    dashboard.panel(order=10)(lambda request: mark_safe("<p>first</p>"))
    dashboard.panel(order=30)(lambda request: None)
    page = client_for(staff["nurse"]).get("/today/").content.decode()
    assert page.index("first") < page.index("second")


def test_navigation_items_follow_the_permission_matrix(clean_registries, staff, client_for):
    navigation.item("Audit again", "audit:report", action="audit.view", order=5)
    navigation.item("Everyone", "patients:list", action="patients.view", order=6, namespace="x")
    owner = client_for(staff["owner"]).get("/today/").content.decode()
    nurse = client_for(staff["nurse"]).get("/today/").content.decode()
    assert "Audit again" in owner and "Audit again" not in nurse
    assert "Everyone" in nurse
