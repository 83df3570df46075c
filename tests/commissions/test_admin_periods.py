"""Admin of periods and statements: close page and action, statement actions, CSV, tenancy."""

import csv
import io
import uuid
import zipfile
from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from commissions.models import LedgerKind, Period, PeriodStatus, Statement, StatementStatus
from commissions.services.periods import period_close
from events.models import Event
from tests.commissions.period_factories import (
    APRIL,
    MARCH,
    affiliate_on_plan,
    entry,
    statement_of,
)
from tests.factories import (
    BrandFactory,
    ManagerFactory,
    OperatorFactory,
    PlayerFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

PERIODS = "/admin/commissions/period/"
STATEMENTS = "/admin/commissions/statement/"


def manager_of(operator):
    manager = ManagerFactory(operator=operator)
    manager.user_permissions.add(
        *Permission.objects.filter(content_type__app_label__in=["commissions", "attribution"])
    )
    return manager


@pytest.fixture
def setup():
    """Two operators, each with a closed March and one statement."""
    mine, theirs = OperatorFactory(name="Mine"), OperatorFactory(name="Theirs")
    result = {}
    for key, operator in (("mine", mine), ("theirs", theirs)):
        affiliate, plan = affiliate_on_plan(operator)
        entry(affiliate, LedgerKind.CPA, "100", plan=plan)
        period_close(operator=operator, month=MARCH)
        result[key] = statement_of(affiliate)
    return result


@pytest.fixture
def client_of(client):
    def login(user):
        client.force_login(user)
        return client

    return login


def test_manager_lists_only_their_periods_and_statements(setup, client_of):
    client = client_of(manager_of(setup["mine"].operator))

    periods = client.get(PERIODS)
    statements = client.get(STATEMENTS)

    assert periods.status_code == statements.status_code == 200
    assert list(periods.context["cl"].queryset) == [setup["mine"].period]
    assert list(statements.context["cl"].queryset) == [setup["mine"]]
    # The period filter offers only the manager's periods.
    assert f"?period={setup['mine'].period_id}" in statements.content.decode()
    assert f"?period={setup['theirs'].period_id}" not in statements.content.decode()


def test_manager_cannot_open_another_operators_objects(setup, client_of):
    client = client_of(manager_of(setup["mine"].operator))
    theirs = setup["theirs"]

    for url in (
        f"{PERIODS}{theirs.period_id}/change/",
        f"{STATEMENTS}{theirs.pk}/change/",
    ):
        response = client.get(url)
        assert response.status_code == 302  # the admin's "does not exist" redirect
        assert response.url == "/admin/"
    assert client.get(f"{STATEMENTS}{theirs.pk}/csv/").status_code == 404
    assert client.get(f"{STATEMENTS}{setup['mine'].pk}/change/").status_code == 200
    assert client.get(f"{PERIODS}{setup['mine'].period_id}/change/").status_code == 200


def test_statement_numbers_are_read_only(setup, client_of):
    client = client_of(manager_of(setup["mine"].operator))
    mine = setup["mine"]

    response = client.post(f"{STATEMENTS}{mine.pk}/change/", {"net_payable": "9999"})

    assert response.status_code == 403
    mine.refresh_from_db()
    assert mine.net_payable == Decimal("100")
    assert client.get(f"{STATEMENTS}add/").status_code == 403


def test_close_page_closes_the_managers_operator_month(client_of):
    mine, theirs = OperatorFactory(), OperatorFactory()
    for operator in (mine, theirs):
        affiliate, plan = affiliate_on_plan(operator)
        entry(affiliate, LedgerKind.CPA, "100", plan=plan)
    client = client_of(manager_of(mine))

    page = client.get(f"{PERIODS}close/")
    assert page.status_code == 200
    assert "operator" not in page.context["form"].fields
    # An operator field slipped into the post is ignored: the manager's own is closed.
    response = client.post(f"{PERIODS}close/", {"month": "2026-03", "operator": theirs.pk})

    period = Period.objects.get(operator=mine, month=MARCH)
    assert response.status_code == 302
    assert response.url == f"{STATEMENTS}?period={period.pk}"
    assert period.status == PeriodStatus.CLOSED
    assert not Period.objects.filter(operator=theirs).exists()
    assert Statement.objects.filter(operator=mine).count() == 1


@pytest.mark.parametrize(
    "month, message",
    [("2026/03", "YYYY-MM"), (f"{timezone.now():%Y-%m}", "has not ended yet")],
)
def test_close_page_shows_errors(client_of, month, message):
    operator = OperatorFactory()
    client = client_of(manager_of(operator))

    response = client.post(f"{PERIODS}close/", {"month": month})

    assert response.status_code == 200
    assert message in str(response.context["form"].errors)
    assert not Period.objects.filter(status=PeriodStatus.CLOSED).exists()


def test_superuser_closes_any_operator_month(client_of):
    operator = OperatorFactory()
    affiliate, plan = affiliate_on_plan(operator)
    entry(affiliate, LedgerKind.CPA, "100", plan=plan)
    client = client_of(UserFactory(is_staff=True, is_superuser=True))

    missing = client.post(f"{PERIODS}close/", {"month": "2026-03"})
    assert "operator" in missing.context["form"].errors
    client.post(f"{PERIODS}close/", {"month": "2026-03", "operator": operator.pk})

    assert Period.objects.get(operator=operator).status == PeriodStatus.CLOSED


def test_close_page_needs_the_permission(client_of):
    manager = ManagerFactory(operator=OperatorFactory())
    manager.user_permissions.add(Permission.objects.get(codename="view_period"))
    client = client_of(manager)

    assert client.get(f"{PERIODS}close/").status_code == 403
    assert client.post(f"{PERIODS}close/", {"month": "2026-03"}).status_code == 403
    assert not Period.objects.exists()


def test_close_action_ignores_another_operators_period(client_of):
    mine, theirs = OperatorFactory(), OperatorFactory()
    their_affiliate, their_plan = affiliate_on_plan(theirs)
    entry(their_affiliate, LedgerKind.CPA, "100", plan=their_plan)
    open_period = Period.objects.create(operator=theirs, month=MARCH)
    client = client_of(manager_of(mine))

    client.post(PERIODS, {"action": "close_selected", "_selected_action": [open_period.pk]})

    open_period.refresh_from_db()
    assert open_period.status == PeriodStatus.OPEN
    assert not Statement.objects.exists()


def test_close_action_closes_own_open_period(client_of):
    operator = OperatorFactory()
    affiliate, plan = affiliate_on_plan(operator)
    entry(affiliate, LedgerKind.CPA, "100", plan=plan)
    period = Period.objects.create(operator=operator, month=MARCH)
    client = client_of(manager_of(operator))

    client.post(PERIODS, {"action": "close_selected", "_selected_action": [period.pk]})

    period.refresh_from_db()
    assert period.status == PeriodStatus.CLOSED
    assert statement_of(affiliate).net_payable == Decimal("100")


def test_approve_and_mark_paid_actions(setup, client_of):
    client = client_of(manager_of(setup["mine"].operator))
    mine, theirs = setup["mine"], setup["theirs"]
    selected = [mine.pk, theirs.pk]

    client.post(STATEMENTS, {"action": "approve", "_selected_action": selected})
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.status == StatementStatus.APPROVED
    assert theirs.status == StatementStatus.DRAFT  # outside the manager's queryset

    form = client.post(STATEMENTS, {"action": "mark_paid", "_selected_action": [mine.pk]})
    assert form.status_code == 200
    assert "Mark statements paid" in form.content.decode()
    mine.refresh_from_db()
    assert mine.status == StatementStatus.APPROVED  # nothing paid before the form is sent

    today = timezone.now().date()
    client.post(
        STATEMENTS,
        {
            "action": "mark_paid",
            "_selected_action": selected,
            "apply": "1",
            "method": "bank transfer",
            "reference": "TX-42",
            "paid_on": today.isoformat(),
        },
    )
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.status, mine.payment_reference, mine.paid_on) == ("paid", "TX-42", today)
    assert theirs.status == StatementStatus.DRAFT


