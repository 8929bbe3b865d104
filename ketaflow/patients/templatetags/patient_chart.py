from django import template

from ketaflow.patients import selectors
from ketaflow.patients.chart import banners_for
from ketaflow.patients.scope import ChartScope

register = template.Library()


def _banner(request, patient):
    clinic = getattr(request, "clinic", None) if request else None
    if clinic is None or patient.clinic_id != clinic.pk:
        return None
    return selectors.safety_banner(clinic, patient, scope=ChartScope(request.user, clinic))


@register.inclusion_tag("patients/_header.html", takes_context=True)
def patient_header(context, patient):
    """The patient header, its safety banner (two identifiers, age, allergies, risk flag,
    consent, similar names in today) and every registered banner, for any patient page."""
    request = context.get("request")
    return {
        "patient": patient,
        "b": _banner(request, patient),
        "banners": banners_for(request, patient) if request else [],
    }


@register.inclusion_tag("patients/_safety.html", takes_context=True)
def safety_banner(context, patient, banner=None):
    """The safety banner alone (the session page, each chair of the chair board); pass a
    precomputed ``banner`` to avoid a query per patient."""
    return {"b": banner or _banner(context.get("request"), patient)}
