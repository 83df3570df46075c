"""NUL (\\u0000) and lone surrogates (\\ud800), which PostgreSQL refuses in text and jsonb,
are a 400 naming the field where they are (SPEC §3: an invalid event answers 400 with a
list of {"field", "message"}), not a retry that can never succeed."""

import pytest

from events.models import Event
from tests.events.api_input_helpers import chargeback, post_json, registration

BAD_STRINGS = {"nul": "a\u0000b", "lone_surrogate": "a\ud800b"}


def _fields(tenant, value):
    return {
        "player_external_ref": registration(tenant, player_external_ref=value),
        "click_id": registration(tenant, click_id=value),
        "promo_code": registration(tenant, promo_code=value),
        "user_agent": registration(tenant, user_agent=value),
        "metadata": registration(tenant, metadata={"note": value}),
        "deposit_idempotency_key": chargeback(tenant, deposit_idempotency_key=value),
    }


@pytest.mark.parametrize("kind", sorted(BAD_STRINGS))
@pytest.mark.parametrize(
    "field",
    [
        "player_external_ref",
        "click_id",
        "promo_code",
        "user_agent",
        "metadata",
        "deposit_idempotency_key",
    ],
)
def test_unstorable_string_is_a_400_naming_the_field(tenant, field, kind):
    body = _fields(tenant, BAD_STRINGS[kind])[field]

    response = post_json(tenant, body)

    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    expected = "metadata.note" if field == "metadata" else field  # where in the metadata
    assert [e["field"] for e in errors] == [expected], errors
    assert "retry" not in errors[0]["message"], errors
    assert not Event.objects.exists()


def test_a_key_repeated_after_an_unstorable_first_use_is_stored(tenant):
    """docs/events.md: "A key repeated inside one batch is a duplicate of its first valid
    use". The first use carries NUL and cannot be stored; the corrected repeat must be the
    event, not a copy of the first one's error."""
    bad = registration(tenant, idempotency_key="reg_1", metadata={"note": "x\u0000"})
    good = registration(tenant, idempotency_key="reg_1", metadata={"note": "x"})

    response = post_json(tenant, {"events": [bad, good]})

    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["error", "accepted"], results
    assert Event.objects.filter(idempotency_key="reg_1").count() == 1
