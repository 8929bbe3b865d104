from django.urls import path

from ketaflow.patients import views

app_name = "patients"

urlpatterns = [
    path("", views.patient_list, name="list"),
    path("new/", views.patient_create, name="create"),
    path("<int:pk>/", views.patient_chart, name="chart"),
    path("<int:pk>/edit/", views.patient_edit, name="edit"),
    path("<int:pk>/emergency-access/", views.emergency_access, name="emergency_access"),
    path("<int:pk>/<slug:tab>/", views.patient_chart, name="chart_tab"),
]
