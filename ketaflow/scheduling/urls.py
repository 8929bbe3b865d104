from django.urls import path

from ketaflow.scheduling import views

app_name = "scheduling"

urlpatterns = [
    path("", views.week, name="week"),
    path("day/", views.day, name="day"),
    path("book/", views.book, name="book"),
    path("plan/<int:pk>/course/", views.book_course, name="book_course"),
    path("appointments/<int:pk>/", views.appointment_detail, name="appointment"),
    path("appointments/<int:pk>/ics/", views.appointment_ics, name="appointment_ics"),
    path(
        "appointments/<int:pk>/<slug:action>/", views.appointment_action, name="appointment_action"
    ),
    path("settings/", views.settings_view, name="settings"),
    path("settings/staff/<int:pk>/", views.staff_hours, name="staff_hours"),
    path("settings/types/<int:pk>/", views.type_minutes, name="type_minutes"),
    path("settings/closures/<int:pk>/delete/", views.closure_delete, name="closure_delete"),
    path("feed/", views.feed_token, name="feed_token"),
    path("feed/<str:token>.ics", views.feed, name="feed"),
]
