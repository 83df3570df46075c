"""The back office of the tracking side: what managers can do, and that a manager of
operator A sees and changes nothing of operator B (lists, pages, form choices, actions)."""

import re

import pytest
from django.contrib.auth.models import Permission

from attribution.models import (
    Affiliate,
    AffiliateStatus,
    AttributionMethod,
    Player,
    PromoCode,
    Reassignment,
    TrackingLink,
)
from attribution.services import player_reassign
from revvvs.models import User
from tests.attribution.conftest import click_on
from tests.conftest import event
from tests.factories import (
    AffiliateFactory,
    ManagerFactory,
    PromoCodeFactory,
    TrackingLinkFactory,
    UserFactory,
)


def grant(user):
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label__in=["attribution", "revvvs", "events"])
    )
    return User.objects.get(pk=user.pk)  # fresh permission cache


class Programme:
    """One operator's data, every name carrying `tag` so a page can be searched for it."""

    def __init__(self, tenant, tag):
        self.tenant = tenant
        self.tag = tag
        self.affiliate = AffiliateFactory(
            operator=tenant.operator, user=UserFactory(username=f"{tag}-aff"), company=f"{tag}-co"
        )
        self.pending = AffiliateFactory(
            operator=tenant.operator,
            status=AffiliateStatus.PENDING,
            user=UserFactory(username=f"{tag}-pending"),
            company=f"{tag}-pending-co",
        )
        self.link = TrackingLinkFactory(
            affiliate=self.affiliate, brand=tenant.brand, code=f"{tag}CODE", name=f"{tag}-link"
        )
        self.promo = PromoCodeFactory(
            affiliate=self.affiliate, brand=tenant.brand, code=f"{tag}PROMO"
        )
        self.click = click_on(self.link, sub1=f"{tag}-sub")
        tenant.post(
            event(
                tenant.brand,
                player_external_ref=f"{tag}-player",
                idempotency_key=f"{tag}-reg",
                click_id=str(self.click.id),
            )
        )
        self.player = Player.objects.get(external_ref=f"{tag}-player")
        self.manager = grant(ManagerFactory(operator=tenant.operator, username=f"{tag}-manager"))
        self.reassignment = player_reassign(
            player=self.player,
            to_affiliate=AffiliateFactory(operator=tenant.operator),
            reason=f"{tag}-reason",
            author=self.manager,
        )


@pytest.fixture
def a(tenant):
    return Programme(tenant, "ayy")


@pytest.fixture
def b(other_tenant):
    return Programme(other_tenant, "bee")


@pytest.fixture
def manager_client(client, a, b):
    client.force_login(a.manager)
    return client


CHANGELISTS = ["affiliate", "trackinglink", "promocode", "click", "player", "reassignment"]


@pytest.mark.parametrize("model", CHANGELISTS)
def test_lists_show_only_the_managers_operator(manager_client, a, b, model):
    response = manager_client.get(f"/admin/attribution/{model}/")
    assert response.status_code == 200
    rows = list(response.context["cl"].result_list)
    assert rows
    # The page's CSRF tokens are random letters, which may spell the other tag by chance.
    content = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", response.content.decode())
    assert "bee" not in content.lower()
    assert "ayy" in content.lower()


@pytest.mark.parametrize("model", ["click", "player", "trackinglink", "promocode", "reassignment"])
def test_list_filters_offer_only_the_managers_rows(manager_client, a, b, model):
    response = manager_client.get(f"/admin/attribution/{model}/")
    for spec in response.context["cl"].filter_specs:
        for choice in getattr(spec, "lookup_choices", []):
            assert "bee" not in str(choice).lower()


def test_superuser_sees_both_operators(client, a, b):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    content = client.get("/admin/attribution/player/").content.decode()
    assert "ayy-player" in content and "bee-player" in content


