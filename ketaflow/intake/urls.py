from django.urls import path

from ketaflow.intake import views

app_name = "intake"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("request/<slug:slug>/", views.public_request, name="public_request"),
    path("request/<slug:slug>/thanks/", views.public_thanks, name="public_thanks"),
    path("requests/<int:pk>/", views.request_detail, name="request_detail"),
    path("requests/<int:pk>/status/", views.request_status, name="request_status"),
    path("requests/<int:pk>/convert/", views.request_convert, name="request_convert"),
    path("patients/<int:pk>/assessment/", views.assessment_edit, name="assessment_edit"),
    path("assessments/<int:pk>/sign/", views.assessment_sign, name="assessment_sign"),
    path("assessments/<int:pk>/addendum/", views.assessment_addendum, name="assessment_addendum"),
    path("patients/<int:pk>/decision/", views.decision, name="decision"),
    path("patients/<int:pk>/consent/<slug:route>/", views.consent_collect, name="consent_collect"),
    path("patients/<int:pk>/consent-link/", views.consent_link_create, name="consent_link_create"),
    path("consents/<int:pk>/", views.consent_view, name="consent_view"),
    path("consents/<int:pk>/pdf/", views.consent_pdf_view, name="consent_pdf"),
    path("consents/<int:pk>/withdraw/", views.consent_withdraw, name="consent_withdraw"),
    path("consent/sign/<str:token>/", views.consent_by_link, name="consent_by_link"),
    path("consent-documents/", views.documents, name="documents"),
    path("settings/eligibility/", views.eligibility_settings, name="eligibility_settings"),
    path("consent-documents/<slug:route>/", views.document_edit, name="document_edit"),
]
