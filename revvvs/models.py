import uuid

from django.contrib.auth.models import AbstractUser
from django.core.validators import URLValidator
from django.db import models


class Operator(models.Model):
    """A gaming company running an affiliate programme: the tenant."""

    name = models.CharField(max_length=200, unique=True)
    mask_player_refs = models.BooleanField(
        default=False, help_text="Mask player refs in the affiliate portal."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Brand(models.Model):
    """One casino or sportsbook site of an operator; its UUID is the API's brand_id."""

    id = models.UUIDField(
        primary_key=True, default=uuid.uuid4, editable=False, verbose_name="brand_id"
    )
    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="brands")
    name = models.CharField(max_length=200)
    default_landing_url = models.URLField(
        max_length=2000,
        default="https://example.com/",
        # Only the schemes a redirect can answer (Django's URLField takes ftp too).
        validators=[URLValidator(schemes=["http", "https"])],
    )
    allowed_domains = models.TextField(
        blank=True,
        help_text="Hosts deep links may point to, one per line (the default landing URL's host "
        "is always allowed).",
    )
    attribution_window_days = models.PositiveSmallIntegerField(default=30)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["operator__name", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["operator", "name"], name="brand_unique_name_per_operator"
            )
        ]

    def __str__(self):
        return self.name

    @property
    def brand_id(self):
        return self.id

    def allowed_domain_list(self) -> list[str]:
        from urllib.parse import urlsplit

        hosts = {h.strip().lower() for h in self.allowed_domains.replace(",", "\n").splitlines()}
        default_host = (urlsplit(self.default_landing_url).hostname or "").lower()
        hosts.add(default_host)
        return sorted(h for h in hosts if h)


class User(AbstractUser):
    """A login. Staff users with an operator are that operator's affiliate managers;
    affiliates log in to the portal with their email (see attribution.Affiliate)."""

    operator = models.ForeignKey(
        Operator,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="users",
        help_text="Affiliate managers see and change only this operator's data.",
    )
