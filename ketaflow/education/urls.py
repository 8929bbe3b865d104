from django.urls import path

from ketaflow.education import views

app_name = "education"

urlpatterns = [
    path("", views.index, name="index"),
    path("<slug:route>/", views.topic, name="topic"),
    path("c/<slug:clinic_slug>/", views.index, name="clinic_index"),
    path("c/<slug:clinic_slug>/<slug:route>/", views.topic, name="clinic_topic"),
]
