"""The admin index: the month's figures, the attention counts and where their links lead."""

import re
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from attribution.models import AffiliateStatus
from commissions.models import LedgerKind
from events.models import Event
from tests.commissions.period_factories import affiliate_on_plan, entry
from tests.factories import (
    AffiliateFactory,
    BrandFactory,
    ManagerFactory,
    OperatorFactory,
    PlayerFactory,
    SuperuserFactory,
)

pytestmark = pytest.mark.django_db


def this_month():
    return timezone.now().date().replace(day=1)


def ftd_event(operator, brand, player, when, currency="EUR"):
    return Event.objects.create(
        operator=operator,
        brand=brand,
        player=player,
        event_type="first_deposit",
        event_time=when,
        received_at=when,
        idempotency_key=f"ftd-{uuid.uuid4()}",
        payload={},
        payload_hash="x",
        currency=currency,
        amount=Decimal("10"),
    )


def full_manager(operator):
    manager = ManagerFactory(operator=operator)
    manager.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label__in=["commissions", "attribution", "events", "revvvs"]
        )
    )
    return manager


def test_a_player_whose_first_deposit_was_last_month_is_no_ftd_of_this_month(client):
    operator = OperatorFactory()
    brand = BrandFactory(operator=operator)
    affiliate, _ = affiliate_on_plan(operator)
    start = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    player = PlayerFactory(
        brand=brand, affiliate=affiliate, registered_at=start - timedelta(days=5)
    )
    # The first deposit was last month; a second first_deposit event (a resend under a new
    # key, or a platform that tags a re-deposit as first) arrives dated this month. The
    # booking engine takes the earliest one as the FTD (commissions.services.booking).
    ftd_event(operator, brand, player, start - timedelta(days=3))
    ftd_event(operator, brand, player, start + timedelta(minutes=1))
    client.force_login(full_manager(operator))

    figures = client.get("/admin/").context["figures"]

    assert figures.ftds == 0


def test_commission_figures_are_not_shown_to_staff_without_commission_access(client):
    operator = OperatorFactory()
    affiliate, plan = affiliate_on_plan(operator)
    entry(affiliate, LedgerKind.CPA, "1234.56", plan=plan, period=this_month())
    AffiliateFactory(operator=operator, status=AffiliateStatus.PENDING)
    # A staff user of the operator who may only handle affiliate applications.
    clerk = ManagerFactory(operator=operator)
    clerk.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_affiliate", "change_affiliate"])
    )
    client.force_login(clerk)

    page = client.get("/admin/").content.decode()

    # Django's own index shows only the apps the user has permissions for; the operator's
    # money must not be shown to a login that may not open the ledger.
    assert "1,234.56" not in page and "1234.56" not in page


def test_each_currency_s_net_links_to_that_currency_s_entries(client):
    month = this_month()
    eur_op, usd_op = OperatorFactory(), OperatorFactory()
    eur_aff, eur_plan = affiliate_on_plan(eur_op)
    usd_aff, usd_plan = affiliate_on_plan(usd_op, currency="USD")
    usd_aff.payout_currency = "USD"
    usd_aff.save()
    entry(eur_aff, LedgerKind.CPA, "100", plan=eur_plan, period=month)
    entry(usd_aff, LedgerKind.CPA, "7", plan=usd_plan, period=month)
    client.force_login(SuperuserFactory())

    page = client.get("/admin/").content.decode()
    rows = re.findall(
        r'<tr class="month-net"><th scope="row"><a href="([^"]+)">Net commission</a></th>'
        r"<td>([^<]+)</td>",
        page,
    )
    assert len(rows) == 2, rows
    for href, shown in rows:
        amount, currency = shown.split()
        listed = client.get(href.replace("&amp;", "&"))
        assert listed.status_code == 200
        entries = list(listed.context["cl"].queryset)
        # The link next to "7.00 USD" lists the entries that make up 7.00 USD.
        assert {e.currency for e in entries} == {currency}, (shown, href)
        assert sum(e.amount for e in entries) == Decimal(amount.replace(",", ""))
