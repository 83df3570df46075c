"""Idempotent demo data: one operator, two brands, a known API key and logins.

The apps add their own demo data through `attribution.demo` and `commissions.demo`: each may
define `seed_demo(*, operator, brands, result) -> dict` (entities) and
`seed_events(*, operator, brands, result) -> dict` (events sent through the real pipeline),
given the result so far and returning the keys it adds to `seed_demo --json`. Everything
uses fixed identities (idempotency keys, uuid5 ids), so running it again changes nothing."""

import uuid

from django.db import transaction

from events.models import ApiKey
from events.services import api_key_hash

from .models import Brand, Operator, User

DEMO_OPERATOR = "Demo Gaming Group"
# Fixed identities, so that the README, the CI smoke and a returning developer can rely on them.
DEMO_API_KEY = "rv_demo_key_0123456789abcdefghijklmnopqrstuv"
DEMO_BRANDS = [
    (
        uuid.UUID("6f1d1a5e-0c5b-4d7e-9a53-6a1c2b3d4e01"),
        "Lucky Star Casino",
        "https://luckystar.example.com/welcome",
        "luckystar.example.com\npromo.luckystar.example.com",
    ),
    (
        uuid.UUID("6f1d1a5e-0c5b-4d7e-9a53-6a1c2b3d4e02"),
        "Goal Rush Sportsbook",
        "https://goalrush.example.com/",
        "goalrush.example.com",
    ),
]
DEMO_MANAGER = ("manager", "manager-demo-2026")
DEMO_ADMIN = ("admin", "admin-demo-2026")


@transaction.atomic
def seed_demo() -> dict:
    operator, _ = Operator.objects.get_or_create(name=DEMO_OPERATOR)
    brands = []
    for brand_id, name, landing, domains in DEMO_BRANDS:
        brand, _ = Brand.objects.update_or_create(
            id=brand_id,
            defaults={
                "operator": operator,
                "name": name,
                "default_landing_url": landing,
                "allowed_domains": domains,
            },
        )
        brands.append(brand)
    ApiKey.objects.get_or_create(
        key_hash=api_key_hash(DEMO_API_KEY),
        defaults={"operator": operator, "name": "demo", "prefix": DEMO_API_KEY[:10]},
    )
    ApiKey.objects.filter(key_hash=api_key_hash(DEMO_API_KEY)).update(revoked_at=None)
    manager = _user(DEMO_MANAGER, operator=operator, is_staff=True, is_superuser=False)
    _user(DEMO_ADMIN, operator=None, is_staff=True, is_superuser=True)

    result = {
        "operator_id": operator.pk,
        "api_key": DEMO_API_KEY,
        "brands": [{"brand_id": str(b.id), "name": b.name} for b in brands],
        "manager": {"username": manager.username, "password": DEMO_MANAGER[1]},
        "admin": {"username": DEMO_ADMIN[0], "password": DEMO_ADMIN[1]},
    }
    # Entities first (affiliates, links, plans), then events through the real pipeline, so
    # that the events find the plans they book against.
    for phase in ("seed_demo", "seed_events"):
        for module_name in ("attribution.demo", "commissions.demo"):
            try:
                module = __import__(module_name, fromlist=[phase])
            except ModuleNotFoundError:
                continue
            if hasattr(module, phase):
                seed = getattr(module, phase)
                result.update(seed(operator=operator, brands=brands, result=result))
    return result


class DemoConflict(Exception):
    """The database holds a login with a demo username that is not the demo's."""


def _user(credentials, *, operator, is_staff, is_superuser) -> User:
    """The demo login, created when missing. An existing login of that name is used only if
    it is the demo's (same operator and kind, the published password): seed_demo never
    changes a password or the rights of a login it finds, which may be a real one."""
    username, password = credentials
    user, created = User.objects.get_or_create(
        username=username,
        defaults={"operator": operator, "is_staff": is_staff, "is_superuser": is_superuser},
    )
    if created:
        user.set_password(password)
        user.save()
    elif (
        user.operator_id != (operator.pk if operator else None)
        or user.is_superuser != is_superuser
        or not user.check_password(password)
    ):
        raise DemoConflict(
            f"a login named {username!r} exists already and is not the demo's (another "
            "operator, other rights or another password); seed_demo leaves it alone. Load "
            "the demo into a database of its own, or rename that login."
        )
    if is_staff and not is_superuser:
        _grant_manager_permissions(user)
    return user


def _grant_manager_permissions(user: User) -> None:
    """Managers get the model permissions of the programme's apps; their rows are scoped
    to their operator by the admin itself (revvvs.tenancy)."""
    from django.contrib.auth.models import Permission

    perms = Permission.objects.filter(
        content_type__app_label__in=["revvvs", "events", "attribution", "commissions"]
    ).exclude(content_type__model__in=["operator", "user"])
    user.user_permissions.add(*perms)
