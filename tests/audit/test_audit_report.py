import csv
import io

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
