"""The project's URLs plus `/bench/302`: the framework's own ceiling for a redirect (the same
middleware, no database), measured beside GET /t/{code} by bench/clicks.py."""

from django.http import HttpResponseRedirect
from django.urls import path

from revvvs.urls import urlpatterns as project_urlpatterns


def bare_redirect(request):
    return HttpResponseRedirect("https://example.com/welcome?click_id=x")


urlpatterns = [path("bench/302", bare_redirect), *project_urlpatterns]
