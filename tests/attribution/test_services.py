"""Affiliates, links and promo codes through their services."""

import re

import pytest
from django.core.exceptions import ValidationError

from attribution import services
from attribution.models import Affiliate, AffiliateStatus, PromoCode, TrackingLink
from revvvs.models import User
from tests.factories import AffiliateFactory, BrandFactory, OperatorFactory, TrackingLinkFactory

# --- affiliates -----------------------------------------------------------------------------


def test_affiliate_create_makes_a_login_named_by_the_email(tenant):
    affiliate = services.affiliate_create(
        operator=tenant.operator,
        email="  Ace@Media.example ",
        password="s3cret-pass-word",
        company="Ace Media",
    )
    assert affiliate.status == AffiliateStatus.PENDING
    assert affiliate.email == "ace@media.example"
    assert affiliate.status_changed_at is not None
    user = User.objects.get(pk=affiliate.user_id)
    assert user.username == "ace@media.example"
    assert user.check_password("s3cret-pass-word")
    assert not user.is_staff


def test_affiliate_create_without_password_has_no_usable_password(tenant):
    affiliate = services.affiliate_create(operator=tenant.operator, email="a@b.example")
    assert not affiliate.user.has_usable_password()


def test_affiliate_email_is_unique(tenant):
    services.affiliate_create(operator=tenant.operator, email="a@b.example")
    with pytest.raises(ValidationError, match="already exists"):
        services.affiliate_create(operator=tenant.operator, email="A@B.example")
    assert Affiliate.objects.count() == 1


@pytest.mark.parametrize("email", ["", "not-an-email", "a@"])
def test_affiliate_create_refuses_bad_emails(tenant, email):
    with pytest.raises(ValidationError, match="valid email"):
        services.affiliate_create(operator=tenant.operator, email=email)


def test_referrer_must_be_of_the_same_operator(tenant, other_tenant):
    foreign = AffiliateFactory(operator=other_tenant.operator)
    with pytest.raises(ValidationError, match="same operator"):
        services.affiliate_create(operator=tenant.operator, email="x@y.example", referrer=foreign)
    own = AffiliateFactory(operator=tenant.operator)
    referred = services.affiliate_create(
        operator=tenant.operator, email="x@y.example", referrer=own
    )
    assert referred.referrer_id == own.pk
    with pytest.raises(ValidationError, match="same operator"):
        services.affiliate_update(affiliate=referred, referrer=foreign)
    with pytest.raises(ValidationError, match="own referrer"):
        services.affiliate_update(affiliate=referred, referrer=referred)
    referred.refresh_from_db()
    assert referred.referrer_id == own.pk


def test_an_affiliate_and_its_referrer_are_paid_in_the_same_currency(tenant):
    referrer = AffiliateFactory(operator=tenant.operator, payout_currency="USD")
    with pytest.raises(ValidationError, match="both must be paid in the same one"):
        services.affiliate_create(
            operator=tenant.operator, email="eur@y.example", referrer=referrer
        )  # the default payout currency, EUR
    referred = services.affiliate_create(
        operator=tenant.operator, email="usd@y.example", referrer=referrer, payout_currency="USD"
    )
    with pytest.raises(ValidationError, match="both must be paid in the same one"):
        services.affiliate_update(affiliate=referred, payout_currency="EUR")
    with pytest.raises(ValidationError, match="refers usd@y.example"):
        services.affiliate_update(affiliate=referrer, payout_currency="EUR")
    other = AffiliateFactory(operator=tenant.operator, payout_currency="EUR")
    with pytest.raises(ValidationError, match="both must be paid in the same one"):
        services.affiliate_update(affiliate=other, referrer=referrer)
    referred.refresh_from_db()
    referrer.refresh_from_db()
    assert (referred.payout_currency, referrer.payout_currency) == ("USD", "USD")
    # Together they may change: the referral first, once it has no referrer.
    services.affiliate_update(affiliate=referred, referrer=None, payout_currency="EUR")
    services.affiliate_update(affiliate=referrer, payout_currency="EUR")
    assert Affiliate.objects.get(pk=referrer.pk).payout_currency == "EUR"


def test_status_transitions(tenant):
    affiliate = AffiliateFactory(operator=tenant.operator, status=AffiliateStatus.PENDING)
    before = affiliate.status_changed_at
    services.affiliate_approve(affiliate=affiliate)
    affiliate.refresh_from_db()
    assert affiliate.status == AffiliateStatus.APPROVED
    assert affiliate.status_changed_at > before
    with pytest.raises(ValidationError, match="only a pending affiliate can be rejected"):
        services.affiliate_reject(affiliate=affiliate)
    services.affiliate_suspend(affiliate=affiliate)
    affiliate.refresh_from_db()
    assert affiliate.status == AffiliateStatus.SUSPENDED
    services.affiliate_approve(affiliate=affiliate)
    assert Affiliate.objects.get(pk=affiliate.pk).status == AffiliateStatus.APPROVED


def test_pending_affiliate_cannot_be_suspended(tenant):
    affiliate = AffiliateFactory(operator=tenant.operator, status=AffiliateStatus.PENDING)
    with pytest.raises(ValidationError):
        services.affiliate_suspend(affiliate=affiliate)
    assert Affiliate.objects.get(pk=affiliate.pk).status == AffiliateStatus.PENDING


