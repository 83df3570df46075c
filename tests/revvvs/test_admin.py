"""Admin of operators, brands and users: a manager sees and changes only their operator."""

import pytest

from revvvs.models import Brand, Operator, User
from tests.factories import BrandFactory, PermittedManagerFactory, SuperuserFactory


@pytest.fixture
def manager(tenant):
    return PermittedManagerFactory(operator=tenant.operator, username="manager_a")


@pytest.fixture
def other_manager(other_tenant):
    return PermittedManagerFactory(operator=other_tenant.operator, username="manager_b")


@pytest.fixture
def superuser(db):
    return SuperuserFactory(username="root")


def login(client, user):
    client.force_login(user)
    return client


def listed(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return list(response.context["cl"].result_list), response.content.decode()


def assert_hidden(client, url):
    """The change page of another operator's row: not found (admin redirects to its index)."""
    response = client.get(url)
    assert response.status_code in (302, 404)
    if response.status_code == 302:
        assert response["Location"] == "/admin/"


# --- operators ----------------------------------------------------------------------------


def test_manager_sees_only_their_operator(client, tenant, other_tenant, manager):
    rows, html = listed(login(client, manager), "/admin/revvvs/operator/")
    assert rows == [tenant.operator]
    assert other_tenant.operator.name not in html
    assert_hidden(client, f"/admin/revvvs/operator/{other_tenant.operator.pk}/change/")
    assert client.get(f"/admin/revvvs/operator/{tenant.operator.pk}/change/").status_code == 200


def test_manager_cannot_add_or_delete_operators(client, tenant, manager):
    login(client, manager)
    assert client.get("/admin/revvvs/operator/add/").status_code == 403
    response = client.post(f"/admin/revvvs/operator/{tenant.operator.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert Operator.objects.filter(pk=tenant.operator.pk).exists()


def test_superuser_sees_every_operator(client, tenant, other_tenant, superuser):
    rows, _ = listed(login(client, superuser), "/admin/revvvs/operator/")
    assert set(rows) == {tenant.operator, other_tenant.operator}


# --- brands -------------------------------------------------------------------------------


def test_manager_sees_only_their_brands(client, tenant, other_tenant, manager):
    rows, html = listed(login(client, manager), "/admin/revvvs/brand/")
    assert rows == [tenant.brand]
    assert other_tenant.brand.name not in html
    assert str(tenant.brand.id) in html  # the brand_id operators need
    assert_hidden(client, f"/admin/revvvs/brand/{other_tenant.brand.pk}/change/")


def test_manager_creates_a_brand_for_their_operator_only(client, tenant, other_tenant, manager):
    login(client, manager)
    form = client.get("/admin/revvvs/brand/add/").context["adminform"].form
    assert "operator" not in form.fields
    response = client.post(
        "/admin/revvvs/brand/add/",
        {
            "name": "New Casino",
            "operator": other_tenant.operator.pk,  # ignored
            "default_landing_url": "https://new.example.com/",
            "allowed_domains": "new.example.com\nwww.new.example.com",
            "attribution_window_days": 45,
        },
    )
    assert response.status_code == 302, response.content[:2000]
    brand = Brand.objects.get(name="New Casino")
    assert brand.operator == tenant.operator
    assert brand.attribution_window_days == 45
    assert brand.allowed_domain_list() == ["new.example.com", "www.new.example.com"]


def test_a_duplicate_brand_name_is_a_form_error_for_a_manager(client, tenant, manager):
    login(client, manager)
    response = client.post(
        "/admin/revvvs/brand/add/",
        {
            "name": tenant.brand.name,
            "default_landing_url": "https://dup.example.com/",
            "attribution_window_days": 30,
        },
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert Brand.objects.filter(name=tenant.brand.name).count() == 1


def test_the_same_brand_name_at_another_operator_is_fine(client, tenant, other_tenant, manager):
    BrandFactory(operator=other_tenant.operator, name="Shared Name")
    login(client, manager)
    response = client.post(
        "/admin/revvvs/brand/add/",
        {
            "name": "Shared Name",
            "default_landing_url": "https://shared.example.com/",
            "attribution_window_days": 30,
        },
    )
    assert response.status_code == 302
    assert Brand.objects.filter(name="Shared Name").count() == 2


def test_superuser_filters_brands_by_operator(client, tenant, other_tenant, superuser):
    rows, _ = listed(login(client, superuser), "/admin/revvvs/brand/")
    assert set(rows) == {tenant.brand, other_tenant.brand}
    rows, _ = listed(client, f"/admin/revvvs/brand/?operator__id__exact={other_tenant.operator.pk}")
    assert rows == [other_tenant.brand]


def test_manager_filtering_by_another_operator_finds_nothing(client, tenant, other_tenant, manager):
    login(client, manager)
    response = client.get(f"/admin/revvvs/brand/?operator__id__exact={other_tenant.operator.pk}")
    rows = list(response.context["cl"].result_list) if response.status_code == 200 else []
    assert other_tenant.brand not in rows


# --- users and managers --------------------------------------------------------------------


def test_manager_sees_only_their_operators_users(client, manager, other_manager, superuser):
    rows, html = listed(login(client, manager), "/admin/revvvs/user/")
    assert rows == [manager]
    assert "manager_b" not in html and "root" not in html
    assert_hidden(client, f"/admin/revvvs/user/{other_manager.pk}/change/")
    assert_hidden(client, f"/admin/revvvs/user/{superuser.pk}/change/")
    response = client.get(f"/admin/revvvs/user/{other_manager.pk}/password/")
    assert response.status_code in (302, 404)


def test_manager_creates_a_manager_of_their_operator_never_a_superuser(
    client, tenant, other_tenant, manager
):
    login(client, manager)
    form = client.get("/admin/revvvs/user/add/").context["adminform"].form
    assert {"operator", "is_superuser"}.isdisjoint(form.fields)
    response = client.post(
        "/admin/revvvs/user/add/",
        {
            "username": "new_manager",
            "usable_password": "true",
            "password1": "a-long-pass-phrase-42",
            "password2": "a-long-pass-phrase-42",
            "is_staff": "on",
            "is_superuser": "on",
            "operator": other_tenant.operator.pk,
        },
    )
    assert response.status_code == 302, response.content[:3000]
    created = User.objects.get(username="new_manager")
    assert created.operator == tenant.operator
    assert created.is_staff and not created.is_superuser


def test_manager_cannot_make_a_user_superuser_on_the_change_form(client, manager):
    colleague = PermittedManagerFactory(operator=manager.operator, username="colleague")
    login(client, manager)
    url = f"/admin/revvvs/user/{colleague.pk}/change/"
    form = client.get(url).context["adminform"].form
    assert "is_superuser" not in form.fields and "groups" not in form.fields
    response = client.post(
        url,
        {
            "username": "colleague",
            "is_active": "on",
            "is_staff": "on",
            "is_superuser": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content[:3000]
    colleague.refresh_from_db()
    assert not colleague.is_superuser
    assert colleague.operator == manager.operator


def test_manager_can_grant_only_permissions_they_hold(client, tenant):
    from django.contrib.auth.models import Permission

    limited = PermittedManagerFactory(operator=tenant.operator, username="limited")
    limited.user_permissions.remove(*Permission.objects.filter(codename="delete_brand"))
    login(client, limited)
    colleague = PermittedManagerFactory(operator=tenant.operator, username="colleague2")
    form = client.get(f"/admin/revvvs/user/{colleague.pk}/change/").context["adminform"].form
    choices = form.fields["user_permissions"].queryset
    assert not choices.filter(codename="delete_brand").exists()
    assert not choices.filter(content_type__app_label="auth").exists()
    assert choices.filter(codename="view_brand").exists()


def test_superuser_creates_a_manager_for_any_operator(client, other_tenant, superuser):
    login(client, superuser)
    response = client.post(
        "/admin/revvvs/user/add/",
        {
            "username": "manager_of_b",
            "usable_password": "true",
            "password1": "a-long-pass-phrase-42",
            "password2": "a-long-pass-phrase-42",
            "is_staff": "on",
            "operator": other_tenant.operator.pk,
        },
    )
    assert response.status_code == 302, response.content[:3000]
    created = User.objects.get(username="manager_of_b")
    assert created.operator == other_tenant.operator and created.is_staff
    rows, _ = listed(client, "/admin/revvvs/user/")
    assert {u.username for u in rows} >= {"root", "manager_of_b"}
