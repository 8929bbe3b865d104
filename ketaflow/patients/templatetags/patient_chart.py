from django import template

from ketaflow.patients.chart import banners_for

register = template.Library()


@register.inclusion_tag("patients/_header.html", takes_context=True)
def patient_header(context, patient):
    """The patient header with every registered banner (risk flags, ...), for any patient page."""
    request = context.get("request")
    return {"patient": patient, "banners": banners_for(request, patient) if request else []}
