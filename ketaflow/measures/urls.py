from django.urls import path

from ketaflow.measures import views

app_name = "measures"

urlpatterns = [
    path("alerts/", views.alert_list, name="alerts"),
    path("alerts/<int:pk>/acknowledge/", views.acknowledge, name="acknowledge"),
    path("flags/<int:pk>/clear/", views.clear_flag, name="clear_flag"),
    path("patients/<int:pk>/record/", views.record, name="record"),
    path("patients/<int:pk>/send/", views.send_link, name="send"),
    path("patients/<int:pk>/schedule/", views.schedule, name="schedule"),
    path("links/<int:pk>/revoke/", views.revoke_link, name="revoke_link"),
    path("schedules/<int:pk>/stop/", views.stop_schedule, name="stop_schedule"),
    path("administrations/<int:pk>/", views.administration_detail, name="administration"),
    path("settings/", views.settings_view, name="settings"),
    # Public: the patient's secure link (no sign-in; the token is the capability).
    path("r/<str:token>/", views.respond, name="respond"),
]
