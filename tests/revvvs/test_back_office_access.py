"""Who may do what in the back office (tenancy and permissions of admin pages).

Each test failed on the code before its fix."""

from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission

from attribution.models import Affiliate
from attribution.services import affiliate_create
from commissions.models import FxRate, LedgerEntry
from revvvs.models import User
from tests.attribution.test_admin import Programme as TrackingProgramme
from tests.attribution.test_admin import inline_management
from tests.commissions.admin_helpers import affiliate_page_data
from tests.commissions.test_admin_booking import Programme as BookingProgramme
from tests.factories import AffiliateFactory, ManagerFactory, UserFactory


def perms(*names):
    found = []
    for name in names:
        app_label, codename = name.split(".")
        found.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return found


def user_with(operator, *names, **fields):
    user = ManagerFactory(operator=operator, **fields)
    user.user_permissions.add(*perms(*names))
    return User.objects.get(pk=user.pk)  # fresh permission cache


# --- permissions: a view-only user changes nothing ---------------------------------------


def test_a_view_only_user_cannot_book_commissions_with_the_reprocess_action(client, tenant):
    """The pending-FX 'reprocess' action books ledger entries: it must need more than the
    view permission (PendingFxAdmin.reprocess declares no `permissions`)."""
    mine = BookingProgramme(tenant, "alpha")
    FxRate.objects.create(currency="SEK", date=date(2026, 3, 10), rate=Decimal("11"))
    viewer = user_with(tenant.operator, "commissions.view_pendingfx")
    client.force_login(viewer)
    entries_before = LedgerEntry.objects.count()

    client.post(
        "/admin/commissions/pendingfx/",
        {"action": "reprocess", "_selected_action": [mine.pending.pk]},
    )

    mine.pending.refresh_from_db()
    assert mine.pending.resolved_at is None, "a view-only user applied a pending-FX event"
    assert LedgerEntry.objects.count() == entries_before


# --- users: a manager never reaches a superuser, never strips others' rights ---------------


def test_a_manager_cannot_reset_the_password_of_a_superuser_tied_to_their_operator(client, tenant):
    """The superuser form offers an operator for any user, superusers included; the
    manager's user list is scoped by operator only, so a manager can set a superuser's
    password and log in as them (privilege escalation)."""
    boss = UserFactory(username="boss", is_staff=True, is_superuser=True, operator=tenant.operator)
    manager = user_with(tenant.operator, "revvvs.view_user", "revvvs.change_user")
    client.force_login(manager)

    listed = client.get("/admin/revvvs/user/")
    client.post(
        f"/admin/revvvs/user/{boss.pk}/password/",
        {
            "password1": "Hijacked-pass-99",
            "password2": "Hijacked-pass-99",
            "usable_password": "true",
        },
    )

    boss.refresh_from_db()
    assert not boss.check_password("Hijacked-pass-99"), "a manager took over a superuser"
    assert boss not in list(listed.context["cl"].result_list)


def test_a_manager_saving_a_users_page_keeps_the_permissions_they_cannot_grant(client, tenant):
    """A manager offers only the permissions they hold; a colleague's other permissions
    (granted by a superuser) are not in the widget, so saving the page as the browser
    sends it silently removes them."""
    colleague = user_with(
        tenant.operator,
        "revvvs.view_user",
        "commissions.change_statement",
        username="colleague",
    )
    manager = user_with(tenant.operator, "revvvs.view_user", "revvvs.change_user")
    client.force_login(manager)
    url = f"/admin/revvvs/user/{colleague.pk}/change/"
    form = client.get(url).context["adminform"].form
    offered = {str(p.pk) for p in form.fields["user_permissions"].queryset}
    data = {
        "username": colleague.username,
        "first_name": "",
        "last_name": "",
        "email": "renamed@example.com",
        "is_active": "on",
        "is_staff": "on",
        # What a browser posts: the selected options among those the widget shows.
        "user_permissions": [
            str(pk) for pk in form["user_permissions"].value() if str(pk) in offered
        ],
    }

    response = client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    colleague = User.objects.get(pk=colleague.pk)
    assert colleague.email == "renamed@example.com"
    assert colleague.has_perm("commissions.change_statement"), (
        "editing a colleague's email removed a permission the manager could not see"
    )


# --- affiliates: a clash is a form error, never a 500 ------------------------------------


@pytest.fixture
def a(tenant):
    return TrackingProgramme(tenant, "ayy")


def add_affiliate(client, email):
    client.raise_request_exception = False
    return client.post(
        "/admin/attribution/affiliate/add/",
        {
            "email": email,
            "status": "approved",
            "payout_currency": "EUR",
            "minimum_payout": "0",
            **inline_management("links"),
            **inline_management("promo_codes"),
        },
    )


def test_adding_an_affiliate_whose_email_is_already_in_the_programme_is_a_form_error(client, a):
    """The per-operator unique email is not validated by the form (the manager's form has
    no operator field) and affiliate_create's ValidationError escapes save_model: 500."""
    client.force_login(a.manager)

    response = add_affiliate(client, a.affiliate.email.upper())

    assert response.status_code == 200
    assert "email" in response.context["adminform"].form.errors
    assert Affiliate.objects.filter(email__iexact=a.affiliate.email).count() == 1


def test_adding_an_affiliate_with_an_email_that_has_a_login_is_a_form_error(
    client, a, other_tenant
):
    """Another programme's affiliate (whose login is their email) or any other login with
    that email: affiliate_create raises 'a login with the email … already exists', which
    save_model does not catch: 500."""
    affiliate_create(operator=other_tenant.operator, email="shared@partner.example")
    client.force_login(a.manager)

    response = add_affiliate(client, "shared@partner.example")

    assert response.status_code == 200
    assert "email" in response.context["adminform"].form.errors
    assert not Affiliate.objects.filter(
        operator=a.tenant.operator, email="shared@partner.example"
    ).exists()


def test_the_affiliate_page_refuses_a_referral_cycle(client, a):
    """x refers y; making y x's referrer closes a loop (each earns a share of the other).
    Only self-reference is refused (form clean, model constraint)."""
    x = AffiliateFactory(operator=a.tenant.operator, company="ayy-x")
    y = AffiliateFactory(operator=a.tenant.operator, company="ayy-y", referrer=x)
    client.force_login(a.manager)
    data = affiliate_page_data(client, x)
    data["referrer"] = y.pk

    client.post(f"/admin/attribution/affiliate/{x.pk}/change/", data)

    x.refresh_from_db()
    assert x.referrer_id is None, "x and y now refer each other"