# --- landing URLs ---------------------------------------------------------------------------


@pytest.fixture
def brand(tenant):
    tenant.brand.default_landing_url = "https://allowed.example.com/welcome"
    tenant.brand.allowed_domains = "allowed.example.com\npromo.allowed.example.com"
    tenant.brand.save()
    return tenant.brand


@pytest.mark.parametrize(
    "url",
    [
        "https://allowed.example.com/games?x=1",
        "http://allowed.example.com/",
        "https://PROMO.allowed.example.com/spring#top",
        "https://allowed.example.com:8443/path",
    ],
)
def test_deep_links_on_allowed_hosts_are_accepted(brand, url):
    assert services.landing_url_clean(brand=brand, url=url) == url


@pytest.mark.parametrize(
    "url",
    [
        "https://allowed.example.com.evil.test/",
        "https://evil.test/allowed.example.com",
        "//evil.test",
        "//allowed.example.com/",
        "/relative/path",
        "https://evil.test\\@allowed.example.com",
        "https://evil.test\\.allowed.example.com/",
        "https://user:pass@allowed.example.com/",
        "https://allowed.example.com@evil.test/",
        "javascript:alert(1)//allowed.example.com",
        "data:text/html,allowed.example.com",
        "ftp://allowed.example.com/",
        "https://sub.allowed.example.com/",
        "https://example.com/",
        "https://allowed.example.com./",
        "https:/allowed.example.com/",
        "https://allowed.example.com\n.evil.test/",
        "https://allowed.example.com /",
        "https://allowed.example.com:99999/",
        "https://xn--llowed-9ua.example.com/",
    ],
)
def test_other_hosts_and_tricks_are_refused(brand, affiliate, url):
    with pytest.raises(ValidationError):
        services.landing_url_clean(brand=brand, url=url)
    with pytest.raises(ValidationError) as excinfo:
        services.tracking_link_create(affiliate=affiliate, brand=brand, landing_url=url)
    assert "landing_url" in excinfo.value.message_dict
    assert TrackingLink.objects.count() == 0


def test_refusal_names_the_allowed_domains(brand):
    with pytest.raises(ValidationError) as excinfo:
        services.landing_url_clean(brand=brand, url="https://allowed.example.com.evil.test/")
    assert "allowed.example.com, promo.allowed.example.com" in excinfo.value.messages[0]


# --- links ---------------------------------------------------------------------------------


def test_link_gets_a_short_random_url_safe_code_and_the_default_landing(brand, affiliate):
    links = [
        services.tracking_link_create(affiliate=affiliate, brand=brand, name=f"n{i}")
        for i in range(20)
    ]
    codes = {link.code for link in links}
    assert len(codes) == 20
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{8}", code) for code in codes)
    assert {link.landing_url for link in links} == {brand.default_landing_url}


def test_link_code_collision_is_retried(brand, affiliate, monkeypatch):
    taken = TrackingLinkFactory(affiliate=affiliate, brand=brand, code="TAKEN123")
    codes = iter([taken.code, "FRESH456"])
    monkeypatch.setattr(services.secrets, "token_urlsafe", lambda n: next(codes))
    link = services.tracking_link_create(affiliate=affiliate, brand=brand)
    assert link.code == "FRESH456"
    assert TrackingLink.objects.count() == 2


def test_link_on_another_operators_brand_is_refused(affiliate, other_tenant):
    with pytest.raises(ValidationError, match="affiliate's operator"):
        services.tracking_link_create(affiliate=affiliate, brand=other_tenant.brand)


def test_link_update_validates_the_landing_url(brand, affiliate):
    link = services.tracking_link_create(affiliate=affiliate, brand=brand)
    with pytest.raises(ValidationError):
        services.tracking_link_update(link=link, landing_url="https://evil.test/")
    assert TrackingLink.objects.get(pk=link.pk).landing_url == brand.default_landing_url
    services.tracking_link_update(link=link, landing_url="https://allowed.example.com/x")
    assert TrackingLink.objects.get(pk=link.pk).landing_url == "https://allowed.example.com/x"


# --- promo codes ---------------------------------------------------------------------------


def test_promo_codes_are_unique_per_operator_case_insensitively(tenant, affiliate, other_tenant):
    services.promo_code_create(affiliate=affiliate, brand=tenant.brand, code="Spring25")
    other = AffiliateFactory(operator=tenant.operator)
    with pytest.raises(ValidationError, match="already used"):
        services.promo_code_create(affiliate=other, brand=tenant.brand, code="SPRING25")
    # Another operator's programme may use the same code.
    services.promo_code_create(
        affiliate=AffiliateFactory(operator=other_tenant.operator),
        brand=other_tenant.brand,
        code="spring25",
    )
    assert PromoCode.objects.count() == 2


@pytest.mark.parametrize("code", ["", "has space", "x" * 65, "ünï"])
def test_malformed_promo_codes_are_refused(tenant, affiliate, code):
    with pytest.raises(ValidationError):
        services.promo_code_create(affiliate=affiliate, brand=tenant.brand, code=code)


def test_promo_code_on_another_operators_brand_is_refused(affiliate):
    with pytest.raises(ValidationError, match="affiliate's operator"):
        services.promo_code_create(
            affiliate=affiliate, brand=BrandFactory(operator=OperatorFactory()), code="X1"
        )
