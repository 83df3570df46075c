"""The booking admin: plans, assignments, the read-only ledger and its adjustment form,
pending FX, FX rates; a manager of operator A sees and changes nothing of operator B."""

from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile

from commissions.models import (
    CommissionPlan,
    FxRate,
    LedgerEntry,
    LedgerKind,
    PendingFx,
    PlanAssignment,
)
from revvvs.models import User
from tests.commissions.admin_helpers import affiliate_page_data, plan_form
from tests.commissions.factories import (
    CommissionPlanFactory,
    attributed_player,
    deal,
    money,
    send,
)
from tests.factories import AffiliateFactory, ManagerFactory, UserFactory


def manager_of(operator):
    user = ManagerFactory(operator=operator)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label__in=["attribution", "revvvs", "events", "commissions"]
        )
    )
    return User.objects.get(pk=user.pk)


class Programme:
    """One operator's booking data; every name carries `tag`."""

    def __init__(self, tenant, tag):
        self.affiliate, self.plan = deal(
            tenant,
            name=f"{tag}-plan",
            cpa_amount=Decimal("10"),
            revshare_rate=Decimal("0.5"),
            affiliate=AffiliateFactory(
                operator=tenant.operator,
                company=f"{tag}-co",
                user=UserFactory(username=f"{tag}-aff"),
            ),
        )
        attributed_player(tenant, self.affiliate, ref=f"{tag}-player")
        send(
            tenant,
            money(tenant, "first_deposit", f"{tag}-ftd", "20", ref=f"{tag}-player"),
            money(tenant, "ngr_update", f"{tag}-ngr", "30", ref=f"{tag}-player", currency="SEK"),
        )
        self.entry = LedgerEntry.objects.get(kind=LedgerKind.CPA, affiliate=self.affiliate)
        self.pending = PendingFx.objects.get(event__idempotency_key=f"{tag}-ngr")
        self.assignment = PlanAssignment.objects.get(affiliate=self.affiliate)


@pytest.fixture
def a(tenant):
    return Programme(tenant, "alpha")


@pytest.fixture
def b(other_tenant):
    return Programme(other_tenant, "bravo")


@pytest.fixture
def client_a(client, tenant, a, b):
    client.force_login(manager_of(tenant.operator))
    return client


@pytest.mark.parametrize(
    "url",
    [
        "/admin/commissions/commissionplan/",
        "/admin/commissions/planassignment/",
        "/admin/commissions/ledgerentry/",
        "/admin/commissions/pendingfx/",
        "/admin/commissions/ledgerentry/adjust/",
        "/admin/commissions/planassignment/add/",
        "/admin/commissions/commissionplan/add/",
    ],
)
def test_manager_pages_show_only_their_operator(client_a, url):
    response = client_a.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    assert "bravo" not in page
    if not url.endswith("add/") and "adjust" not in url:
        assert "alpha" in page


def test_ledger_filters_offer_only_the_operators_choices(client_a, a):
    page = client_a.get("/admin/commissions/ledgerentry/").content.decode()
    assert "alpha-co" in page and "bravo-co" not in page
    assert "kind__exact=cpa" in page
    assert "2026-03" in page  # the period filter
    filtered = client_a.get("/admin/commissions/ledgerentry/", {"kind": "revshare"})
    assert filtered.status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "/admin/commissions/commissionplan/{b.plan.pk}/change/",
        "/admin/commissions/planassignment/{b.assignment.pk}/change/",
        "/admin/commissions/ledgerentry/{b.entry.pk}/change/",
        "/admin/commissions/pendingfx/{b.pending.pk}/change/",
    ],
)
def test_another_operators_objects_are_not_found(client_a, b, url):
    response = client_a.get(url.format(b=b))
    assert response.status_code == 302  # the admin's "doesn't exist" redirect
    assert "bravo" not in client_a.get(response.url).content.decode()


def test_the_ledger_is_read_only(client_a, a):
    url = f"/admin/commissions/ledgerentry/{a.entry.pk}/change/"
    page = client_a.get(url)
    assert page.status_code == 200
    assert b'name="amount"' not in page.content
    client_a.post(url, {"amount": "999", "kind": "cpa"})
    assert client_a.post(f"/admin/commissions/ledgerentry/{a.entry.pk}/delete/").status_code == 403
    response = client_a.post(
        "/admin/commissions/ledgerentry/",
        {"action": "delete_selected", "_selected_action": [a.entry.pk], "post": "yes"},
    )
    assert response.status_code in (200, 302)
    a.entry.refresh_from_db()
    assert a.entry.amount == Decimal("10")
    assert LedgerEntry.objects.filter(pk=a.entry.pk).exists()
    assert client_a.get("/admin/commissions/ledgerentry/add/").status_code == 403


