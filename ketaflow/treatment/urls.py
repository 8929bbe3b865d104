from django.urls import path

from ketaflow.treatment import views

app_name = "treatment"

urlpatterns = [
    path("", views.day, name="day"),
    path("board/", views.board, name="board"),
    path("board/live/", views.board_partial, name="board_partial"),
    path("appointments/<int:pk>/check-in/", views.open_session, name="open"),
    path("sessions/<int:pk>/", views.session, name="session"),
    path("sessions/<int:pk>/live/", views.session_live, name="session_live"),
    path("sessions/<int:pk>/pre-assessment/", views.pre_assessment, name="pre_assessment"),
    path("sessions/<int:pk>/vitals/", views.vitals, name="vitals"),
    path("sessions/<int:pk>/measure/", views.measure, name="measure"),
    path("sessions/<int:pk>/proceed/", views.proceed, name="proceed"),
    path("sessions/<int:pk>/dosing/", views.start_dosing, name="start_dosing"),
    path("sessions/<int:pk>/dose-event/", views.dose_event, name="dose_event"),
    path("sessions/<int:pk>/waste/", views.waste, name="waste"),
    path("sessions/<int:pk>/event/", views.event, name="event"),
    path("sessions/<int:pk>/recovery/", views.recovery, name="recovery"),
    path("sessions/<int:pk>/override/", views.override, name="override"),
    path("sessions/<int:pk>/discharge/", views.discharge, name="discharge"),
    path("sessions/<int:pk>/cancel/", views.cancel, name="cancel"),
    path("sessions/<int:pk>/stop/", views.stop, name="stop"),
    path("sessions/<int:pk>/instructions/", views.instructions, name="instructions"),
    path("sessions/<int:pk>/note/", views.note, name="note"),
    path("sessions/<int:pk>/note/cosign/", views.cosign, name="cosign"),
    path("sessions/<int:pk>/note/addendum/", views.addendum, name="addendum"),
    path("sessions/<int:pk>/note.pdf", views.note_pdf, name="note_pdf"),
    path("sessions/<int:pk>/rems/", views.rems_form, name="rems"),
    path("sessions/<int:pk>/rems.pdf", views.rems_pdf, name="rems_pdf"),
    path("sessions/<int:pk>/rems.csv", views.rems_csv, name="rems_csv"),
    path("alerts/<int:pk>/acknowledge/", views.acknowledge, name="acknowledge"),
    path("rems/", views.rems_list, name="rems_list"),
    path("settings/", views.settings_view, name="settings"),
]