@pytest.mark.parametrize(
    ("model", "obj"),
    [
        ("affiliate", "affiliate"),
        ("trackinglink", "link"),
        ("promocode", "promo"),
        ("click", "click"),
        ("player", "player"),
        ("reassignment", "reassignment"),
    ],
)
def test_another_operators_pages_are_out_of_reach(manager_client, a, b, model, obj):
    pk = getattr(b, obj).pk
    response = manager_client.get(f"/admin/attribution/{model}/{pk}/change/")
    assert response.status_code in (302, 404)
    assert b.tag not in response.content.decode()
    own = manager_client.get(f"/admin/attribution/{model}/{getattr(a, obj).pk}/change/")
    assert own.status_code == 200


def choices(response, name):
    return set(response.context["adminform"].form.fields[name].queryset)


def test_add_form_choices_are_scoped(manager_client, a, b):
    link_add = manager_client.get("/admin/attribution/trackinglink/add/")
    assert a.affiliate in choices(link_add, "affiliate")
    assert b.affiliate not in choices(link_add, "affiliate")
    assert choices(link_add, "brand") == {a.tenant.brand}
    promo_add = manager_client.get("/admin/attribution/promocode/add/")
    assert b.affiliate not in choices(promo_add, "affiliate")
    assert choices(promo_add, "brand") == {a.tenant.brand}
    affiliate_add = manager_client.get("/admin/attribution/affiliate/add/")
    assert "operator" not in affiliate_add.context["adminform"].form.fields
    referrers = choices(affiliate_add, "referrer")
    assert a.affiliate in referrers and b.affiliate not in referrers


def test_inline_choices_are_scoped(manager_client, a, b):
    response = manager_client.get(f"/admin/attribution/affiliate/{a.affiliate.pk}/change/")
    for inline in response.context["inline_admin_formsets"]:
        brands = set(inline.formset.empty_form.fields["brand"].queryset)
        assert brands == {a.tenant.brand}


def test_posting_another_operators_ids_changes_nothing(manager_client, a, b):
    for action in ("approve", "reject"):
        manager_client.post(
            "/admin/attribution/affiliate/",
            {"action": action, "_selected_action": [b.pending.pk]},
        )
    assert Affiliate.objects.get(pk=b.pending.pk).status == AffiliateStatus.PENDING
    response = manager_client.post(
        "/admin/attribution/trackinglink/add/",
        {"affiliate": b.affiliate.pk, "brand": b.tenant.brand.pk, "name": "x"},
    )
    assert response.status_code == 200  # the form again, with errors
    assert not TrackingLink.objects.filter(name="x").exists()
    response = manager_client.post(
        "/admin/attribution/player/",
        {
            "action": "reassign",
            "_selected_action": [b.player.pk],
            "apply": "1",
            "to_affiliate": a.affiliate.pk,
            "reason": "steal",
        },
    )
    assert Player.objects.get(pk=b.player.pk).affiliate_id == b.player.affiliate_id
    assert not Reassignment.objects.filter(reason="steal").exists()


def test_reassign_to_another_operators_affiliate_is_not_a_choice(manager_client, a, b):
    response = manager_client.post(
        "/admin/attribution/player/",
        {
            "action": "reassign",
            "_selected_action": [a.player.pk],
            "apply": "1",
            "to_affiliate": b.affiliate.pk,
            "reason": "cross",
        },
    )
    assert response.status_code == 200
    assert "to_affiliate" in response.context["form"].errors
    assert b.affiliate not in set(response.context["form"].fields["to_affiliate"].queryset)
    assert Player.objects.get(pk=a.player.pk).affiliate_id != b.affiliate.pk


# --- what managers do ---------------------------------------------------------------------


