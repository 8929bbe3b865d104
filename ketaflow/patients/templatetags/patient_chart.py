from django import template

from ketaflow.patients import selectors
from ketaflow.patients.chart import banners_for
from ketaflow.patients.scope import ChartScope

register = template.Library()


def _banner(request, patient):
    clinic = getattr(request, "clinic", None) if request else None
    if clinic is None or patient.clinic_id != clinic.pk:
        return None
    banner = selectors.safety_banner(clinic, patient, scope=ChartScope(request.user, clinic))
    audit_similar_names(request, [banner])
    return banner


def audit_similar_names(request, banners) -> None:
    """The patients named by a similar-name warning are shown (name, date of birth, MRN):
    one audited list read for them, like any list of patients."""
    from ketaflow.audit import services as audit

    shown = sorted({o.pk for b in banners for o in b.same_name if o is not None})
    if shown:
        audit.record_list_read(
            request,
            patient_ids=shown,
            object_type="patients.patient",
            detail={"similar_name_warning": True},
        )


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