def test_manual_adjustment_form(client_a, a, b):
    form = client_a.get("/admin/commissions/ledgerentry/adjust/").content.decode()
    assert "alpha-co" in form and "bravo-co" not in form
    foreign = client_a.post(
        "/admin/commissions/ledgerentry/adjust/",
        {"affiliate": b.affiliate.pk, "amount": "5", "memo": "x"},
    )
    assert foreign.status_code == 200
    assert "Select a valid choice" in foreign.content.decode()
    no_memo = client_a.post(
        "/admin/commissions/ledgerentry/adjust/", {"affiliate": a.affiliate.pk, "amount": "5"}
    )
    assert "This field is required" in no_memo.content.decode()
    ok = client_a.post(
        "/admin/commissions/ledgerentry/adjust/",
        {
            "affiliate": a.affiliate.pk,
            "amount": "-7.25",
            "memo": "goodwill correction",
            "player_external_ref": "alpha-player",
        },
    )
    assert ok.status_code == 302
    entry = LedgerEntry.objects.get(kind=LedgerKind.MANUAL_ADJUSTMENT)
    assert (entry.affiliate, entry.amount, entry.currency) == (
        a.affiliate,
        Decimal("-7.25"),
        "EUR",
    )
    assert entry.author.operator == a.affiliate.operator
    assert entry.player.external_ref == "alpha-player"
    assert LedgerEntry.objects.filter(affiliate=b.affiliate).count() == 1


def test_pending_fx_reprocess_action_touches_only_the_managers_rows(client_a, a, b):
    FxRate.objects.create(currency="SEK", date=date(2026, 3, 13), rate=Decimal("10"))
    response = client_a.post(
        "/admin/commissions/pendingfx/",
        {"action": "reprocess", "_selected_action": [a.pending.pk, b.pending.pk]},
        follow=True,
    )
    assert "1 event(s) applied" in response.content.decode()
    a.pending.refresh_from_db()
    b.pending.refresh_from_db()
    assert a.pending.resolved_at is not None
    assert b.pending.resolved_at is None
    assert LedgerEntry.objects.filter(affiliate=a.affiliate, kind="revshare").exists()
    assert not LedgerEntry.objects.filter(affiliate=b.affiliate, kind="revshare").exists()


def test_plan_assignment_choices_and_overlap_errors(client_a, tenant, a, b):
    page = client_a.get("/admin/commissions/planassignment/add/").content.decode()
    assert "alpha-plan" in page and "bravo-plan" not in page
    foreign = client_a.post(
        "/admin/commissions/planassignment/add/",
        {"affiliate": a.affiliate.pk, "plan": b.plan.pk, "valid_from": "2027-01-01"},
    )
    assert "Select a valid choice" in foreign.content.decode()
    overlap = client_a.post(
        "/admin/commissions/planassignment/add/",
        {"affiliate": a.affiliate.pk, "plan": a.plan.pk, "valid_from": "2026-06-01"},
    )
    assert overlap.status_code == 200
    assert "overlaps the assignment of" in overlap.content.decode()
    ended = client_a.post(
        f"/admin/commissions/planassignment/{a.assignment.pk}/change/",
        {
            "affiliate": a.affiliate.pk,
            "plan": a.plan.pk,
            "valid_from": "2020-01-01",
            "valid_to": "2026-05-31",
        },
    )
    assert ended.status_code == 302
    added = client_a.post(
        "/admin/commissions/planassignment/add/",
        {"affiliate": a.affiliate.pk, "plan": a.plan.pk, "valid_from": "2026-06-01"},
    )
    assert added.status_code == 302
    assert PlanAssignment.objects.filter(affiliate=a.affiliate).count() == 2


def test_assignments_inline_on_the_affiliate_page(client_a, a, b):
    url = f"/admin/attribution/affiliate/{a.affiliate.pk}/change/"
    page = client_a.get(url).content.decode()
    assert "plan_assignments-TOTAL_FORMS" in page
    assert "alpha-plan" in page and "bravo-plan" not in page


