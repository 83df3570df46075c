"""The S2S Event API (SPEC §3): POST /api/v1/events and GET /api/v1/events/{event_id}.

Views stay thin: authenticate the key, count it against the rate limit, parse the body,
call `events_ingest`, render. The serializers below only describe the API in the OpenAPI
schema (/api/schema/); validation is `events.validation`, which must see amounts as the
Decimal the JSON parser produced.
"""

import json
import uuid
import zlib
from decimal import Decimal

from django.conf import settings
from django.http import JsonResponse
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView, exception_handler

from . import selectors
from .models import EventType
from .ratelimit import rate_limit_hit
from .services import api_key_authenticate, events_ingest
from .validation import PLAYER_STATUSES, PRODUCTS, json_object

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
        """The request's active API key, counted against its rate limit; else 401 / 429."""
        key = request.headers.get("X-API-Key", "")
        if not key:
            raise ApiError(401, "missing_api_key", "send your API key in the X-API-Key header")
        api_key = api_key_authenticate(key=key)
        if api_key is None:
            raise ApiError(401, "invalid_api_key", "the API key is unknown or has been revoked")
        retry_after = rate_limit_hit(api_key=api_key)
        if retry_after is not None:
            raise ApiError(
                429,
                "rate_limited",
                f"too many requests for this API key; retry after {retry_after} s "
                "with the same idempotency keys",
                headers={"Retry-After": str(retry_after)},
            )
        return api_key


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _read(request, limit: int) -> bytes:
    """At most `limit` + 1 bytes of the body. A chunked body (Transfer-Encoding: chunked,
    no Content-Length: what Go's and Java's HTTP clients send for a streamed body) is read
    from the server's input, which ends it (`wsgi.input_terminated`, set by gunicorn);
    Django reads a request without Content-Length as empty."""
    meta = request.META
    if (
        not meta.get("CONTENT_LENGTH")
        and "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower()
        and meta.get("wsgi.input_terminated")
    ):
        return meta["wsgi.input"].read(limit + 1)
    return request._request.read(limit + 1)


