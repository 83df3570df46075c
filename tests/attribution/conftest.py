from datetime import datetime

import pytest

from revvvs.hashing import ip_hmac
from tests.factories import (
    AffiliateFactory,
    BrandFactory,
    ClickFactory,
    PromoCodeFactory,
    TrackingLinkFactory,
)

EVENT_TIME = datetime.fromisoformat("2026-03-15T10:00:00+00:00")


@pytest.fixture
def affiliate(tenant):
    return AffiliateFactory(operator=tenant.operator)


@pytest.fixture
def link(tenant, affiliate):
    return TrackingLinkFactory(affiliate=affiliate, brand=tenant.brand)


@pytest.fixture
def second_brand(tenant):
    return BrandFactory(operator=tenant.operator)


def click_on(link, *, ip="203.0.113.7", at=EVENT_TIME, **fields):
    return ClickFactory(link=link, ip_hash=ip_hmac(ip), created_at=at, **fields)


def promo_for(affiliate, brand, code):
    return PromoCodeFactory(affiliate=affiliate, brand=brand, code=code)