def test_wrong_transition_in_the_admin_is_a_message(setup, client_of):
    client = client_of(manager_of(setup["mine"].operator))
    mine = setup["mine"]

    response = client.post(
        STATEMENTS,
        {
            "action": "mark_paid",
            "_selected_action": [mine.pk],
            "apply": "1",
            "method": "bank transfer",
            "paid_on": timezone.now().date().isoformat(),
        },
        follow=True,
    )

    assert "only an approved statement can be marked paid" in response.content.decode()
    mine.refresh_from_db()
    assert mine.status == StatementStatus.DRAFT


def _event(brand, player):
    return Event.objects.create(
        operator=brand.operator,
        brand=brand,
        player=player,
        event_type="first_deposit",
        event_time=timezone.now(),
        received_at=timezone.now(),
        idempotency_key=f"ftd-{uuid.uuid4()}",
        payload={},
        payload_hash="x",
        currency="EUR",
        amount=Decimal("50"),
    )


def test_statement_csv_lists_lines_and_totals(client_of):
    operator = OperatorFactory()
    brand = BrandFactory(operator=operator, name="Lucky")
    player = PlayerFactory(brand=brand, external_ref="=cmd|evil")
    affiliate, plan = affiliate_on_plan(operator)
    ftd = _event(brand, player)
    entry(
        affiliate,
        LedgerKind.CPA,
        "100",
        plan=plan,
        player=player,
        brand=brand,
        source_event=ftd,
        activity_date=date(2026, 3, 5),
        memo="first deposit",
    )
    entry(affiliate, LedgerKind.MANUAL_ADJUSTMENT, "-10.5", plan=plan, memo="bonus abuse")
    period_close(operator=operator, month=MARCH)
    statement = statement_of(affiliate)
    client = client_of(manager_of(operator))

    response = client.get(f"{STATEMENTS}{statement.pk}/csv/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert f"statement-2026-03-affiliate-{affiliate.pk}.csv" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == [
        "date",
        "kind",
        "player_ref",
        "brand",
        "amount",
        "currency",
        "memo",
        "event_id",
    ]
    assert rows[1] == [
        "2026-03-05",
        "cpa",
        "'=cmd|evil",
        "Lucky",
        "100.0000",
        "EUR",
        "first deposit",
        str(ftd.id),
    ]
    assert rows[2] == [
        "2026-03-15",
        "manual_adjustment",
        "",
        "",
        "-10.5000",
        "EUR",
        "bonus abuse",
        "",
    ]
    assert rows[3] == []
    totals = {row[1]: row[4] for row in rows[4:]}
    assert totals["cpa"] == "100.0000"
    assert totals["manual_adjustment"] == "-10.5000"
    assert totals["net_payable"] == "89.5000"
    assert all(row[0] == "total" for row in rows[4:])


