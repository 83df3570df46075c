import uuid

from django.conf import settings
from django.db import models

from revvvs.money import MoneyField


class ApiKey(models.Model):
    """An operator's Event API key. Only a SHA-256 hash and a short visible prefix are kept;
    the key itself is shown once, when it is created."""

    operator = models.ForeignKey(
        "revvvs.Operator", on_delete=models.PROTECT, related_name="api_keys"
    )
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, help_text="The first characters, to recognise a key.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, editable=False
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Requests per minute; empty uses the server default."
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self):
        return f"{self.prefix}… ({self.operator})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class EventType(models.TextChoices):
    REGISTRATION = "registration"
    FIRST_DEPOSIT = "first_deposit"
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    NGR_UPDATE = "ngr_update"
    CHARGEBACK = "chargeback"
    WAGER_PLACED = "wager_placed"
    WAGER_SETTLED = "wager_settled"
    BONUS_GRANTED = "bonus_granted"
    PLAYER_STATUS = "player_status"


class Event(models.Model):
    """An accepted player event, stored with its payload, times and outcome.

    Invalid events are answered and never stored. `(operator, idempotency_key)` is unique
    forever: the database, not the application, decides which of two concurrent retries
    is the event."""

    id = models.UUIDField(
        primary_key=True, default=uuid.uuid4, editable=False, verbose_name="event_id"
    )
    # No single-column indexes on operator, brand and player: the unique key and the
    # composite indexes below lead with them, and every index is paid on each insert.
    operator = models.ForeignKey(
        "revvvs.Operator", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    brand = models.ForeignKey(
        "revvvs.Brand", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    player = models.ForeignKey(
        "attribution.Player", on_delete=models.PROTECT, related_name="events", db_index=False
    )
    api_key = models.ForeignKey(
        ApiKey, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    event_type = models.CharField(max_length=20, choices=EventType.choices)
    event_time = models.DateTimeField()
    received_at = models.DateTimeField()
    idempotency_key = models.CharField(max_length=255)
    payload = models.JSONField(help_text="The event exactly as the operator sent it.")
    payload_hash = models.CharField(max_length=64, help_text="SHA-256 of the canonical payload.")
    currency = models.CharField(max_length=3, blank=True)
    amount = MoneyField(null=True, blank=True)
    warnings = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["operator", "idempotency_key"], name="event_idempotency_key_per_operator"
            )
        ]
        indexes = [
            models.Index(fields=["operator", "-received_at"], name="event_operator_received"),
            models.Index(fields=["player", "event_time"], name="event_player_time"),
            models.Index(
                fields=["brand", "event_type", "event_time"], name="event_brand_type_time"
            ),
        ]

    def __str__(self):
        return f"{self.event_type} {self.idempotency_key}"
