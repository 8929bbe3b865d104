"""Pre-screen summary of a public consultation request (pure Python, no Django).

A triage aid for the intake queue, built only from what the requester typed, which is
untrusted. It never decides eligibility: the clinical assessment and the rules in
``ketaflow.clinical.eligibility`` do. The wording of each reason names the fact of
``clinical-reference.md`` section 4 it relies on.

* likely not suitable: no antidepressant tried yet (the treatment-resistant depression
  definition needs two or more without adequate response), or the request is about neither
  depression nor a depression diagnosis (the cited evidence and the esketamine label are for
  depression, section 1).
* needs review: any warning of section 4 reported (pregnancy, heart or blood-pressure
  problems, psychosis or mania, substance use), a single antidepressant tried, an
  antidepressant that helped, an uncertain diagnosis, bipolar depression, or PHQ-9 item 9
  above 0 (also marked urgent, with the urgency of ``clinical.instruments.suicidality``:
  the same table that alerts on the chart once the request becomes a patient).
* likely candidate: otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ketaflow.clinical.instruments import suicidality

LIKELY = "likely"
REVIEW = "review"
NOT_SUITABLE = "not_suitable"

SEEKING = (
    ("depression", "Depression"),
    ("anxiety", "Anxiety"),
    ("ptsd", "PTSD"),
    ("bipolar_depression", "Bipolar depression"),
    ("other", "Something else"),
)
SRC = "clinical-reference.md section 4"


@dataclass(frozen=True)
class Summary:
    level: str
    reasons: tuple[str, ...]
    urgent: bool = False


def summarise(answers: Mapping[str, Any], phq9_item9: int | None = None) -> Summary:
    """``answers``: seeking (list of codes), diagnosed_depression (yes/no/unsure),
    antidepressants_tried (int >= 0), antidepressant_helped, antidepressant_intolerance,
    therapy_tried, referred, pregnant, heart_bp, psychosis_mania, substance_use (yes/no/unsure).
    """
    seeking = set(answers.get("seeking") or ())
    depression = bool(seeking & {"depression", "bipolar_depression"})
    tried = int(answers.get("antidepressants_tried") or 0)
    not_suitable: list[str] = []
    review: list[str] = []

    if tried == 0:
        not_suitable.append(
            "No antidepressant tried yet: treatment-resistant depression means no adequate "
            f"response to two or more antidepressants ({SRC})."
        )
    elif tried == 1:
        review.append(
            "One antidepressant tried: treatment-resistant depression needs two or more "
            f"without adequate response ({SRC})."
        )
    if not depression and answers.get("diagnosed_depression") != "yes":
        not_suitable.append(
            "Asks for help with neither depression nor a diagnosed depression: the ketamine "
            "evidence and the esketamine indication are for depression "
            "(clinical-reference.md sections 1 and 4)."
        )
    elif answers.get("diagnosed_depression") != "yes":
        review.append("Depression not (or not surely) diagnosed: confirm the diagnosis.")
    if "bipolar_depression" in seeking:
        review.append(
            f"Bipolar depression: a history of mania needs a prescriber's review ({SRC})."
        )
    if tried >= 1 and answers.get("antidepressant_helped") in ("yes", "unsure"):
        review.append(
            "An antidepressant may have helped: check whether the trials count as failed "
            f"(adequate dose and duration, no adequate response) ({SRC})."
        )
    if answers.get("antidepressant_intolerance") == "yes":
        review.append(
            "Could not tolerate an antidepressant: a trial stopped for intolerance does not "
            f"count as a failed trial ({SRC})."
        )
    flags = (
        ("pregnant", "Pregnancy or breastfeeding reported or possible"),
        ("heart_bp", "Heart or blood-pressure problems reported"),
        ("psychosis_mania", "History of psychosis or mania reported"),
        ("substance_use", "Substance use reported"),
    )
    for key, text in flags:
        if answers.get(key) in ("yes", "unsure"):
            review.append(f"{text}: a warning that needs a prescriber's review ({SRC}).")
    endorsed = suicidality.evaluate("phq9", {"9": phq9_item9}) if phq9_item9 is not None else ()
    urgent = bool(endorsed)
    if endorsed:
        top = endorsed[0]
        review.append(
            f"PHQ-9 item 9 (thoughts of being better off dead or of self-harm) answered "
            f"{top.answer} (above 'Not at all'): "
            f"{suicidality.URGENCY_LABELS[top.urgency].lower()}, "
            f"{suicidality.URGENCY_ACTIONS[top.urgency]}. Creating the patient puts this "
            "answer on the chart as a risk flag."
        )
    if not_suitable:
        return Summary(NOT_SUITABLE, tuple(not_suitable + review), urgent)
    if review:
        return Summary(REVIEW, tuple(review), urgent)
    return Summary(
        LIKELY,
        (
            "Reports diagnosed depression, two or more antidepressants tried without help, and "
            "none of the warnings asked about. Confirm at the consultation.",
        ),
        urgent,
    )
