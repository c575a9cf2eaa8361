#!/usr/bin/env bash
# Creates the database named in DATABASE_URL when it is missing.
set -euo pipefail
url="${DATABASE_URL:?DATABASE_URL is required}"
db="${url##*/}"; db="${db%%\?*}"
admin="${url%/*}/postgres"
if [[ "$url" == *\?* ]]; then admin="$admin?${url#*\?}"; fi
if ! command -v psql >/dev/null; then
	echo "psql not found; create the database '$db' yourself or install postgresql-client" >&2
	exit 0
fi
if ! psql "$admin" -Atqc 'SELECT 1' >/dev/null 2>&1; then
	echo "Postgres does not answer at ${admin%%\?*}." >&2
	echo "Start it (e.g. 'pg_ctlcluster 15 main start' or 'docker run -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:17')," >&2
	echo "or set DATABASE_URL to a reachable database." >&2
	exit 1
fi
if [[ "$(psql "$admin" -Atqc "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]]; then
	psql "$admin" -qc "CREATE DATABASE \"$db\"" && echo "created database $db"
fi
