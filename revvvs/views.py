from django.db import connection
from django.http import HttpResponse, JsonResponse


def healthz(request):
    """200 when the database answers, 503 otherwise (for load balancers and orchestrators)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:  # any failure to reach the database means: not ready
        return JsonResponse({"status": "unavailable", "database": "unreachable"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def handler404(request, exception=None):
    if _is_api(request):
        return JsonResponse(
            {"code": "not_found", "message": f"no API route {request.path}"}, status=404
        )
    return HttpResponse("<h1>Not found</h1><p>There is nothing at this address.</p>", status=404)


def handler500(request):
    if _is_api(request):
        return JsonResponse(
            {
                "code": "server_error",
                "message": "unexpected error; retry with the same idempotency_key",
            },
            status=500,
        )
    return HttpResponse("<h1>Server error</h1>", status=500)