def test_reassign_action_asks_for_affiliate_and_reason_then_moves(manager_client, a, b):
    target = AffiliateFactory(operator=a.tenant.operator, company="ayy-target")
    form_page = manager_client.post(
        "/admin/attribution/player/", {"action": "reassign", "_selected_action": [a.player.pk]}
    )
    assert form_page.status_code == 200
    assert b"Reassign" in form_page.content
    no_reason = manager_client.post(
        "/admin/attribution/player/",
        {
            "action": "reassign",
            "_selected_action": [a.player.pk],
            "apply": "1",
            "to_affiliate": target.pk,
            "reason": "",
        },
    )
    assert "reason" in no_reason.context["form"].errors
    done = manager_client.post(
        "/admin/attribution/player/",
        {
            "action": "reassign",
            "_selected_action": [a.player.pk],
            "apply": "1",
            "to_affiliate": target.pk,
            "reason": "sub-affiliate dispute",
        },
    )
    assert done.status_code == 302
    player = Player.objects.get(pk=a.player.pk)
    assert (player.affiliate_id, player.attribution_method) == (
        target.pk,
        AttributionMethod.MANUAL,
    )
    audit = Reassignment.objects.get(reason="sub-affiliate dispute")
    assert (audit.author_id, audit.to_affiliate_id) == (a.manager.pk, target.pk)


