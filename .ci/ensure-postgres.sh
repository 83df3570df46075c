#!/usr/bin/env bash
# Make sure PostgreSQL answers for the tests: start the local cluster when it is down.
set -euo pipefail
url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/revvvs}"
host=$(python3 -c "import sys, urllib.parse as u; print(u.urlsplit(sys.argv[1]).hostname or '127.0.0.1')" "$url")
port=$(python3 -c "import sys, urllib.parse as u; print(u.urlsplit(sys.argv[1]).port or 5432)" "$url")
if pg_isready -q -h "$host" -p "$port" 2>/dev/null; then exit 0; fi
if [ "$host" = "127.0.0.1" ] || [ "$host" = "localhost" ]; then
  if ! command -v pg_ctlcluster >/dev/null; then
    echo "PostgreSQL is not installed; installing it (Debian)" >&2
    apt-get install -y -q postgresql >/dev/null
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 30); do pg_isready -q -h "$host" -p "$port" && exit 0; sleep 1; done
fi
echo "PostgreSQL does not answer at $host:$port (DATABASE_URL=$url)" >&2
exit 1
