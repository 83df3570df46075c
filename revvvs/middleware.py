from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse


class DatabaseUnavailableMiddleware:
    """A database that cannot be reached (restart, failover) answers a clean 503 with
    Retry-After instead of a 500; nothing was acknowledged, so a retry with the same
    idempotency keys is safe."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        return database_unavailable_response(request)


def database_unavailable_response(request):
    """The 503 of a request that could not reach the database (also used by the tracking
    edge, attribution/edge.py, which runs without this middleware)."""
    from django.db import connection

    connection.close_if_unusable_or_obsolete()
    if request.path.startswith("/api/"):
        response = JsonResponse(
            {
                "code": "unavailable",
                "message": "the database is unavailable; retry with the same idempotency_key",
            },
            status=503,
        )
    else:
        response = HttpResponse("Service temporarily unavailable, try again shortly.", status=503)
    response["Retry-After"] = "5"
    return response
