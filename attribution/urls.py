from django.urls import path

from . import views

urlpatterns = [
    path("t/<str:code>", views.tracking_redirect, name="tracking-redirect"),
]
