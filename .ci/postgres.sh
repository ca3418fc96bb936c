#!/usr/bin/env bash
# Installs Debian's PostgreSQL, starts a throw-away cluster on a free 127.0.0.1 port and prints a
# URL whose user may create databases (the CRM and store tests make one per test).
set -euo pipefail
if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
data=$(mktemp -d /tmp/crmsync-ci-pg.XXXXXX)
chown postgres "$data"
runuser -u postgres -- "$bin/initdb" -D "$data" -A trust -U postgres >&2
runuser -u postgres -- "$bin/pg_ctl" -D "$data" -l "$data/log" -w \
  -o "-p $port -k $data -c listen_addresses=127.0.0.1 -c max_connections=200" start >&2
echo "postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
