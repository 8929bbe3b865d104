"""``{% concurrent_medications patient %}``: the patient's medications from the assessment
with the reference's interaction notes, for the therapy pages and the treatment session page."""

from django import template

from ketaflow.therapy import selectors

register = template.Library()


@register.inclusion_tag("intake/_medications.html")
def concurrent_medications(patient):
    return {"medications": selectors.concurrent_medications(patient)}


@register.filter
def instrument_name(code: str) -> str:
    """The questionnaire's short name (PHQ-9) for its code (phq9)."""
    from ketaflow.clinical import instruments

    try:
        return instruments.get(code).short_name
    except instruments.UnknownInstrumentError:
        return code