def test_plan_form_validates_rates_and_codes(client_a, tenant):
    response = client_a.post(
        "/admin/commissions/commissionplan/add/",
        plan_form(name="bad", currency="EURO", cpa_countries="GB, XX", revshare_rate="1.5"),
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "a fraction between 0 and 1" in page
    assert "not ISO 3166-1 alpha-2 codes: XX" in page


def test_fx_rates_are_visible_to_managers_but_changed_only_by_superusers(
    client_a, client, django_user_model
):
    assert client_a.get("/admin/commissions/fxrate/").status_code == 200
    assert client_a.get("/admin/commissions/fxrate/add/").status_code == 403
    assert client_a.get("/admin/commissions/fxrate/import/").status_code == 403


def test_superuser_imports_an_ecb_file(client, db):
    admin_user = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin_user)
    upload = SimpleUploadedFile(
        "eurofxref.csv", b"Date, USD, JPY, \n25 November 2026, 1.0512, N/A, \n"
    )
    response = client.post("/admin/commissions/fxrate/import/", {"file": upload}, follow=True)
    assert "1 rates created" in response.content.decode()
    assert FxRate.objects.get().rate == Decimal("1.0512")
    bad = client.post(
        "/admin/commissions/fxrate/import/",
        {"file": SimpleUploadedFile("x.csv", b"hello,world\n")},
    )
    assert "header must start with" in bad.content.decode()


def test_superuser_sees_every_operator(client, a, b):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    page = client.get("/admin/commissions/ledgerentry/").content.decode()
    assert "alpha-co" in page and "bravo-co" in page
    assert CommissionPlanFactory  # the factories module is importable for other tests


@pytest.mark.parametrize("rate", ["", "0"])
def test_a_plan_with_tiers_needs_a_base_revshare_rate(client_a, tenant, rate):
    form = plan_form(
        name="tiers without a rate",
        currency="EUR",
        revshare_rate=rate,
        **{"tiers-TOTAL_FORMS": "1", "tiers-0-threshold": "1000", "tiers-0-rate": "0.35"},
    )
    response = client_a.post("/admin/commissions/commissionplan/add/", form)
    assert response.status_code == 200
    assert "tiers need a base RevShare rate above 0" in response.content.decode()
    assert not CommissionPlan.objects.filter(name="tiers without a rate").exists()

    form["revshare_rate"] = "0.25"
    response = client_a.post("/admin/commissions/commissionplan/add/", form)
    assert response.status_code == 302
    plan = CommissionPlan.objects.get(name="tiers without a rate")
    assert [(t.threshold, t.rate) for t in plan.tiers.all()] == [(Decimal("1000"), Decimal("0.35"))]


def test_an_assigned_plan_s_currency_cannot_change(client_a, tenant):
    affiliate, plan = deal(tenant, cpa_amount=Decimal("50"))
    url = f"/admin/commissions/commissionplan/{plan.pk}/change/"
    fields = plan_form(name=plan.name, cpa_amount="50")
    response = client_a.post(url, {**fields, "currency": "USD"})
    assert response.status_code == 200
    assert "its currency cannot change" in response.content.decode()
    plan.refresh_from_db()
    assert plan.currency == "EUR"
    # Any other change of the plan is still allowed, and so is the currency of a plan in no
    # use.
    assert client_a.post(url, {**fields, "currency": "EUR", "name": "renamed"}).status_code == 302
    unused = CommissionPlanFactory(operator=tenant.operator, currency="EUR")
    unused_url = f"/admin/commissions/commissionplan/{unused.pk}/change/"
    assert client_a.post(unused_url, {**plan_form(name="u"), "currency": "USD"}).status_code == 302
    unused.refresh_from_db()
    assert unused.currency == "USD"


def test_an_affiliate_s_payout_currency_cannot_leave_its_plans(client_a, tenant):
    affiliate, plan = deal(tenant, cpa_amount=Decimal("50"))
    data = affiliate_page_data(client_a, affiliate)
    data["payout_currency"] = "USD"
    response = client_a.post(f"/admin/attribution/affiliate/{affiliate.pk}/change/", data)
    assert response.status_code == 200
    page = response.content.decode()
    assert "the payout currency cannot change to USD" in page
    assert f"it is assigned {plan.name} (EUR) (in force, to come or ended" in page
    affiliate.refresh_from_db()
    assert affiliate.payout_currency == "EUR"
