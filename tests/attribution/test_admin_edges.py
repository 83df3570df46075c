"""The attribution admin at its edges: a link's brand on the affiliate page, a staff user
without an operator."""

import pytest

from attribution.models import Affiliate, Click, PromoCode, TrackingLink
from tests.attribution.test_admin import Programme, grant, inline_management
from tests.attribution.test_redirect import visit
from tests.factories import BrandFactory, UserFactory


@pytest.fixture
def a(tenant):
    return Programme(tenant, "ayy")


def test_a_staff_user_without_an_operator_cannot_add_an_affiliate_and_gets_no_500(client, a):
    client.force_login(grant(UserFactory(is_staff=True)))  # staff, every permission, no operator
    client.raise_request_exception = False
    response = client.post(
        "/admin/attribution/affiliate/add/",
        {
            "email": "orphan@partner.example",
            "status": "approved",
            "payout_currency": "EUR",
            "minimum_payout": "0",
            **inline_management("links"),
            **inline_management("promo_codes"),
        },
    )
    assert response.status_code == 403  # no add permission: it would belong to no operator
    assert not Affiliate.objects.filter(email="orphan@partner.example").exists()


def test_changing_a_links_brand_in_the_affiliate_inline_is_saved_or_refused(client, a):
    second = BrandFactory(operator=a.tenant.operator)
    client.force_login(a.manager)
    url = f"/admin/attribution/affiliate/{a.affiliate.pk}/change/"
    page = client.get(url)
    data = {
        "company": "ayy-co",
        "payout_currency": "EUR",
        "minimum_payout": "0",
        **inline_management("links", total=1, initial=1),
        **inline_management("promo_codes", total=1, initial=1),
        "links-0-id": a.link.pk,
        "links-0-affiliate": a.affiliate.pk,
        "links-0-brand": second.pk,
        "links-0-name": "moved",
        "links-0-landing_url": second.default_landing_url,
        "promo_codes-0-id": a.promo.pk,
        "promo_codes-0-affiliate": a.affiliate.pk,
    }
    for inline in page.context["inline_admin_formsets"]:
        if inline.formset.model not in (TrackingLink, PromoCode):
            data.update(inline_management(inline.formset.prefix))
    response = client.post(url, data)

    link = TrackingLink.objects.get(pk=a.link.pk)
    assert link.brand_id == a.link.brand_id  # a link keeps its brand (shown read-only)
    assert response.status_code in (200, 302)
    # And it still records the approved affiliate's clicks.
    before = Click.objects.count()
    visit(client, link)
    assert Click.objects.count() == before + 1
