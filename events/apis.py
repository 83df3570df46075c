"""The S2S Event API (SPEC §3): POST /api/v1/events and GET /api/v1/events/{event_id}."""

import json
import uuid
from decimal import Decimal

from django.conf import settings
from django.http import JsonResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView, exception_handler

from . import selectors
from .ratelimit import rate_limit_hit
from .services import api_key_authenticate, events_ingest

MAX_BATCH = 100


class ApiError(exceptions.APIException):
    """A whole-request error answered as {"code", "message"}."""

    def __init__(self, status_code: int, code: str, message: str, headers: dict | None = None):
        self.status_code = status_code
        self.code = code
        self.message = message
        self.headers = headers or {}
        super().__init__(detail=message, code=code)


def error_response(status_code: int, code: str, message: str, headers: dict | None = None):
    response = JsonResponse({"code": code, "message": message}, status=status_code)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


_DRF_CODES = {
    405: ("method_not_allowed", "{method} is not allowed here; see /api/docs/"),
    406: ("not_acceptable", "the API answers application/json only"),
    404: ("not_found", "no such resource"),
}


def api_exception_handler(exc, context):
    """Every error of the API as JSON {"code", "message"}; never an HTML page."""
    if isinstance(exc, ApiError):
        return Response(
            {"code": exc.code, "message": exc.message}, status=exc.status_code, headers=exc.headers
        )
    response = exception_handler(exc, context)
    if response is None:
        return None
    request = context.get("request")
    code, message = _DRF_CODES.get(response.status_code, (None, None))
    if code is None:
        code = getattr(exc, "default_code", "error")
        message = str(getattr(exc, "detail", exc))
    message = message.format(method=getattr(request, "method", "this method"))
    response.data = {"code": code, "message": message}
    return response


class ApiKeyMixin:
    def authenticate_key(self, request):
        key = request.headers.get("X-API-Key", "")
        if not key:
            raise ApiError(401, "missing_api_key", "send your API key in the X-API-Key header")
        api_key = api_key_authenticate(key=key)
        if api_key is None:
            raise ApiError(401, "invalid_api_key", "the API key is unknown or has been revoked")
        return api_key


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def parse_body(request) -> object:
    content_type = request.META.get("CONTENT_TYPE", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise ApiError(
            415,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        )
    limit = settings.EVENTS_MAX_BODY_BYTES
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    too_large = ApiError(
        413,
        "payload_too_large",
        f"the body is over {limit} bytes; send at most {MAX_BATCH} events per request",
    )
    if length > limit:
        raise too_large
    body = request._request.read(limit + 1)
    if len(body) > limit:
        raise too_large
    try:
        text = body.decode("utf-8")
        return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, "malformed_json", f"the body is not valid UTF-8 JSON: {exc}") from None


EVENT_EXAMPLE = {
    "event_type": "registration",
    "event_time": "2026-03-15T10:00:00Z",
    "brand_id": "your-brand-uuid",
    "player_external_ref": "player_001",
    "idempotency_key": "reg_player_001_20260315",
}


class EventsApi(ApiKeyMixin, APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="events_create",
        summary="Send one event or a batch of 1–100 events",
        request=OpenApiTypes.OBJECT,
        responses={
            201: OpenApiResponse(OpenApiTypes.OBJECT, description="single event accepted"),
            200: OpenApiResponse(
                OpenApiTypes.OBJECT, description="batch answered, or single duplicate"
            ),
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="invalid event or request"),
            401: OpenApiResponse(
                OpenApiTypes.OBJECT, description="missing, unknown or revoked key"
            ),
            413: OpenApiResponse(OpenApiTypes.OBJECT, description="body over 1 MiB"),
            415: OpenApiResponse(OpenApiTypes.OBJECT, description="not application/json"),
            429: OpenApiResponse(OpenApiTypes.OBJECT, description="rate limit; see Retry-After"),
        },
        examples=[
            OpenApiExample("Single event", value=EVENT_EXAMPLE, request_only=True),
            OpenApiExample("Batch", value={"events": [EVENT_EXAMPLE]}, request_only=True),
        ],
        parameters=[OpenApiParameter("X-API-Key", str, OpenApiParameter.HEADER, required=True)],
    )
    def post(self, request):
        api_key = self.authenticate_key(request)
        retry_after = rate_limit_hit(api_key=api_key)
        if retry_after is not None:
            raise ApiError(
                429,
                "rate_limited",
                f"too many requests for this API key; retry after {retry_after} s "
                "with the same idempotency keys",
                headers={"Retry-After": str(retry_after)},
            )
        body = parse_body(request)
        if not isinstance(body, dict):
            raise ApiError(
                400,
                "invalid_body",
                'the body must be a JSON object: one event, or {"events": [...]}',
            )
        if "events" in body:
            return self._batch(api_key, body)
        outcome = events_ingest(api_key=api_key, raw_events=[body])[0]
        code = {"accepted": status.HTTP_201_CREATED, "duplicate": status.HTTP_200_OK}.get(
            outcome.status, status.HTTP_400_BAD_REQUEST
        )
        return Response(outcome.as_dict(), status=code)

    def _batch(self, api_key, body):
        extra = sorted(set(body) - {"events"})
        if extra:
            raise ApiError(
                400,
                "invalid_batch",
                f'a batch body holds only "events"; unexpected: {", ".join(extra)}',
            )
        events = body["events"]
        if not isinstance(events, list):
            raise ApiError(
                400, "invalid_batch", '"events" must be a list of 1 to 100 event objects'
            )
        if not events:
            raise ApiError(400, "empty_batch", '"events" is empty; send 1 to 100 events')
        if len(events) > MAX_BATCH:
            raise ApiError(
                400,
                "batch_too_large",
                f'"events" holds {len(events)} events; send at most {MAX_BATCH} per request',
            )
        outcomes = events_ingest(api_key=api_key, raw_events=events)
        summary = {"total": len(outcomes), "accepted": 0, "duplicates": 0, "errors": 0}
        for outcome in outcomes:
            summary[
                {"accepted": "accepted", "duplicate": "duplicates"}.get(outcome.status, "errors")
            ] += 1
        return Response({"summary": summary, "results": [o.as_dict() for o in outcomes]})


class EventDetailApi(ApiKeyMixin, APIView):
    @extend_schema(
        operation_id="events_retrieve",
        summary="A stored event and what it did (attribution, ledger entries, warnings)",
        responses={200: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT},
        parameters=[OpenApiParameter("X-API-Key", str, OpenApiParameter.HEADER, required=True)],
    )
    def get(self, request, event_id):
        api_key = self.authenticate_key(request)
        try:
            event_uuid = uuid.UUID(str(event_id))
        except ValueError:
            event_uuid = None
        detail = event_uuid and selectors.event_detail(
            operator=api_key.operator, event_id=event_uuid
        )
        if not detail:
            raise ApiError(404, "not_found", "no event with this event_id for your operator")
        return Response(detail)


def api_not_found(request, *args, **kwargs):
    return error_response(404, "not_found", f"no API route {request.path}; see /api/docs/")
