"""The admin index: the month's figures and what needs attention, scoped to the operator."""

import uuid
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from attribution.models import AffiliateStatus
from commissions.models import LedgerKind, PendingFx
from commissions.services.periods import period_close
from events.models import Event
from tests.commissions.period_factories import MARCH, affiliate_on_plan, entry
from tests.factories import (
    AffiliateFactory,
    BrandFactory,
    ManagerFactory,
    OperatorFactory,
    PlayerFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def populate(operator, *, scale: int):
    """`scale` of everything the index counts, for one operator."""
    this_month = timezone.now().date().replace(day=1)
    brand = BrandFactory(operator=operator)
    affiliate, plan = affiliate_on_plan(operator)
    for _ in range(scale):
        player = PlayerFactory(brand=brand, registered_at=timezone.now(), affiliate=affiliate)
        event = Event.objects.create(
            operator=operator,
            brand=brand,
            player=player,
            event_type="first_deposit",
            event_time=timezone.now(),
            received_at=timezone.now(),
            idempotency_key=f"ftd-{uuid.uuid4()}",
            payload={},
            payload_hash="x",
            currency="USD",
            amount=Decimal("10"),
        )
        entry(affiliate, LedgerKind.CPA, "50", plan=plan, period=this_month, player=player)
        PendingFx.objects.create(
            event=event,
            operator=operator,
            from_currency="USD",
            to_currency="EUR",
            rate_date=timezone.now().date(),
        )
        AffiliateFactory(operator=operator, status=AffiliateStatus.PENDING)
    entry(affiliate, LedgerKind.REVSHARE, "-7.5", plan=plan, period=this_month)
    entry(affiliate, LedgerKind.CPA, "999", plan=plan, period=MARCH)  # not this month
    for _ in range(scale):
        other, other_plan = affiliate_on_plan(operator)
        entry(other, LedgerKind.MANUAL_ADJUSTMENT, "1", plan=other_plan)
    period_close(operator=operator, month=MARCH)  # 1 + scale draft statements


def manager_of(operator):
    manager = ManagerFactory(operator=operator)
    manager.user_permissions.add(
        *Permission.objects.filter(content_type__app_label__in=["commissions", "attribution"])
    )
    return manager


def test_manager_sees_only_their_operators_figures(client):
    mine, theirs = OperatorFactory(), OperatorFactory()
    populate(mine, scale=2)
    populate(theirs, scale=5)
    client.force_login(manager_of(mine))

    response = client.get("/admin/")

    assert response.status_code == 200
    figures = response.context["figures"]
    assert (figures.registrations, figures.ftds, figures.cpa_count) == (2, 2, 2)
    assert figures.commission == {"EUR": {"cpa": Decimal("100"), "revshare": Decimal("-7.5")}}
    assert figures.net == {"EUR": Decimal("92.5")}
    assert (figures.pending_applications, figures.pending_fx, figures.statements_to_approve) == (
        2,
        2,
        3,
    )
    html = response.content.decode()
    assert '<td id="attention-statements">3</td>' in html
    assert '<td id="month-registrations">2</td>' in html
    assert "92.50 EUR" in html  # money shown to the cent
    assert "/admin/commissions/statement/?status__exact=draft" in html


def test_superuser_sees_every_operator(client):
    populate(OperatorFactory(), scale=2)
    populate(OperatorFactory(), scale=3)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    figures = client.get("/admin/").context["figures"]

    assert (figures.registrations, figures.ftds, figures.cpa_count) == (5, 5, 5)
    assert figures.net == {"EUR": Decimal("235")}
    assert figures.statements_to_approve == 3 + 4


def test_a_staff_user_without_operator_sees_nothing(client):
    populate(OperatorFactory(), scale=2)
    client.force_login(UserFactory(is_staff=True))

    figures = client.get("/admin/").context["figures"]

    assert (figures.registrations, figures.ftds, figures.cpa_count) == (0, 0, 0)
    assert figures.net == {} and figures.statements_to_approve == 0
