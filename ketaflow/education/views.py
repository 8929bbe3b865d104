from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.utils.safestring import mark_safe

from ketaflow.education.content import AFTER_SESSION, COMMON_EFFECTS, TOPICS, curve_for
from ketaflow.tenancy.models import Clinic


def index(request, clinic_slug=None):
    clinic = get_object_or_404(Clinic, slug=clinic_slug) if clinic_slug else None
    return render(request, "education/index.html", {"topics": TOPICS.values(), "clinic": clinic})


def topic(request, route, clinic_slug=None):
    """One route's page for patients: public, printable, no patient data."""
    if route not in TOPICS:
        raise Http404("No such topic.")
    clinic = get_object_or_404(Clinic, slug=clinic_slug) if clinic_slug else None
    curve = curve_for(route)
    return render(
        request,
        "education/topic.html",
        {
            "topic": TOPICS[route],
            "clinic": clinic,
            "effects": COMMON_EFFECTS,
            "after": AFTER_SESSION,
            "curve": curve,
            # The SVG is built by ketaflow.clinical.pk.svg from numbers and escaped text only.
            "curve_svg": mark_safe(curve.svg) if curve else "",  # noqa: S308
        },
    )
