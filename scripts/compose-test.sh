#!/usr/bin/env bash
# `make compose-test`: builds the stack of docker-compose.yml on local base
# images (no registry needed), starts it, drives the README demo through the
# published ports with headless Chromium, kills a worker and restarts
# Postgres, then `down -v` (internal/deploy/stack_test.go says what is
# checked). Works with `docker compose` or the standalone `docker-compose`.
#
#   COMPOSE_FILES=docker-compose.yml  use the official images (needs a registry)
#   COMPOSE_TEST_KEEP=1               leave the stack up afterwards
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "compose-test: FATAL: $*" >&2; exit 1; }

command -v docker >/dev/null || die "docker is not installed"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer"
if [[ -z "${COMPOSE:-}" ]]; then
	if docker compose version >/dev/null 2>&1; then COMPOSE="docker compose"
	elif docker-compose version >/dev/null 2>&1; then COMPOSE="docker-compose"
	else die "neither \`docker compose\` nor \`docker-compose\` is installed"; fi
fi
export COMPOSE
export COMPOSE_FILES="${COMPOSE_FILES:-docker-compose.yml,docker-compose.local.yml}"
echo "compose-test: using '$COMPOSE' with $COMPOSE_FILES"
# The stack publishes fixed ports (the emulator's redirect URIs name them); a
# `make run` or another stack on them would fail the test in a confusing way.
for port in 8080 9443 9444; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && ! docker ps -q --filter label=com.docker.compose.project=tenantsync | grep -q .; then
		die "port $port is already taken on this machine (make run?); the compose stack publishes 8080, 9443 and 9444"
	fi
done

if [[ "$COMPOSE_FILES" == *docker-compose.local.yml* ]]; then
	./scripts/local-images.sh
	# The legacy builder (no BuildKit here) leaves each run's build stage as
	# an untagged image of about 1 GB. Tagging it keeps its layers (the
	# module download above all) as the next run's cache; the untagged ones
	# this replaces, and superseded service images, are removed afterwards.
	docker build -q --target build -t tenantsync-local/build-stage:latest \
		--build-arg GO_IMAGE=tenantsync-local/golang:1.26-bookworm --build-arg RUNTIME_IMAGE=tenantsync-local/static:nonroot . >/dev/null 2> >(grep -v -e DEPRECATED -e buildx -e 'legacy builder' >&2)
	trap 'docker images -q -f dangling=true -f since=tenantsync-local/golang:1.26-bookworm | xargs -r docker rmi >/dev/null 2>&1 || true' EXIT
fi
go test -tags composetest -count=1 -timeout 30m -v -run '^TestComposeStack$' ./internal/deploy/
