"""The assessment's baseline questionnaires come from the measures app (latest of each)."""

from ketaflow.intake.hooks import baseline_measures
from ketaflow.measures import services as measures


def test_baseline_rows_show_the_latest_score_of_each_instrument(staff, patient):
    rows = {row["code"]: row for row in baseline_measures(patient)}
    assert set(rows) == {"phq9", "gad7", "cssrs"} and all(
        row["score"] is None for row in rows.values()
    )
    for value in (2, 1):
        measures.record_administration(
            patient=patient,
            actor=staff["nurse"],
            instrument="phq9",
            answers={str(i): value for i in range(1, 9)} | {"9": 0},
        )
    rows = {row["code"]: row for row in baseline_measures(patient)}
    assert (rows["phq9"]["score"].total, rows["phq9"]["score"].severity) == (
        8,
        "mild",
    )  # the latest, not 16
    assert rows["gad7"]["score"] is None
    assert rows["gad7"]["url"] == f"/measures/patients/{patient.pk}/record/?instrument=gad7"
