from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from events.apis import EventDetailApi, EventsApi, api_not_found
from revvvs import views

handler404 = "revvvs.views.handler404"
handler500 = "revvvs.views.handler500"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    re_path(r"^api/v1/events/?$", EventsApi.as_view(), name="events"),
    re_path(
        r"^api/v1/events/(?P<event_id>[^/]+)/?$", EventDetailApi.as_view(), name="event-detail"
    ),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    re_path(r"^api/", api_not_found),
    path("admin/", admin.site.urls),
    path("", include("attribution.urls")),
    path("", include("portal.urls")),
]
