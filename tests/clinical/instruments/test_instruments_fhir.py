"""FHIR-shaped dicts, validated with the fhir.resources R4B models."""

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from ketaflow.clinical.instruments import (
    all_instruments,
    get,
    score,
    to_fhir_questionnaire,
    to_fhir_questionnaire_response,
)

SAMPLES = {
    "phq9": {**{str(k): 2 for k in range(1, 10)}, "difficulty": 1},
    "gad7": {str(k): 1 for k in range(1, 8)},
    "cssrs": {"1": "yes", "2": "yes", "3": "no", "4": "no", "5": "no", "6": "yes", "6b": "no"},
    "who5": {str(k): 3 for k in range(1, 6)},
    "qids-sr16": {str(k): 1 for k in range(1, 17) if k not in (7, 9)},
    "pcl5": {str(k): 2 for k in range(1, 21)},
    "madrs": {str(k): 3 for k in range(1, 11)},
    "wsas": {str(k): 4 for k in range(1, 6)},
    "moaas": {"1": 4},
    "cadss": {str(k): 1 for k in range(1, 24)},
    "bprs-positive": {str(k): 1 for k in range(1, 5)},
}


def test_samples_cover_every_instrument():
    assert set(SAMPLES) == {i.code for i in all_instruments()}


@pytest.mark.parametrize("code", sorted(SAMPLES))
def test_questionnaire_validates_and_mirrors_items(code):
    inst = get(code)
    q = to_fhir_questionnaire(inst)
    model = Questionnaire.model_validate(q)
    assert model.status == "active"
    by_link = {i["linkId"]: i for i in q["item"]}
    for item in inst.items:
        fi = by_link[item.key]
        assert fi["text"] == item.text
        assert fi["type"] == "choice"
        assert fi["required"] is item.required
        codes = [o["valueCoding"]["code"] for o in fi["answerOption"]]
        assert codes == [str(o.value) for o in item.options]
        assert [o["valueCoding"]["display"] for o in fi["answerOption"]] == [
            o.label for o in item.options
        ]
    extra = set(by_link) - set(inst.item_keys)
    expected_extra = set()
    if inst.score_range:
        expected_extra.add("total")
    if inst.bands:
        expected_extra.add("severity")
    if code == "cssrs":
        expected_extra.add("risk")
    assert extra == expected_extra
    assert q["extension"][0]["valueCode"] == inst.wording


def test_phq9_loinc_codes_and_ordinal_values():
    q = to_fhir_questionnaire(get("phq9"))
    assert q["code"] == [{"system": "http://loinc.org", "code": "44249-1"}]
    by_link = {i["linkId"]: i for i in q["item"]}
    assert by_link["9"]["code"] == [{"system": "http://loinc.org", "code": "44260-8"}]
    assert by_link["total"]["code"] == [{"system": "http://loinc.org", "code": "44261-6"}]
    assert by_link["total"]["readOnly"] is True
    opt = by_link["1"]["answerOption"][2]["valueCoding"]
    assert opt["extension"] == [
        {"url": "http://hl7.org/fhir/StructureDefinition/ordinalValue", "valueDecimal": 2}
    ]
    assert "code" not in by_link["1"]


def test_madrs_total_uses_local_code():
    q = to_fhir_questionnaire(get("madrs"))
    total = next(i for i in q["item"] if i["linkId"] == "total")
    assert total["code"] == [{"system": "urn:ketaflow:instrument", "code": "ketaflow-madrs-total"}]


def test_cssrs_branching_as_enable_when():
    q = to_fhir_questionnaire(get("cssrs"))
    by_link = {i["linkId"]: i for i in q["item"]}
    for key in ("3", "4", "5"):
        (cond,) = by_link[key]["enableWhen"]
        assert (cond["question"], cond["operator"], cond["answerCoding"]["code"]) == (
            "2",
            "=",
            "yes",
        )
    (cond,) = by_link["6b"]["enableWhen"]
    assert (cond["question"], cond["answerCoding"]["code"]) == ("6", "yes")
    for key in ("1", "2", "6"):
        assert "enableWhen" not in by_link[key]


@pytest.mark.parametrize("code", sorted(SAMPLES))
def test_questionnaire_response_validates(code):
    inst = get(code)
    answers = SAMPLES[code]
    result = score(code, answers)
    qr = to_fhir_questionnaire_response(
        inst, answers, result, "Patient/synthetic-001", "2025-03-03T09:00:00+00:00"
    )
    model = QuestionnaireResponse.model_validate(qr)
    assert model.status == "completed"
    assert qr["subject"] == {"reference": "Patient/synthetic-001"}
    q_items = {i["linkId"]: i for i in to_fhir_questionnaire(inst)["item"]}
    by_link = {i["linkId"]: i for i in qr["item"]}
    assert set(by_link) <= set(q_items)
    for key, value in result.items.items():
        (ans,) = by_link[key]["answer"]
        allowed = [o["valueCoding"]["code"] for o in q_items[key]["answerOption"]]
        assert ans["valueCoding"]["code"] == str(value)
        assert ans["valueCoding"]["code"] in allowed
    if result.total is not None:
        assert by_link["total"]["answer"] == [{"valueInteger": result.total}]
    if code == "cssrs":
        assert by_link["risk"]["answer"] == [{"valueString": "moderate"}]
        assert "total" not in by_link


def test_phq9_response_has_severity_and_skips_unanswered_optional():
    answers = {str(k): 1 for k in range(1, 10)}
    qr = to_fhir_questionnaire_response(
        get("phq9"), answers, score("phq9", answers), "Patient/x", "2025-03-03"
    )
    links = [i["linkId"] for i in qr["item"]]
    assert "difficulty" not in links
    assert links[-2:] == ["total", "severity"]
    assert qr["item"][-1]["answer"] == [{"valueString": "mild"}]


def test_response_refuses_mismatched_result():
    a = {str(k): 1 for k in range(1, 10)}
    b = {str(k): 2 for k in range(1, 10)}
    with pytest.raises(ValueError, match="does not match"):
        to_fhir_questionnaire_response(get("phq9"), a, score("phq9", b), "Patient/x", "2025-03-03")
    with pytest.raises(ValueError, match="not 'gad7'"):
        to_fhir_questionnaire_response(get("gad7"), a, score("phq9", a), "Patient/x", "2025-03-03")
