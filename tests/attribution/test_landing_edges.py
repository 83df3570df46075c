"""The redirect and the landing URL rules at their edges: a brand's default URL, bad hosts."""

import pytest
from django.core.exceptions import ValidationError

from attribution.models import Click
from attribution.services import landing_url_clean, tracking_link_create
from revvvs.models import Brand
from tests.attribution.test_admin import grant
from tests.attribution.test_tracking_edge import wsgi_call
from tests.factories import ManagerFactory


@pytest.mark.parametrize("scheme", ["ftps", "ftp"])
def test_the_brand_admin_refuses_a_default_url_a_redirect_cannot_answer(
    client, tenant, affiliate, scheme
):
    original = tenant.brand.default_landing_url
    client.force_login(grant(ManagerFactory(operator=tenant.operator)))
    response = client.post(
        f"/admin/revvvs/brand/{tenant.brand.pk}/change/",
        {
            "name": tenant.brand.name,
            "default_landing_url": f"{scheme}://brand.example.com/welcome",
            "allowed_domains": "",
            "attribution_window_days": 30,
        },
    )
    assert response.status_code == 200  # the form again, with the error
    assert "Enter a valid URL" in response.content.decode()
    assert Brand.objects.get(pk=tenant.brand.pk).default_landing_url == original
    link = tracking_link_create(affiliate=affiliate, brand=tenant.brand)
    assert wsgi_call(f"/t/{link.code}").status_code == 302
    assert Click.objects.count() == 1


@pytest.mark.parametrize(
    "url", ["https://[brand.example.com]/", "https://brand.example.com\uff0fevil.test/"]
)
def test_landing_url_clean_refuses_a_bad_netloc_with_a_validation_error(db, url):
    brand = Brand(
        default_landing_url="https://brand.example.com/", allowed_domains="brand.example.com"
    )
    with pytest.raises(ValidationError):
        landing_url_clean(brand=brand, url=url)
