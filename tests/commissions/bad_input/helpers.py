"""Helpers of the commission admin's bad-input tests."""

from django.contrib.auth.models import Permission

from revvvs.models import User
from tests.commissions.admin_helpers import affiliate_page_data  # noqa: F401
from tests.commissions.admin_helpers import plan_form as admin_plan_form
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
