"""Helpers of the commission admin's bad-input tests."""

from django.contrib.auth.models import Permission

from revvvs.models import User
from tests.commissions.test_admin_booking import plan_form as admin_plan_form
from tests.factories import ManagerFactory


def manager_of(operator):
    """A manager of `operator` with every programme permission (tests/commissions style)."""
    user = ManagerFactory(operator=operator)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label__in=["attribution", "revvvs", "events", "commissions"]
        )
    )
    return User.objects.get(pk=user.pk)


def superuser():
    return User.objects.create_superuser("root", "root@example.com", "pw")


def plan_form(**fields) -> dict:
    """The plan admin's form in EUR, no tiers unless `fields` add them."""
    return admin_plan_form(**{"currency": "EUR", **fields})


def affiliate_page_data(client, affiliate) -> dict:
    """The affiliate change page's POST data as the browser would send it unchanged."""
    page = client.get(f"/admin/attribution/affiliate/{affiliate.pk}/change/")
    form = page.context["adminform"].form
    data = {
        name: ("" if value is None else value)
        for name, value in form.initial.items()
        if name in form.fields and name != "password"
    }
    for formset in page.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        data.update({f"{management.prefix}-{k}": v for k, v in management.initial.items()})
        for inline_form in formset.formset.forms:
            for name in inline_form.fields:
                value = inline_form[name].value()
                data[inline_form.add_prefix(name)] = "" if value is None else value
    return data
