"""The tracking edge: `GET /t/{code}` served without the web app's middleware stack.

The click redirect is the busiest request of the product and answers a bare 302 to every
visitor of every affiliate. Behind Django's full stack (sessions, CSRF, auth, messages,
clickjacking, static files, URL resolving) the framework alone cost as much CPU as the
redirect's own work (docs/performance.md, "Click redirect"). `revvvs.wsgi.application`
therefore hands `/t/...` requests straight to the same view, `views.tracking_redirect`,
behind the one middleware that matters for a redirect (SecurityMiddleware: the HTTPS
redirect and HSTS), with the database's 503 and Django's own error responses; every other
path goes to Django as usual. The Django URLconf still routes `/t/<code>` to the same view
(the test client and any server started without this WSGI application use it).
"""

from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import WSGIRequest
from django.db import InterfaceError, OperationalError
from django.middleware.security import SecurityMiddleware

from revvvs.middleware import database_unavailable_response

from .views import tracking_redirect

PREFIX = "/t/"


class TrackingEdge:
    """WSGI application: `/t/{code}` to the tracking redirect, anything else to `app`."""

    def __init__(self, app):
        self.app = app
        self.handle = SecurityMiddleware(self._redirect)

    def __call__(self, environ, start_response):
        if not environ.get("PATH_INFO", "").startswith(PREFIX):
            return self.app(environ, start_response)
        request = WSGIRequest(environ)
        code = request.path_info[len(PREFIX) :]
        if not code or "/" in code:  # not a tracking link's path: Django's 404
            return self.app(environ, start_response)
        # When the server closes the response, request_finished checks the database
        # connection's age and health, as after any Django request (request_started would
        # check it a second time; the redirect rarely queries, see selectors).
        request.tracking_code = code
        response = self.handle(request)
        response._handler_class = self.__class__
        headers = [
            *response.items(),
            *(("Set-Cookie", cookie.OutputString()) for cookie in response.cookies.values()),
        ]
        start_response(f"{response.status_code} {response.reason_phrase}", headers)
        return response

    @staticmethod
    def _redirect(request):
        try:
            # The Host check that CommonMiddleware makes for the rest of the site
            # (ALLOWED_HOSTS): a bad Host header is a 400 here too.
            request.get_host()
            return tracking_redirect(request, request.tracking_code)
        except (OperationalError, InterfaceError):
            return database_unavailable_response(request)
        except Exception as exc:  # noqa: BLE001 - answered as Django would: logged, 500 page
            return response_for_exception(request, exc)
