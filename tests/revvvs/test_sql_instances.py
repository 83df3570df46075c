"""revvvs.sql.new and revvvs.sql.loaded: model instances as the constructor makes them, without
Model.__init__, and the constructor itself whenever a receiver listens to its signals."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db.models.signals import post_init

from attribution.models import Player
from events.models import Event
from revvvs import sql
from tests.factories import ApiKeyFactory, BrandFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 10, tzinfo=UTC)


def event_attrs(api_key, brand):
    return {
        "id": uuid.uuid4(),
        "operator_id": api_key.operator_id,
        "brand_id": brand.id,
        "api_key_id": api_key.pk,
        "event_type": "deposit",
        "event_time": NOW,
        "received_at": NOW,
        "idempotency_key": "k1",
        "payload": {"amount": "10.00"},
        "payload_hash": "h",
        "currency": "EUR",
        "amount": Decimal("10.00"),
    }


def field_values(obj):
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


def test_new_makes_the_instance_the_constructor_makes():
    api_key = ApiKeyFactory()
    brand = BrandFactory(operator=api_key.operator)
    attrs = event_attrs(api_key, brand)

    fast = sql.new(Event, attrs, related={"operator": api_key.operator, "api_key": api_key})
    slow = Event(**attrs)

    assert field_values(fast) == field_values(slow)
    assert fast.warnings == [] and fast.warnings is not slow.warnings  # a default of its own
    assert fast.player_id is None
    assert fast._state.adding and fast._state.db is None
    assert fast.operator is api_key.operator and fast.api_key is api_key  # no query: cached
    fast.player = Player.objects.create(brand=brand, external_ref="p1")
    fast.save()
    assert field_values(Event.objects.get(pk=fast.pk)) == field_values(fast)


def test_loaded_makes_the_instance_from_db_makes():
    player = Player.objects.create(brand=BrandFactory(), external_ref="p1")
    attnames = [f.attname for f in Player._meta.concrete_fields]
    row = [getattr(player, name) for name in attnames]

    fast = sql.loaded(Player, attnames, row)

    assert field_values(fast) == field_values(Player.from_db("default", attnames, row))
    assert not fast._state.adding and fast._state.db == "default"
    assert fast.brand == player.brand
    fast.country = "DE"
    fast.save(update_fields=["country"])
    assert Player.objects.get(pk=player.pk).country == "DE"


def test_with_a_receiver_the_constructor_runs():
    api_key = ApiKeyFactory()
    brand = BrandFactory(operator=api_key.operator)
    attnames = [f.attname for f in Player._meta.concrete_fields]
    row = [getattr(Player(brand=brand), name) for name in attnames]
    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance)

    post_init.connect(receiver, sender=Event)
    post_init.connect(receiver, sender=Player)
    try:
        event = sql.new(Event, event_attrs(api_key, brand), related={"api_key": api_key})
        player = sql.loaded(Player, attnames, row)
    finally:
        post_init.disconnect(receiver, sender=Event)
        post_init.disconnect(receiver, sender=Player)
    assert seen == [event, player]
    assert event.api_key is api_key
