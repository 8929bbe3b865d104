"""FHIR R4-shaped plain dicts for instruments and completed answer sets.

No FHIR library is imported here; the tests validate the output with the
fhir.resources R4B models.

Questionnaire: one "choice" item per question (linkId = item key), answerOption
valueCoding with code = the stored value, display = the option label, and the
ordinalValue extension carrying the score for numeric options. Branching becomes
enableWhen. Read-only calculated items follow: "total" (integer, coded with the
LOINC total or the local ketaflow code), "severity" (string, when the instrument
has bands) and "risk" (string, C-SSRS).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .model import LOCAL_SYSTEM, LOINC_SYSTEM, Instrument, Item
from .validation import Answer, ScoreResult, validate

ORDINAL_VALUE_URL = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
BASE_URL = "urn:ketaflow:questionnaire"
OPTION_SYSTEM = "urn:ketaflow:answer"
# Extension carrying ketaflow's "published" / "item-names" wording marker.
WORDING_EXTENSION_URL = "urn:ketaflow:fhir:wording"


def questionnaire_url(instrument: Instrument) -> str:
    return f"{BASE_URL}:{instrument.code}"


def _coding(item: Item, value: int | str) -> dict[str, Any]:
    option = next(o for o in item.options if o.value == value)
    coding: dict[str, Any] = {
        "system": f"{OPTION_SYSTEM}:{item.key}" if not item.is_yes_no else OPTION_SYSTEM,
        "code": str(option.value),
        "display": option.label,
    }
    if isinstance(option.value, int):
        coding["extension"] = [{"url": ORDINAL_VALUE_URL, "valueDecimal": option.value}]
    return coding


def _item(instrument: Instrument, item: Item) -> dict[str, Any]:
    out: dict[str, Any] = {
        "linkId": item.key,
        "text": item.text,
        "type": "choice",
        "required": item.required,
        "answerOption": [{"valueCoding": _coding(item, o.value)} for o in item.options],
    }
    if item.loinc:
        out["code"] = [{"system": LOINC_SYSTEM, "code": item.loinc}]
    if item.asked_if is not None:
        parent_key, wanted = item.asked_if
        parent = instrument.item(parent_key)
        wanted_coding = _coding(parent, wanted)
        wanted_coding.pop("extension", None)
        out["enableWhen"] = [
            {"question": parent_key, "operator": "=", "answerCoding": wanted_coding}
        ]
    return out


def to_fhir_questionnaire(instrument: Instrument) -> dict[str, Any]:
    items = [_item(instrument, it) for it in instrument.items]
    if instrument.score_range is not None:
        total: dict[str, Any] = {
            "linkId": "total",
            "text": f"{instrument.short_name} total",
            "type": "integer",
            "readOnly": True,
        }
        coding = instrument.total_coding
        if coding is not None:
            total["code"] = [{"system": coding[0], "code": coding[1]}]
        items.append(total)
    if instrument.bands:
        items.append({"linkId": "severity", "text": "Severity", "type": "string", "readOnly": True})
    if instrument.code == "cssrs":
        items.append({"linkId": "risk", "text": "Risk", "type": "string", "readOnly": True})

    out: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "id": instrument.code,
        "url": questionnaire_url(instrument),
        "version": instrument.version,
        "name": "".join(ch for ch in instrument.short_name.title() if ch.isalnum()),
        "title": instrument.name,
        "status": "active",
        "subjectType": ["Patient"],
        "copyright": instrument.licence_note,
        "extension": [{"url": WORDING_EXTENSION_URL, "valueCode": instrument.wording}],
        "item": items,
    }
    if instrument.stem:
        out["description"] = instrument.stem
    if instrument.loinc_panel:
        out["code"] = [{"system": LOINC_SYSTEM, "code": instrument.loinc_panel}]
    elif instrument.local_total_code:
        out["code"] = [{"system": LOCAL_SYSTEM, "code": instrument.code}]
    return out


def to_fhir_questionnaire_response(
    instrument: Instrument,
    answers: Mapping[Any, Answer],
    result: ScoreResult,
    subject_ref: str,
    authored_iso: str,
) -> dict[str, Any]:
    """A completed QuestionnaireResponse. `answers` are re-validated so only
    normalised values are written; `result` must be the score of these answers."""
    if result.instrument != instrument.code:
        raise ValueError(f"result is for {result.instrument!r}, not {instrument.code!r}")
    items = validate(instrument, answers)
    if dict(result.items) != items:
        raise ValueError("result does not match these answers")
    out_items: list[dict[str, Any]] = []
    for item in instrument.items:
        if item.key not in items:
            continue
        out_items.append(
            {
                "linkId": item.key,
                "text": item.text,
                "answer": [{"valueCoding": _coding(item, items[item.key])}],
            }
        )
    if result.total is not None:
        out_items.append(
            {
                "linkId": "total",
                "text": f"{instrument.short_name} total",
                "answer": [{"valueInteger": result.total}],
            }
        )
    if instrument.bands and result.severity is not None:
        out_items.append(
            {"linkId": "severity", "text": "Severity", "answer": [{"valueString": result.severity}]}
        )
    if instrument.code == "cssrs" and result.risk is not None:
        out_items.append(
            {"linkId": "risk", "text": "Risk", "answer": [{"valueString": result.risk}]}
        )
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{questionnaire_url(instrument)}|{instrument.version}",
        "status": "completed",
        "subject": {"reference": subject_ref},
        "authored": authored_iso,
        "item": out_items,
    }
