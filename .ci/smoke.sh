#!/usr/bin/env bash
# Smoke of the demo path: a fresh SQLite demo server answers the integration guide's
# single and batch examples, sent with curl, exactly as the guide shows.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
port=${SMOKE_PORT:-8765}
export DEBUG=on
export DATABASE_URL="sqlite:///$work/demo.sqlite3"
py=.venv/bin/python

$py manage.py migrate --noinput -v0
$py manage.py seed_demo --json > "$work/seed.json"
key=$($py -c 'import json,sys; print(json.load(open(sys.argv[1]))["api_key"])' "$work/seed.json")
brand=$($py -c 'import json,sys; print(json.load(open(sys.argv[1]))["brands"][0]["brand_id"])' "$work/seed.json")

$py manage.py runserver "127.0.0.1:$port" --noreload > "$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done

post() {  # post BODY_FILE -> prints "STATUS BODY"
  curl -s -o "$work/out.json" -w '%{http_code}' -X POST "http://127.0.0.1:$port/api/v1/events" \
    -H 'Content-Type: application/json' -H "X-API-Key: $key" --data-binary "@$1"
}

cat > "$work/single.json" <<JSON
{
"event_type": "registration",
"event_time": "2026-03-15T10:00:00Z",
"brand_id": "$brand",
"player_external_ref": "player_001",
"idempotency_key": "reg_player_001_20260315"
}
JSON
cat > "$work/batch.json" <<JSON
{
"events": [
{
"event_type": "registration",
"event_time": "2026-03-15T10:00:00Z",
"brand_id": "$brand",
"player_external_ref": "player_001",
"idempotency_key": "reg_player_001"
},
{
"event_type": "first_deposit",
"event_time": "2026-03-15T10:30:00Z",
"brand_id": "$brand",
"player_external_ref": "player_001",
"idempotency_key": "ftd_player_001",
"currency": "EUR",
"amount": 50.00
}
]
}
JSON

check() {  # check EXPECTED_STATUS GOT_STATUS PYTHON_ASSERTION
  if [ "$2" != "$1" ]; then echo "smoke: expected HTTP $1, got $2: $(cat "$work/out.json")"; exit 1; fi
  $py -c "import json,sys; r=json.load(open(sys.argv[1])); assert $3, r" "$work/out.json" \
    || { echo "smoke: unexpected body: $(cat "$work/out.json")"; exit 1; }
}

status=$(post "$work/single.json")
check 201 "$status" 'r["status"] == "accepted" and r["idempotency_key"] == "reg_player_001_20260315" and r["event_id"]'
status=$(post "$work/single.json")
check 200 "$status" 'r["status"] == "duplicate"'
status=$(post "$work/batch.json")
check 200 "$status" 'r["summary"] == {"total": 2, "accepted": 2, "duplicates": 0, "errors": 0} and [x["status"] for x in r["results"]] == ["accepted", "accepted"] and [x["idempotency_key"] for x in r["results"]] == ["reg_player_001", "ftd_player_001"]'
status=$(post "$work/batch.json")
check 200 "$status" 'r["summary"]["duplicates"] == 2'

# A tracking link of the demo, through the server's WSGI application (the tracking edge and
# the click buffer, as in production): the landing URL carries a click_id, and once the
# buffer has flushed, a registration with that click_id is attributed by it.
link=$($py -c 'import json,sys; a=[a for a in json.load(open(sys.argv[1]))["affiliates"] if a["status"]=="approved"][0]; print(a["links"][0]["code"])' "$work/seed.json")
location=$(curl -s -o /dev/null -w '%{redirect_url}' "http://127.0.0.1:$port/t/$link?sub1=smoke")
click_id=$($py -c 'import sys; from urllib.parse import parse_qs, urlsplit; print(parse_qs(urlsplit(sys.argv[1]).query)["click_id"][0])' "$location")
sleep 1
cat > "$work/click_reg.json" <<JSON
{"event_type": "registration", "event_time": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "brand_id": "$brand",
 "player_external_ref": "smoke_clicker", "idempotency_key": "smoke_click_reg", "click_id": "$click_id"}
JSON
status=$(post "$work/click_reg.json")
check 201 "$status" '"warnings" not in r'
event_id=$($py -c 'import json,sys; print(json.load(open(sys.argv[1]))["event_id"])' "$work/out.json")
curl -s -o "$work/out.json" -H "X-API-Key: $key" "http://127.0.0.1:$port/api/v1/events/$event_id"
check 200 200 'r["attribution"]["method"] == "click_id" and r["attribution"]["click_id"] == "'"$click_id"'"'
echo "smoke: demo server answered the guide's examples; a tracking link's click attributed a registration"