def test_status_actions(manager_client, a):
    manager_client.post(
        "/admin/attribution/affiliate/", {"action": "approve", "_selected_action": [a.pending.pk]}
    )
    assert Affiliate.objects.get(pk=a.pending.pk).status == AffiliateStatus.APPROVED
    manager_client.post(
        "/admin/attribution/affiliate/", {"action": "suspend", "_selected_action": [a.pending.pk]}
    )
    assert Affiliate.objects.get(pk=a.pending.pk).status == AffiliateStatus.SUSPENDED
    # An impossible transition is reported, not a crash.
    response = manager_client.post(
        "/admin/attribution/affiliate/",
        {"action": "reject", "_selected_action": [a.pending.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "only a pending affiliate can be rejected" in response.content.decode()


def inline_management(prefix, total=0, initial=0):
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def test_manager_adds_an_affiliate_with_a_login(manager_client, a):
    response = manager_client.post(
        "/admin/attribution/affiliate/add/",
        {
            "email": "New@Partner.example",
            "password": "partner-pass-1",
            "status": "approved",
            "payout_currency": "EUR",
            "minimum_payout": "100",
            "referrer": a.affiliate.pk,
            **inline_management("links"),
            **inline_management("promo_codes"),
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    affiliate = Affiliate.objects.get(email="new@partner.example")
    assert affiliate.operator_id == a.tenant.operator.pk
    assert affiliate.referrer_id == a.affiliate.pk
    assert affiliate.user.username == "new@partner.example"
    assert affiliate.user.check_password("partner-pass-1")


def test_inline_links_and_promo_codes_are_validated_and_generated(manager_client, a):
    a.tenant.brand.allowed_domains = "deep.example.org"
    a.tenant.brand.save()
    url = f"/admin/attribution/affiliate/{a.affiliate.pk}/change/"
    base = {
        "company": "ayy-co",
        "payout_currency": "EUR",
        "minimum_payout": "0",
        **inline_management("links", total=1, initial=0),
        **inline_management("promo_codes", total=1, initial=0),
        "links-0-brand": a.tenant.brand.pk,
        "links-0-name": "spring",
        "promo_codes-0-brand": a.tenant.brand.pk,
    }
    bad = manager_client.post(
        url,
        {
            **base,
            "links-0-landing_url": "https://deep.example.org.evil.test/",
            "promo_codes-0-code": "ayypromo",  # taken, case-insensitively
        },
    )
    assert bad.status_code == 200
    assert not TrackingLink.objects.filter(name="spring").exists()
    errors = str([f.errors for inline in bad.context["inline_admin_formsets"] for f in inline])
    assert "allowed domains" in errors
    assert "already used" in errors
    good = manager_client.post(
        url,
        {
            **base,
            "links-0-landing_url": "https://deep.example.org/spring",
            "promo_codes-0-code": "SPRING26",
        },
    )
    assert good.status_code == 302
    link = TrackingLink.objects.get(name="spring")
    assert link.landing_url == "https://deep.example.org/spring"
    assert len(link.code) == 8
    assert PromoCode.objects.get(code="SPRING26").operator_id == a.tenant.operator.pk


def test_link_admin_refuses_open_redirects(manager_client, a):
    response = manager_client.post(
        "/admin/attribution/trackinglink/add/",
        {
            "affiliate": a.affiliate.pk,
            "brand": a.tenant.brand.pk,
            "name": "evil",
            "landing_url": "https://evil.test/",
        },
    )
    assert response.status_code == 200
    assert "landing_url" in response.context["adminform"].form.errors
    ok = manager_client.post(
        "/admin/attribution/trackinglink/add/",
        {"affiliate": a.affiliate.pk, "brand": a.tenant.brand.pk, "name": "home"},
    )
    assert ok.status_code == 302
    assert TrackingLink.objects.get(name="home").landing_url == a.tenant.brand.default_landing_url


def test_clicks_players_and_reassignments_are_read_only(manager_client, a):
    for model in ("click", "player", "reassignment"):
        assert manager_client.get(f"/admin/attribution/{model}/add/").status_code == 403
    pk = a.player.pk
    manager_client.post(f"/admin/attribution/player/{pk}/change/", {"external_ref": "changed"})
    assert Player.objects.get(pk=pk).external_ref == "ayy-player"
    assert manager_client.post(f"/admin/attribution/player/{pk}/delete/").status_code == 403


def test_click_search_by_id_or_anything_else(manager_client, a):
    assert manager_client.get("/admin/attribution/click/?q=not-a-uuid").status_code == 200
    found = manager_client.get(f"/admin/attribution/click/?q={a.click.id}")
    assert list(found.context["cl"].result_list) == [a.click]


def test_superuser_cannot_give_an_affiliate_a_referrer_of_another_operator(client, a, b):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    response = client.post(
        "/admin/attribution/affiliate/add/",
        {
            "operator": a.tenant.operator.pk,
            "email": "cross@partner.example",
            "status": "pending",
            "payout_currency": "EUR",
            "minimum_payout": "0",
            "referrer": b.affiliate.pk,
            **inline_management("links"),
            **inline_management("promo_codes"),
        },
    )
    assert response.status_code == 200
    assert "referrer" in response.context["adminform"].form.errors
    assert not Affiliate.objects.filter(email="cross@partner.example").exists()


def test_an_affiliate_page_refuses_a_referrer_paid_in_another_currency(manager_client, a):
    referrer = AffiliateFactory(operator=a.tenant.operator, payout_currency="USD")
    response = manager_client.post(
        "/admin/attribution/affiliate/add/",
        {
            "email": "cur@partner.example",
            "status": "pending",
            "payout_currency": "EUR",
            "minimum_payout": "0",
            "referrer": referrer.pk,
            **inline_management("links"),
            **inline_management("promo_codes"),
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "both must be paid in the same one" in str(errors["referrer"])
    assert not Affiliate.objects.filter(email="cur@partner.example").exists()


def test_reassign_action_makes_players_organic_only_when_asked(manager_client, a):
    def post(**fields):
        return manager_client.post(
            "/admin/attribution/player/",
            {
                "action": "reassign",
                "_selected_action": [a.player.pk],
                "apply": "1",
                "reason": "under review",
                **fields,
            },
        )

    neither = post()
    assert "choose an affiliate, or tick" in str(neither.context["form"].errors["to_affiliate"])
    assert Player.objects.get(pk=a.player.pk).affiliate_id is not None

    done = post(to_organic="on")

    assert done.status_code == 302
    assert Player.objects.get(pk=a.player.pk).affiliate_id is None
    assert Reassignment.objects.filter(player=a.player).latest("id").to_affiliate is None


def test_a_bulk_status_action_counts_apart_those_already_in_that_state(manager_client, a):
    # a.affiliate is approved already, a.pending is not.
    response = manager_client.post(
        "/admin/attribution/affiliate/",
        {"action": "approve", "_selected_action": [a.affiliate.pk, a.pending.pk]},
        follow=True,
    )

    shown = [str(m) for m in response.context["messages"]]
    assert "1 affiliate(s) approved." in shown
    assert "1 affiliate(s) already approved." in shown
    assert Affiliate.objects.get(pk=a.pending.pk).status == AffiliateStatus.APPROVED
