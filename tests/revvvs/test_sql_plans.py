"""The row sets of the hot statements (revvvs.sql.recordset) tell the planner how many rows
they hold: for one event, the players' get-or-create must look the player up by its index,
not hash-join it against a scan of the whole players table (docs/performance.md)."""

import json

import pytest
from django.db import connection

from attribution.models import Player
from attribution.services import _players_sql
from revvvs import sql
from tests.factories import BrandFactory

pytestmark = pytest.mark.django_db


def _plan(statement, params) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + statement, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.fixture
def many_players():
    brand = BrandFactory()
    Player.objects.bulk_create(
        (Player(brand=brand, external_ref=f"p{n}") for n in range(20_000)), batch_size=5000
    )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Player._meta.db_table}")
    return brand


def test_one_events_player_is_looked_up_by_index(many_players):
    get_or_create, _ = _players_sql()
    template = Player(brand_id=None, external_ref="")
    row = {
        f.column: f.pre_save(template, True)
        for f in Player._meta.concrete_fields
        if not f.primary_key
    }
    row.update(brand_id=str(many_players.id), external_ref="new-player")
    params = sql.recordset_params([row])
    assert params[1] == 1

    plan = _plan(get_or_create, params)

    assert "Seq Scan on attribution_player" not in plan, plan
    assert "player_unique_ref_per_brand" in plan, plan
    # The count is what decides: told 100 rows, the planner scans the table again.
    assert "Seq Scan on attribution_player" in _plan(get_or_create, [params[0], 100])
    assert json.loads(params[0])[0]["external_ref"] == "new-player"
