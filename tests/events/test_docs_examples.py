"""The examples of docs/events.md are run against the API, in document order.

A request is marked `<!-- example: request NAME [key=none] [event=OTHER|none] -->` and its
answer `<!-- example: response NAME STATUS -->`, each followed by a fenced block. JSON and
text blocks are POSTed to /api/v1/events as they are; an http block is a GET whose
`{event_id}` is the event_id that example OTHER answered. In expected answers "..." matches
any value and `your-brand-uuid` is the tenant's brand."""

import json
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"
MARKER = re.compile(
    r"<!-- example: (?P<kind>request|response) (?P<name>[\w-]+)(?P<options>[^>]*?) -->\n"
    r"```(?P<lang>\w*)\n(?P<block>.*?)```",
    re.S,
)


def examples():
    requests, responses, order = {}, {}, []
    for match in MARKER.finditer(DOC.read_text()):
        name = match["name"]
        if match["kind"] == "request":
            options = dict(o.split("=") for o in match["options"].split())
            assert name not in requests, f"request {name} twice"
            requests[name] = (match["lang"], match["block"], options)
            order.append(name)
        else:
            responses[name] = (int(match["options"].split()[0]), match["block"])
    return order, requests, responses


def matches(expected, actual, path="$"):
    if expected == "...":
        return
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: {actual!r} is not an object"
        assert set(actual) == set(expected), f"{path}: keys {sorted(actual)} != {sorted(expected)}"
        for key, value in expected.items():
            matches(value, actual[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{path}: {actual!r}"
        for index, (e, a) in enumerate(zip(expected, actual, strict=True)):
            matches(e, a, f"{path}[{index}]")
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def test_the_document_has_examples_of_every_kind():
    order, requests, responses = examples()
    assert set(order) == set(responses), "every request needs its response and vice versa"
    assert len(order) >= 12
    statuses = {status for status, _ in responses.values()}
    assert {200, 201, 400, 401, 404} <= statuses


def test_every_example_answers_as_documented(tenant):
    order, requests, responses = examples()
    brand = str(tenant.brand.id)
    answered = {}
    for name in order:
        lang, block, options = requests[name]
        block = block.replace("your-brand-uuid", brand)
        headers = {} if options.get("key") == "none" else {"HTTP_X_API_KEY": tenant.key}
        if lang == "http":
            method, path = block.splitlines()[0].split()[:2]
            assert method == "GET"
            if options.get("event", "none") != "none":
                path = path.replace("{event_id}", answered[options["event"]]["event_id"])
            response = tenant.client.get(path, **headers)
        else:
            response = tenant.client.post(
                "/api/v1/events", data=block, content_type="application/json", **headers
            )
        status, expected = responses[name]
        assert response.status_code == status, f"{name}: {response.content!r}"
        body = response.json()
        try:
            matches(json.loads(expected.replace("your-brand-uuid", brand)), body)
        except AssertionError as exc:
            pytest.fail(f"example {name}: {exc}\nanswered: {json.dumps(body, indent=2)}")
        answered[name] = body
