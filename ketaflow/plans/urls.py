from django.urls import path

from ketaflow.plans import views

app_name = "plans"

urlpatterns = [
    path("protocols/", views.protocol_list, name="protocols"),
    path("protocols/<slug:code>/", views.protocol_detail, name="protocol"),
    path("protocols/<slug:code>/edit/", views.protocol_edit, name="protocol_edit"),
    path("settings/", views.settings_view, name="settings"),
    path("dose/", views.dose_calculator, name="dose"),
    path("patient/<int:pk>/new/", views.plan_create, name="create"),
    path("<int:pk>/", views.plan_detail, name="detail"),
    path("<int:pk>/revise/", views.plan_revise, name="revise"),
    path("<int:pk>/status/", views.plan_status, name="status"),
    path("<int:pk>/transition/", views.plan_transition, name="transition"),
]
