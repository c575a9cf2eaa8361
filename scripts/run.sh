#!/usr/bin/env bash
# `make run`: the whole product on this machine — the Entra ID + Graph
# emulator, the server and the worker, wired together on the local Postgres.
# Ctrl-C stops them all.
set -euo pipefail
BIN="${BIN:-bin}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/tenantsync?sslmode=disable}"
state=".run"
mkdir -p "$state"

./scripts/ensure-db.sh

pids=()
stopping=""
cleanup() {
	stopping=1
	trap - INT TERM EXIT
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	echo "stopped"
}
trap cleanup INT TERM EXIT

if [[ -z "${ENTRA_CLIENT_ID:-}" ]]; then
	# No real Entra configuration: run the emulator and take its wiring.
	rm -f "$state/entraemu.env"
	"$BIN/entraemu" -ca-out "$state/entraemu-ca.pem" -env-out "$state/entraemu.env" -control >"$state/entraemu.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 1 100); do [[ -s "$state/entraemu.env" ]] && break; sleep 0.1; done
	if [[ ! -s "$state/entraemu.env" ]]; then
		echo "the emulator did not start; see $state/entraemu.log" >&2
		cat "$state/entraemu.log" >&2
		exit 1
	fi
	set -a; source "$state/entraemu.env"; set +a
fi
export LOG_FORMAT="${LOG_FORMAT:-text}"

"$BIN/server" migrate
"$BIN/server" >"$state/server.log" 2>&1 &
pids+=($!)
"$BIN/worker" >"$state/worker.log" 2>&1 &
pids+=($!)

port="${HTTP_ADDR:-:8080}"; port="${port##*:}"
for _ in $(seq 1 100); do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
	sleep 0.1
done
echo
echo "tenantsync is running."
echo "  open:        ${PUBLIC_BASE_URL:-http://localhost:8080}"
echo "  console:     ${PUBLIC_BASE_URL:-http://localhost:8080}/console"
if [[ -s "$state/entraemu.log" ]]; then
	echo "  emulator:    $ENTRA_AUTHORITY_HOST (CA: $state/entraemu-ca.pem; your browser will warn about it, see README)"
	sed -n '2,40p' "$state/entraemu.log" | sed 's/^/  /'
fi
echo "  logs:        $state/*.log"
echo "Ctrl-C stops everything."
wait -n "${pids[@]}" || true
[[ -n "$stopping" ]] || echo "a process exited; see $state/*.log" >&2
