from django.urls import path

from ketaflow.therapy import views

app_name = "therapy"

urlpatterns = [
    path("patients/<int:pk>/notes/new/", views.note_new, name="note_new"),
    path("notes/<int:pk>/", views.note_detail, name="note"),
    path("notes/<int:pk>/edit/", views.note_edit, name="note_edit"),
    path("notes/<int:pk>/sign/", views.note_sign, name="note_sign"),
    path("notes/<int:pk>/addendum/", views.note_addendum, name="note_addendum"),
    path("notes/<int:pk>/share/", views.note_share, name="note_share"),
    path("notes/<int:pk>/release/", views.note_release, name="note_release"),
    path("patients/<int:pk>/plan/", views.therapy_plan, name="plan"),
    path("patients/<int:pk>/goals/new/", views.goal_new, name="goal_new"),
    path("goals/<int:pk>/", views.goal_edit, name="goal_edit"),
    path("patients/<int:pk>/practices/new/", views.practice_new, name="practice_new"),
    path("practices/<int:pk>/", views.practice_edit, name="practice_edit"),
    path("practices/<int:pk>/day/", views.practice_day, name="practice_day"),
    path("patients/<int:pk>/practice-link/", views.practice_link, name="practice_link"),
    path(
        "practice-links/<int:pk>/revoke/", views.practice_link_revoke, name="practice_link_revoke"
    ),
    path("patients/<int:pk>/care-team/", views.care_team, name="care_team"),
    path("patients/<int:pk>/care-team/new/", views.clinician_new, name="clinician_new"),
    path("clinicians/<int:pk>/", views.clinician_edit, name="clinician_edit"),
    path("patients/<int:pk>/letters/new/", views.letter_new, name="letter_new"),
    path("letters/<int:pk>/", views.letter_detail, name="letter"),
    path("letters/<int:pk>/edit/", views.letter_edit, name="letter_edit"),
    path("letters/<int:pk>/sign/", views.letter_sign, name="letter_sign"),
    path("letters/<int:pk>/send/", views.letter_send, name="letter_send"),
    path("letters/<int:pk>/pdf/", views.letter_pdf, name="letter_pdf"),
    path("courses/<int:pk>/", views.course, name="course"),
    path("patients/<int:pk>/export/", views.export, name="export"),
    path("settings/", views.settings_view, name="settings"),
    # Public: the patient's practice link (no sign-in; the token is the capability).
    path("r/<str:token>/", views.practice_respond, name="practice_respond"),
]
