from tests.conftest import event


def test_single_registration_is_accepted_then_duplicate(tenant):
    response = tenant.post(event(tenant.brand))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "accepted"
    again = tenant.post(event(tenant.brand))
    assert again.status_code == 200
    assert again.json()["event_id"] == body["event_id"]
    assert again.json()["status"] == "duplicate"
