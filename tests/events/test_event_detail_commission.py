"""GET /api/v1/events/{id} says when an event's commission waits for an FX rate."""

from datetime import date

from commissions.models import PendingFx
from tests.conftest import event


def test_event_detail_shows_pending_fx_status(tenant):
    response = tenant.post(
        event(
            tenant.brand,
            event_type="deposit",
            idempotency_key="dep_1",
            currency="NOK",
            amount="10.00",
        )
    )
    assert response.status_code == 201, response.content
    event_id = response.json()["event_id"]
    assert "commission" not in tenant.get_event(event_id).json()

    PendingFx.objects.create(
        event_id=event_id,
        operator=tenant.operator,
        from_currency="NOK",
        to_currency="EUR",
        rate_date=date(2026, 3, 15),
    )
    commission = tenant.get_event(event_id).json()["commission"]
    assert commission["status"] == "pending_fx"
    assert (commission["from_currency"], commission["to_currency"]) == ("NOK", "EUR")
    assert commission["rate_date"] == "2026-03-15"
    assert commission["resolved_at"] is None
