"""Writes of the tracking side: players, attribution, links, clicks."""

import uuid
from dataclasses import dataclass, field

from django.db.models import Q

from events.models import Event, EventType

from .models import AttributionMethod, Player


def players_get_or_create(
    *, keys: set[tuple[uuid.UUID, str]]
) -> dict[tuple[uuid.UUID, str], Player]:
    """The players named by (brand_id, external_ref), creating the unknown ones.

    Two queries at most in the steady state, three when some are new; the unique constraint
    on (brand, external_ref) settles concurrent creations."""

    def fetch():
        refs_by_brand: dict[uuid.UUID, list[str]] = {}
        for brand_id, ref in keys:
            refs_by_brand.setdefault(brand_id, []).append(ref)
        condition = Q()
        for brand_id, refs in refs_by_brand.items():
            condition |= Q(brand_id=brand_id, external_ref__in=refs)
        return {(p.brand_id, p.external_ref): p for p in Player.objects.filter(condition)}

    found = fetch()
    missing = sorted(keys - found.keys())
    if missing:
        Player.objects.bulk_create(
            [Player(brand_id=brand_id, external_ref=ref) for brand_id, ref in missing],
            ignore_conflicts=True,
        )
        found = fetch()
    return found


@dataclass(frozen=True)
class ApplyResult:
    warnings: dict[uuid.UUID, list[str]] = field(default_factory=dict)
    newly_registered: list[Player] = field(default_factory=list)


def events_apply(*, events: list[Event]) -> ApplyResult:
    """Apply newly stored events to their players, in event_time order: registrations
    register and attribute, player_status events change the status."""
    warnings: dict[uuid.UUID, list[str]] = {}
    newly_registered: list[Player] = []
    for event in events:
        player = event.player
        if event.event_type == EventType.REGISTRATION:
            updated = Player.objects.filter(pk=player.pk, registered_at__isnull=True).update(
                registered_at=event.event_time,
                registration_event_id=event.id,
                country=event.payload.get("country") or "",
                attribution_method=AttributionMethod.NONE,
                attributed_at=event.received_at,
            )
            if updated:
                player.registered_at = event.event_time
                player.registration_event_id = event.id
                player.attribution_method = AttributionMethod.NONE
                newly_registered.append(player)
            else:
                warnings.setdefault(event.id, []).append(
                    "player already registered; this registration changes nothing"
                )
        elif event.event_type == EventType.PLAYER_STATUS:
            status = event.payload["status"]
            Player.objects.filter(pk=player.pk).update(status=status)
            player.status = status
    return ApplyResult(warnings=warnings, newly_registered=newly_registered)
