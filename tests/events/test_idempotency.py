"""Idempotency (SPEC §3): `(operator, idempotency_key)` is unique forever; a duplicate
answers the original event_id, and says whether its payload differs."""

from attribution.models import Player
from events.models import Event
from tests.conftest import event


def deposit(brand, **fields):
    body = event(brand, event_type="deposit", idempotency_key="dep_1")
    body.update(currency="EUR", amount="25.00")
    body.update(fields)
    return body


def test_same_payload_again_is_a_duplicate_without_mismatch(tenant):
    first = tenant.post(deposit(tenant.brand)).json()

    again = tenant.post(deposit(tenant.brand))

    assert again.status_code == 200
    assert again.json() == {
        "event_id": first["event_id"],
        "idempotency_key": "dep_1",
        "status": "duplicate",
        "payload_mismatch": False,
    }


def test_same_key_with_a_different_payload_is_a_duplicate_with_mismatch(tenant):
    first = tenant.post(deposit(tenant.brand)).json()

    again = tenant.post(deposit(tenant.brand, amount="99.00"))

    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert again.json()["event_id"] == first["event_id"]
    assert again.json()["payload_mismatch"] is True
    # The stored event is the first one; the second payload changed nothing.
    stored = Event.objects.get()
    assert str(stored.amount) == "25.0000"


def test_same_amount_written_differently_is_not_a_mismatch(tenant):
    """50, 50.0 and "50.00" are the same money: the payload is compared by value."""
    first = tenant.post(deposit(tenant.brand, amount="50.00")).json()
    body = deposit(tenant.brand)
    body["amount"] = 50
    again = tenant.post(body).json()
    assert again["event_id"] == first["event_id"]
    assert again["payload_mismatch"] is False


def test_duplicate_detection_does_not_depend_on_event_type(tenant):
    tenant.post(deposit(tenant.brand))
    other = event(tenant.brand, idempotency_key="dep_1")  # a registration, same key
    again = tenant.post(other)
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert again.json()["payload_mismatch"] is True
    assert Event.objects.count() == 1


def test_a_key_repeated_in_one_batch_is_a_duplicate_of_its_first_use(tenant):
    events = [
        deposit(tenant.brand),
        event(tenant.brand, idempotency_key="reg_1"),
        deposit(tenant.brand),
        deposit(tenant.brand, amount="1.00"),
    ]
    body = tenant.post({"events": events}).json()

    assert body["summary"] == {"total": 4, "accepted": 2, "duplicates": 2, "errors": 0}
    first, reg, same, changed = body["results"]
    assert (first["status"], reg["status"]) == ("accepted", "accepted")
    assert same == {
        "event_id": first["event_id"],
        "idempotency_key": "dep_1",
        "status": "duplicate",
        "payload_mismatch": False,
    }
    assert changed["event_id"] == first["event_id"]
    assert changed["payload_mismatch"] is True
    assert Event.objects.filter(idempotency_key="dep_1").count() == 1


def test_a_repeat_in_a_batch_is_compared_with_the_stored_event(tenant):
    """When a key's first use in a batch is itself a duplicate of a stored event, a repeat is
    a mismatch exactly when it differs from what is stored, not from the first use."""
    stored = tenant.post(deposit(tenant.brand, amount="25.00")).json()
    events = [deposit(tenant.brand, amount="1.00"), deposit(tenant.brand, amount="25.00")]
    body = tenant.post({"events": events}).json()

    assert [r["status"] for r in body["results"]] == ["duplicate", "duplicate"]
    assert {r["event_id"] for r in body["results"]} == {stored["event_id"]}
    assert [r["payload_mismatch"] for r in body["results"]] == [True, False]


def test_a_repeat_of_an_invalid_first_use_is_judged_on_its_own(tenant):
    events = [deposit(tenant.brand, currency="eur"), deposit(tenant.brand)]
    body = tenant.post({"events": events}).json()
    assert [r["status"] for r in body["results"]] == ["error", "accepted"]
    assert Event.objects.filter(idempotency_key="dep_1").count() == 1


def test_a_batch_resent_after_a_partial_failure_stores_only_the_fixed_event(tenant):
    """The retry guidance: resend the same batch with the same keys after fixing the errors."""
    good = event(tenant.brand, idempotency_key="reg_1")
    bad = deposit(tenant.brand, currency="eur")
    first = tenant.post({"events": [good, bad]}).json()
    assert first["summary"]["errors"] == 1

    bad["currency"] = "EUR"
    second = tenant.post({"events": [good, bad]}).json()

    assert [r["status"] for r in second["results"]] == ["duplicate", "accepted"]
    assert second["results"][0]["event_id"] == first["results"][0]["event_id"]
    assert Event.objects.count() == 2


def test_same_key_at_two_operators_is_two_events(tenant, other_tenant):
    mine = tenant.post(deposit(tenant.brand))
    theirs = other_tenant.post(deposit(other_tenant.brand))

    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["event_id"] != theirs.json()["event_id"]
    operators = set(Event.objects.values_list("operator_id", flat=True))
    assert operators == {tenant.operator.pk, other_tenant.operator.pk}


def test_same_player_ref_at_two_brands_is_two_players(tenant):
    from tests.factories import BrandFactory

    second_brand = BrandFactory(operator=tenant.operator)
    tenant.post(event(tenant.brand, idempotency_key="a"))
    tenant.post(event(second_brand, idempotency_key="b"))
    assert Player.objects.filter(external_ref="player_001").count() == 2