def test_csv_action_zips_several_statements_of_own_operator_only(setup, client_of):
    mine = setup["mine"]
    affiliate, plan = affiliate_on_plan(mine.operator)
    # a second statement of the same operator, in April
    entry(affiliate, LedgerKind.CPA, "5", plan=plan, period=date(2026, 4, 1))
    period_close(operator=mine.operator, month=date(2026, 4, 1))
    second = statement_of(affiliate, date(2026, 4, 1))
    client = client_of(manager_of(mine.operator))

    response = client.post(
        STATEMENTS,
        {"action": "download_csv", "_selected_action": [mine.pk, second.pk, setup["theirs"].pk]},
    )

    assert response["Content-Type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    assert sorted(names) == sorted(
        [
            f"statement-2026-03-affiliate-{mine.affiliate_id}.csv",
            f"statement-2026-04-affiliate-{affiliate.pk}.csv",
        ]
    )


def test_the_periods_page_lists_the_ended_months_to_close_and_its_action_closes_them(
    client_of,
):
    """Without a row made by hand: the ended months with entries are listed, open, and the
    action closes the one selected, in order; the other operator's months are not listed."""
    mine, theirs = OperatorFactory(), OperatorFactory()
    affiliate, plan = affiliate_on_plan(mine)
    entry(affiliate, LedgerKind.CPA, "100", plan=plan)
    their_affiliate, their_plan = affiliate_on_plan(theirs)
    entry(their_affiliate, LedgerKind.CPA, "100", plan=their_plan)
    client = client_of(manager_of(mine))

    page = client.get(PERIODS)
    listed = list(page.context["cl"].result_list)
    assert [(p.operator, p.month, p.status) for p in listed] == [(mine, MARCH, PeriodStatus.OPEN)]
    assert not Period.objects.filter(operator=theirs).exists()
    client.get(PERIODS)  # listing again adds nothing
    assert Period.objects.filter(operator=mine).count() == 1

    client.post(PERIODS, {"action": "close_selected", "_selected_action": [listed[0].pk]})

    assert Period.objects.get(operator=mine).status == PeriodStatus.CLOSED
    assert statement_of(affiliate).net_payable == Decimal("100")


def test_after_a_close_the_periods_page_lists_the_next_ended_month(client_of):
    operator = OperatorFactory()
    affiliate, plan = affiliate_on_plan(operator)
    entry(affiliate, LedgerKind.CPA, "100", plan=plan)
    client = client_of(manager_of(operator))
    (march,) = client.get(PERIODS).context["cl"].result_list
    client.post(PERIODS, {"action": "close_selected", "_selected_action": [march.pk]})
    entry(affiliate, LedgerKind.CPA, "50", plan=plan, period=APRIL)  # e.g. a late event

    listed = client.get(PERIODS).context["cl"].result_list
    assert sorted((p.month, p.status) for p in listed) == [
        (MARCH, PeriodStatus.CLOSED),
        (APRIL, PeriodStatus.OPEN),
    ]
