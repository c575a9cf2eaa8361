#!/usr/bin/env bash
# Runs a command with TEST_DATABASE_URL pointing at the local Postgres when
# it is unset and 127.0.0.1:5432 answers, so `make test` skips nothing on a
# machine with Postgres. Otherwise the tests use testcontainers (Docker).
set -euo pipefail
if [[ -z "${TEST_DATABASE_URL:-}" ]]; then
	if (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
		export TEST_DATABASE_URL='postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable'
	else
		echo "note: no Postgres at 127.0.0.1:5432 and TEST_DATABASE_URL unset; tests use testcontainers (Docker)" >&2
	fi
fi
exec "$@"
