from django.urls import path

from ketaflow.web import views

app_name = "web"

urlpatterns = [path("", views.today, name="today")]
