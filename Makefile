# tenantsync — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/tenantsync?sslmode=disable
GO ?= go
BIN := bin

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build server, worker and entraemu into bin/
	@echo "building server, worker and entraemu into $(BIN)/ (a first build takes a minute or two; packages are listed as they compile)"
	CGO_ENABLED=0 $(GO) build -v -trimpath -o $(BIN)/ ./cmd/...

.PHONY: run
run: build ## start the whole product (emulator, server, worker) on the local Postgres, or a private one it starts
	@$(if $(filter file,$(origin DATABASE_URL)),,DATABASE_URL='$(DATABASE_URL)') BIN='$(BIN)' ./scripts/run.sh

.PHONY: test
test: ## run every test with the race detector (Postgres at 127.0.0.1:5432 unless TEST_DATABASE_URL is set)
	@./scripts/with-test-db.sh $(GO) test -count=1 -race -timeout 45m ./...

.PHONY: test-fleet
test-fleet: ## run the fleet and chaos tests only (worker and emulator as subprocesses; about 5 minutes)
	@./scripts/with-test-db.sh $(GO) test -count=1 -race -timeout 30m -v ./internal/fleettest/

.PHONY: test-quick
test-quick: ## run every test without the race detector (faster while working)
	@./scripts/with-test-db.sh $(GO) test -count=1 -timeout 30m ./...

.PHONY: bench
bench: ## run the benchmarks (figures are reported as ratios to baselines measured in the same run)
	@./scripts/with-test-db.sh $(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./...

TENANTS ?= 3000
ROUNDTRIPS ?= true
USERS ?= 50
ROUNDS ?= 1
.PHONY: bench-fleet
bench-fleet: ## whole sync rounds of TENANTS (3000) x USERS (50) with the real worker: first sync, then ROUNDS steady rounds; WORKER=/abs/path measures another worker binary; PPROF=/abs/dir saves CPU profiles of the worker; ROUNDTRIPS=false connects the worker to Postgres without the relay that counts its round trips
	@./scripts/with-test-db.sh $(GO) test -run '^$$' -bench BenchmarkFleetRound -benchtime $(ROUNDS)x -timeout 3h ./internal/fleettest \
		-args -fleet.tenants=$(TENANTS) -fleet.users=$(USERS) $(if $(WORKER),-fleet.worker=$(WORKER)) $(if $(PPROF),-fleet.pprof=$(PPROF)) -fleet.roundtrips=$(ROUNDTRIPS)

PAIRS ?= 3
.PHONY: bench-fleet-ab
bench-fleet-ab: ## the worker of commit BASE against this tree's: PAIRS alternating bench-fleet runs (TENANTS, USERS, ROUNDS as there), each pair's ratios printed
	@BASE='$(BASE)' PAIRS='$(PAIRS)' TENANTS='$(TENANTS)' USERS='$(USERS)' ROUNDS='$(ROUNDS)' GO='$(GO)' ./scripts/bench-fleet-ab.sh

# The fuzz targets, as package:Func; their seeds run in `make test` as ordinary tests.
FUZZ_TARGETS := \
	./internal/onboarding:FuzzFinishConnect \
	./internal/entra:FuzzSignInClaims \
	./internal/graph:FuzzDeltaPage \
	./internal/cursor:FuzzCursor \
	./internal/webapp:FuzzConsoleCursor \
	./internal/webapp:FuzzSessionCodec \
	./internal/entraemu:FuzzTokenRequest
FUZZTIME ?= 10m

.PHONY: fuzz
fuzz: ## run each fuzz target in turn for FUZZTIME (default 10m) with one worker; FUZZLOGS=dir keeps a log per target
	@set -o pipefail; failed=; for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "== $$fn in $$pkg for $(FUZZTIME)"; \
		if [ -n "$(FUZZLOGS)" ]; then mkdir -p "$(FUZZLOGS)"; log="$(FUZZLOGS)/$$fn.log"; else log=/dev/null; fi; \
		$(GO) test "$$pkg" -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -parallel=1 2>&1 | tee "$$log" || failed="$$failed $$fn"; \
	done; if [ -n "$$failed" ]; then echo "fuzz failures:$$failed"; exit 1; fi

.PHONY: lint
lint: ## gofmt and go vet
	@out=$$(gofmt -l . ); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags composetest ./internal/deploy/

.PHONY: migrate
migrate: ## apply the database migrations to DATABASE_URL
	@DATABASE_URL='$(DATABASE_URL)' ./scripts/ensure-db.sh
	DATABASE_URL='$(DATABASE_URL)' $(GO) run ./cmd/server migrate

.PHONY: river-migrations
river-migrations: ## regenerate River's goose files after upgrading River
	$(GO) run ./internal/postgres/rivergen -dir migrations

.PHONY: up
up: ## start the stack with docker compose (needs a Docker engine)
	@if docker compose version >/dev/null 2>&1; then docker compose up --build; else docker-compose up --build; fi

.PHONY: compose-test
compose-test: ## build and start the compose stack on local base images, drive the demo, kill a worker, restart Postgres, down -v
	@./scripts/compose-test.sh