def _decoded(body: bytes, encoding: str, limit: int, too_large: ApiError) -> bytes:
    """The body as sent, or gunzipped (`Content-Encoding: gzip`), at most `limit` bytes."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip"):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Content-Encoding {encoding[:40]!r} is not supported; send the body uncompressed "
            "or as gzip",
        )
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        inflated = inflater.decompress(body, limit + 1)
    except zlib.error:
        raise ApiError(
            400, "malformed_json", "the body is not valid gzip (Content-Encoding: gzip)"
        ) from None
    if len(inflated) > limit or inflater.unconsumed_tail:
        raise too_large
    if not inflater.eof:
        raise ApiError(400, "malformed_json", "the gzip body is truncated")
    return inflated


def parse_body(request) -> object:
    """The JSON body, with every number with a fraction as Decimal (never float)."""
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
        f"the body is over {limit} bytes; send at most {MAX_BATCH} events per request "
        "and keep metadata small",
    )
    if length > limit:
        raise too_large
    body = _read(request, limit)
    if len(body) > limit:
        raise too_large
    body = _decoded(body, request.META.get("HTTP_CONTENT_ENCODING", ""), limit, too_large)
    if not body.strip():
        raise ApiError(
            400, "malformed_json", 'the body is empty; send one event or {"events": [...]}'
        )
    try:
        # A byte order mark (what some .NET and PowerShell clients send) is not content.
        text = body.decode("utf-8-sig")
        return json.loads(
            text,
            parse_float=Decimal,
            parse_constant=_reject_constant,
            object_pairs_hook=json_object,
        )
    except RecursionError:
        raise ApiError(400, "malformed_json", "the body is nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, "malformed_json", f"the body is not valid UTF-8 JSON: {exc}") from None


# --- OpenAPI description (schema only; never used to validate) ---------------------------

_TYPES = ", ".join(EventType.values)


class EventSchema(serializers.Serializer):
    event_type = serializers.ChoiceField(choices=EventType.values)
    event_time = serializers.DateTimeField(
        help_text="ISO 8601 with a UTC offset (a naive time is an error); at most 5 minutes "
        "in the future."
    )
    brand_id = serializers.UUIDField(help_text="A brand of your operator.")
    player_external_ref = serializers.CharField(min_length=1, max_length=128)
    idempotency_key = serializers.CharField(
        min_length=1,
        max_length=255,
        help_text="Unique per operator, forever. Retry with the same key.",
    )
    metadata = serializers.DictField(
        required=False, help_text="Any JSON object, at most 4 KiB; stored with the event."
    )
    currency = serializers.CharField(
        required=False,
        min_length=3,
        max_length=3,
        help_text="Uppercase ISO 4217. Required for first_deposit, deposit, withdrawal, "
        "ngr_update, chargeback, bonus_granted; and for wagers that carry an amount.",
    )
    amount = serializers.DecimalField(
        required=False,
        max_digits=18,
        decimal_places=4,
        coerce_to_string=False,
        help_text="A JSON number or a decimal string, at most 4 decimal places. > 0 for "
        "first_deposit, deposit, withdrawal, chargeback, bonus_granted; any sign for "
        "ngr_update (the player's month-to-date NGR total); >= 0 for wagers.",
    )
    click_id = serializers.CharField(
        required=False, max_length=255, help_text="registration only: the tracking click_id."
    )
    promo_code = serializers.CharField(required=False, max_length=64, help_text="registration")
    country = serializers.CharField(
        required=False, min_length=2, max_length=2, help_text="registration: ISO 3166-1 alpha-2."
    )
    ip_address = serializers.IPAddressField(
        required=False, help_text="registration: stored only as an HMAC."
    )
    user_agent = serializers.CharField(required=False, max_length=1000, help_text="registration")
    deposit_idempotency_key = serializers.CharField(
        required=False, max_length=255, help_text="chargeback: the charged-back deposit's key."
    )
    product = serializers.ChoiceField(
        choices=PRODUCTS, required=False, help_text="wager_placed, wager_settled"
    )
    win_amount = serializers.DecimalField(
        required=False,
        max_digits=18,
        decimal_places=4,
        coerce_to_string=False,
        help_text="wager_settled",
    )
    status = serializers.ChoiceField(
        choices=PLAYER_STATUSES, required=False, help_text="player_status (required there)."
    )


class BatchSchema(serializers.Serializer):
    events = EventSchema(many=True, help_text=f"1 to {MAX_BATCH} events.")


class FieldErrorSchema(serializers.Serializer):
    field = serializers.CharField(allow_null=True)
    message = serializers.CharField()


class EventResultSchema(serializers.Serializer):
    event_id = serializers.UUIDField(allow_null=True, help_text="null when status is error.")
    idempotency_key = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=["accepted", "duplicate", "error"])
    payload_mismatch = serializers.BooleanField(
        required=False,
        help_text="duplicates only: true when the payload differs from the stored event.",
    )
    warnings = serializers.ListField(child=serializers.CharField(), required=False)
    errors = FieldErrorSchema(many=True, required=False)


class SummarySchema(serializers.Serializer):
    total = serializers.IntegerField()
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    errors = serializers.IntegerField()


class BatchResultSchema(serializers.Serializer):
    summary = SummarySchema()
    results = EventResultSchema(many=True, help_text="One per event, in input order.")


class ApiErrorSchema(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class EventDetailSchema(serializers.Serializer):
    event_id = serializers.UUIDField()
    idempotency_key = serializers.CharField()
    status = serializers.CharField()
    event_type = serializers.ChoiceField(choices=EventType.values)
    event_time = serializers.DateTimeField()
    received_at = serializers.DateTimeField()
    brand_id = serializers.UUIDField()
    player_external_ref = serializers.CharField()
    payload = serializers.DictField(help_text="The event as sent (the IP address as its HMAC).")
    warnings = serializers.ListField(child=serializers.CharField())
    ledger_entries = serializers.ListField(child=serializers.DictField())
    attribution = serializers.DictField(required=False, help_text="registrations only")


GUIDE_SINGLE = {
    "event_type": "registration",
    "event_time": "2026-03-15T10:00:00Z",
    "brand_id": "your-brand-uuid",
    "player_external_ref": "player_001",
    "idempotency_key": "reg_player_001_20260315",
}
GUIDE_BATCH = {
    "events": [
        {
            "event_type": "registration",
            "event_time": "2026-03-15T10:00:00Z",
            "brand_id": "your-brand-uuid",
            "player_external_ref": "player_001",
            "idempotency_key": "reg_player_001",
        },
        {
            "event_type": "first_deposit",
            "event_time": "2026-03-15T10:30:00Z",
            "brand_id": "your-brand-uuid",
            "player_external_ref": "player_001",
            "idempotency_key": "ftd_player_001",
            "currency": "EUR",
            "amount": 50.00,
        },
    ]
}
_EVENT_ID = "2b1d4c8e-3f5a-4b6c-9d7e-8f9a0b1c2d3e"
_ERROR_RESPONSES = {
    401: OpenApiResponse(ApiErrorSchema, description="missing, unknown or revoked API key"),
    429: OpenApiResponse(
        ApiErrorSchema, description="over the key's rate limit; wait Retry-After seconds"
    ),
    503: OpenApiResponse(
        ApiErrorSchema, description="database unavailable; retry with the same keys"
    ),
}


class EventsApi(ApiKeyMixin, APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="events_create",
        summary="Send one event or a batch of 1–100 events",
        description=(
            "A body with `events` is a batch; otherwise it is one event. Event types: "
            f"{_TYPES}. See docs/events.md (the Event Reference) for every field and rule."
        ),
        request=PolymorphicProxySerializer(
            component_name="EventOrBatch",
            serializers=[EventSchema, BatchSchema],
            resource_type_field_name=None,
        ),
        responses={
            201: OpenApiResponse(EventResultSchema, description="single event accepted"),
            200: OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="BatchResultOrDuplicate",
                    serializers=[BatchResultSchema, EventResultSchema],
                    resource_type_field_name=None,
                ),
                description="a batch (always 200), or a single event that is a duplicate",
            ),
            400: OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="InvalidEventOrRequest",
                    serializers=[EventResultSchema, ApiErrorSchema],
                    resource_type_field_name=None,
                ),
                description="a single invalid event (status error, with field errors), or a "
                "whole-request error: malformed JSON, not an object, empty or over 100 events",
            ),
            413: OpenApiResponse(ApiErrorSchema, description="body over 1 MiB"),
            415: OpenApiResponse(ApiErrorSchema, description="Content-Type not application/json"),
            **_ERROR_RESPONSES,
        },
        examples=[
            OpenApiExample("Single event", value=GUIDE_SINGLE, request_only=True),
            OpenApiExample("Batch", value=GUIDE_BATCH, request_only=True),
            OpenApiExample(
                "Registration with click_id",
                value={
                    **GUIDE_SINGLE,
                    "idempotency_key": "reg_player_001",
                    "click_id": "abc-123-def",
                    "country": "GB",
                },
                request_only=True,
            ),
            OpenApiExample(
                "NGR update",
                value={
                    "event_type": "ngr_update",
                    "event_time": "2026-03-15T23:59:00Z",
                    "brand_id": "your-brand-uuid",
                    "player_external_ref": "player_001",
                    "idempotency_key": "ngr_player_001_20260315",
                    "currency": "EUR",
                    "amount": 500.00,
                },
                request_only=True,
            ),
            OpenApiExample(
                "Accepted",
                value={
                    "event_id": _EVENT_ID,
                    "idempotency_key": "reg_player_001_20260315",
                    "status": "accepted",
                },
                response_only=True,
                status_codes=["201"],
            ),
            OpenApiExample(
                "Batch result",
                value={
                    "summary": {"total": 2, "accepted": 2, "duplicates": 0, "errors": 0},
                    "results": [
                        {
                            "event_id": _EVENT_ID,
                            "idempotency_key": "reg_player_001",
                            "status": "accepted",
                        },
                        {
                            "event_id": "5c6d7e8f-9a0b-4c1d-8e2f-3a4b5c6d7e8f",
                            "idempotency_key": "ftd_player_001",
                            "status": "accepted",
                        },
                    ],
                },
                response_only=True,
                status_codes=["200"],
            ),
            OpenApiExample(
                "Duplicate",
                value={
                    "event_id": _EVENT_ID,
                    "idempotency_key": "reg_player_001_20260315",
                    "status": "duplicate",
                    "payload_mismatch": False,
                },
                response_only=True,
                status_codes=["200"],
            ),
            OpenApiExample(
                "Invalid event",
                value={
                    "event_id": None,
                    "idempotency_key": "reg_player_001",
                    "status": "error",
                    "errors": [
                        {
                            "field": "clickid",
                            "message": "unknown field 'clickid'; did you mean 'click_id'?",
                        }
                    ],
                },
                response_only=True,
                status_codes=["400"],
            ),
        ],
    )
    def post(self, request):
        api_key = self.authenticate_key(request)
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
            # Quoted as JSON strings: a name may hold what UTF-8 cannot encode (\ud800).
            raise ApiError(
                400,
                "invalid_batch",
                f'a batch body holds only "events"; unexpected: '
                f"{', '.join(json.dumps(name) for name in extra)}",
            )
        if getattr(body, "repeated", ()):
            raise ApiError(
                400, "invalid_batch", 'a batch body holds "events" once; it was sent twice'
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
        responses={
            200: EventDetailSchema,
            404: OpenApiResponse(
                ApiErrorSchema, description="no such event for your operator (or a bad id)"
            ),
            **_ERROR_RESPONSES,
        },
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


def schema_paths_as_documented(result, generator, request, public):
    """drf-spectacular hook: the routes accept an optional trailing slash; the schema shows
    them as the integration guide writes them (`/api/v1/events`)."""
    result["paths"] = {
        (path.rstrip("/") or "/"): operations for path, operations in result["paths"].items()
    }
    return result


def api_not_found(request, *args, **kwargs):
    return error_response(404, "not_found", f"no API route {request.path}; see /api/docs/")
