"""Management commands given bad arguments answer a clear CommandError (exit 1
with a message), never a traceback; seed_demo never takes over accounts it did not make."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from events.models import ApiKey
from revvvs.models import Brand, Operator, User
from tests.factories import ManagerFactory, OperatorFactory, UserFactory

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--name", "N" * 201, "--brand", "Casino"], id="operator-name-too-long"),
        pytest.param(["--name", "Acme", "--brand", "B" * 201], id="brand-name-too-long"),
        pytest.param(["--name", "Ac\x00me", "--brand", "Casino"], id="operator-name-with-nul"),
        pytest.param(["--name", "Acme", "--brand", "Cas\x00ino"], id="brand-name-with-nul"),
    ],
)
def test_create_operator_refuses_names_the_database_cannot_hold(args):
    """operator_create runs straight into the database: DataError traceback."""
    with pytest.raises(CommandError):
        run("create_operator", *args, "--json")
    assert not Operator.objects.exists()
    assert not Brand.objects.exists()


@pytest.mark.parametrize(
    "name", [pytest.param("k" * 101, id="too-long"), pytest.param("k\x00", id="nul")]
)
def test_create_api_key_refuses_a_name_the_database_cannot_hold(name):
    operator = OperatorFactory()
    with pytest.raises(CommandError):
        run("create_api_key", "--operator", str(operator.pk), "--name", name, "--json")
    assert not ApiKey.objects.exists()


def test_import_fx_rates_with_an_unusable_path_is_a_command_error():
    """open() raises ValueError ('embedded null byte'), not OSError: a traceback."""
    with pytest.raises(CommandError):
        run("import_fx_rates", "rates\x00.csv")


def test_seed_demo_does_not_take_over_an_existing_login_of_another_operator():
    """seed_demo gets or creates the users 'manager' and 'admin' by username and resets
    their password to the published demo one: on a database where 'manager' is a real
    manager of another operator, that login gets a known password and the demo
    permissions, and `--json` prints it as the demo operator's manager."""
    other = OperatorFactory(name="Real Operator")
    real = ManagerFactory(operator=other, username="manager")
    real.set_password("a-real-secret-1")
    real.save()

    try:
        result = json.loads(run("seed_demo", "--json"))
    except CommandError:
        result = None  # refusing clearly is fine too

    real = User.objects.get(pk=real.pk)
    assert real.check_password("a-real-secret-1"), "seed_demo reset a real user's password"
    if result is not None:
        printed = User.objects.get(username=result["manager"]["username"])
        assert printed.operator_id == result["operator_id"]


def test_seed_demo_does_not_reset_the_password_of_an_existing_admin():
    admin = UserFactory(username="admin", is_staff=True, is_superuser=True)
    admin.set_password("the-real-admin-secret")
    admin.save()

    try:
        run("seed_demo", "--json")
    except CommandError:
        pass

    admin.refresh_from_db()
    assert admin.check_password("the-real-admin-secret"), (
        "seed_demo gave a real superuser the published demo password"
    )
