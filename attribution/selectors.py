from events.models import Event, EventType


def attribution_for_event(*, event: Event) -> dict | None:
    """For the registration that registered its player: how the player was attributed."""
    if event.event_type != EventType.REGISTRATION:
        return None
    player = event.player
    if player.registration_event_id != event.id:
        return {"applied": False, "reason": "player already registered by another event"}
    return {
        "applied": True,
        "method": player.attribution_method,
        "affiliate_id": player.affiliate_id,
        "click_id": str(player.click_id) if player.click_id else None,
        "promo_code": player.promo_code.code if player.promo_code_id else None,
    }
