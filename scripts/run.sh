#!/usr/bin/env bash
# `make run`: the whole product on this machine — the Entra ID + Graph
# emulator, the server and the worker, wired together on a Postgres.
# Ctrl-C stops them all (and the private Postgres, when this script started it).
#
# Settings (environment):
#   DATABASE_URL          use this database; nothing else is started for Postgres
#   RUN_PG_ADDR           without DATABASE_URL: the Postgres address to use when
#                         something answers there, else the address of a private
#                         cluster started under $RUN_DIR/pg (default 127.0.0.1:5432)
#   PG_BIN                directory of initdb and pg_ctl (default: the newest
#                         /usr/lib/postgresql/*/bin, else the ones on PATH)
#   RUN_PG_USER           when run as root, the user that owns and runs the private
#                         cluster (Postgres refuses to run as root; default postgres)
#   RUN_DIR               state, logs and the private cluster (default .run)
#   ENTRAEMU_LOGIN_ADDR   the emulator's login listener (default 127.0.0.1:9443)
#   ENTRAEMU_GRAPH_ADDR   the emulator's Graph listener (default 127.0.0.1:9444)
#   OPERATOR_API_TOKEN    the JSON API's token (default: generated once into
#                         $RUN_DIR/operator-api-token and kept across runs)
#   CHANGE_NOTIFICATIONS  on by default against the emulator (near-real-time sync)
#   HTTP_ADDR, WORKER_ADMIN_ADDR, PUBLIC_BASE_URL and the rest as documented in
#   the README.
set -euo pipefail
BIN="${BIN:-bin}"
state="${RUN_DIR:-.run}"
mkdir -p "$state"
state="$(cd "$state" && pwd)"

pids=()
names=()
pg_data="" # set when this script started a private cluster, which it stops
pg_ctl_as=()
stopping=""

stop_all() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	pids=()
	if [[ -n "$pg_data" ]]; then
		local postmaster
		postmaster=$(head -n 1 "$pg_data/postmaster.pid" 2>/dev/null || true)
		"${pg_ctl_as[@]}" -D "$pg_data" -m fast -w stop >/dev/null 2>&1 || true
		# pg_ctl's wait ends when the postmaster removes its pid file, a
		# moment before the process is gone: wait for that too (at most 10 s),
		# so that nothing runs once this says "stopped".
		if [[ "$postmaster" =~ ^[0-9]+$ ]]; then
			for _ in $(seq 200); do
				kill -0 "$postmaster" 2>/dev/null || break
				sleep 0.05
			done
		fi
		pg_data=""
	fi
}
# On Ctrl-C (or TERM) only this script is signalled: the processes it starts
# run in their own sessions (setsid), so they stop in order, here, and none
# of them is seen exiting on its own first.
on_signal() {
	stopping=1
	trap - INT TERM EXIT
	echo
	echo "stopping..."
	stop_all
	echo "stopped"
	exit 0
}
on_exit() {
	local rc=$?
	trap - INT TERM EXIT
	stop_all
	exit "$rc"
}
trap on_signal INT TERM
trap on_exit EXIT

# start NAME LOG CMD...: a process in its own session, its output in LOG.
start() {
	local name="$1" log="$2"
	shift 2
	setsid "$@" >"$log" 2>&1 </dev/null &
	pids+=($!)
	names+=("$name")
}

answers() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# private_postgres HOST PORT: initialise (once) and start the cluster under
# $state/pg, listening on HOST:PORT only (no Unix socket, so a long path is
# no problem).
private_postgres() {
	local host="$1" port="$2" bindir="${PG_BIN:-}"
	if [[ -z "$bindir" ]]; then
		bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
		if [[ -z "$bindir" ]] && command -v pg_ctl >/dev/null; then bindir="$(dirname "$(command -v pg_ctl)")"; fi
	fi
	if [[ -z "$bindir" || ! -x "$bindir/initdb" || ! -x "$bindir/pg_ctl" ]]; then
		echo "Postgres does not answer at $host:$port and no PostgreSQL server binaries (initdb, pg_ctl) were found." >&2
		echo "Install them (e.g. 'apt-get install postgresql'), set PG_BIN to their directory, start a Postgres at $host:$port," >&2
		echo "or set DATABASE_URL to a reachable database." >&2
		exit 1
	fi
	local root="$state/pg" as=()
	mkdir -p "$root"
	if [[ "$(id -u)" == 0 ]]; then
		local owner="${RUN_PG_USER:-postgres}"
		if ! id "$owner" >/dev/null 2>&1; then
			echo "running as root: Postgres refuses to run as root, and user '$owner' does not exist; set RUN_PG_USER to a user that may own $root" >&2
			exit 1
		fi
		chown "$owner" "$root"
		as=(runuser -u "$owner" --)
		if ! "${as[@]}" test -w "$root"; then
			echo "user '$owner' cannot write $root (a parent directory is closed to it); set RUN_DIR elsewhere or DATABASE_URL" >&2
			exit 1
		fi
	fi
	pg_ctl_as=("${as[@]}" "$bindir/pg_ctl")
	local data="$root/data"
	# A cluster left running by a run that was killed: stop it, then start
	# it on the address asked for now.
	if [[ -s "$data/PG_VERSION" ]] && "${pg_ctl_as[@]}" -D "$data" status >/dev/null 2>&1; then
		"${pg_ctl_as[@]}" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
	fi
	if [[ ! -s "$data/PG_VERSION" ]]; then
		echo "Postgres: initializing a private cluster in $data ($bindir)"
		if ! "${as[@]}" "$bindir/initdb" -D "$data" -U postgres -A trust -E UTF8 --no-instructions >"$root/initdb.log" 2>&1; then
			echo "initdb failed; see $root/initdb.log" >&2
			cat "$root/initdb.log" >&2
			exit 1
		fi
	fi
	pg_data="$data"
	if ! "${pg_ctl_as[@]}" -D "$data" -l "$root/postgres.log" -w -t 60 -o "-h $host -p $port -k ''" start >/dev/null 2>&1; then
		echo "the private Postgres did not start on $host:$port; see $root/postgres.log" >&2
		tail -n 20 "$root/postgres.log" >&2 || true
		exit 1
	fi
	export PATH="$bindir:$PATH" # psql for ensure-db.sh
	echo "Postgres: started a private cluster on $host:$port (data in $data; stopped on Ctrl-C)"
}

if [[ -z "${DATABASE_URL:-}" ]]; then
	pg_addr="${RUN_PG_ADDR:-127.0.0.1:5432}"
	pg_host="${pg_addr%:*}"
	pg_port="${pg_addr##*:}"
	if answers "$pg_host" "$pg_port"; then
		echo "Postgres: using the one answering at $pg_addr"
	else
		private_postgres "$pg_host" "$pg_port"
	fi
	export DATABASE_URL="postgres://postgres@$pg_addr/tenantsync?sslmode=disable"
else
	echo "Postgres: using DATABASE_URL"
fi

./scripts/ensure-db.sh

if [[ -z "${OPERATOR_API_TOKEN:-}" ]]; then
	# Generated once, kept across runs, so scripts and curl lines keep working.
	if [[ ! -s "$state/operator-api-token" ]]; then
		(umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$state/operator-api-token")
	fi
	OPERATOR_API_TOKEN="$(cat "$state/operator-api-token")"
	export OPERATOR_API_TOKEN
fi

emulated=""
if [[ -z "${ENTRA_CLIENT_ID:-}" ]]; then
	# No real Entra configuration: run the emulator and take its wiring.
	emulated=1
	rm -f "$state/entraemu.env"
	start entraemu "$state/entraemu.log" "$BIN/entraemu" -ca-out "$state/entraemu-ca.pem" -env-out "$state/entraemu.env" -control \
		-login-addr "${ENTRAEMU_LOGIN_ADDR:-127.0.0.1:9443}" -graph-addr "${ENTRAEMU_GRAPH_ADDR:-127.0.0.1:9444}"
	for _ in $(seq 1 100); do [[ -s "$state/entraemu.env" ]] && break; sleep 0.1; done
	if [[ ! -s "$state/entraemu.env" ]]; then
		echo "the emulator did not start; see $state/entraemu.log" >&2
		cat "$state/entraemu.log" >&2
		exit 1
	fi
	set -a; source "$state/entraemu.env"; set +a
fi
if [[ -n "$emulated" ]]; then
	# Near-real-time sync (README): the emulator, like Graph, notifies the
	# server of every change; it accepts the http PUBLIC_BASE_URL on loopback.
	export CHANGE_NOTIFICATIONS="${CHANGE_NOTIFICATIONS:-on}"
fi
export LOG_FORMAT="${LOG_FORMAT:-text}"
# The demo's webhook receiver (cmd/webhookrecv) listens on this machine.
export WEBHOOK_ALLOW_PRIVATE="${WEBHOOK_ALLOW_PRIVATE:-true}"

"$BIN/server" migrate
start server "$state/server.log" "$BIN/server"
start worker "$state/worker.log" "$BIN/worker"

addr="${HTTP_ADDR:-:8080}"
port="${addr##*:}"
host="${addr%:*}"
[[ -n "$host" && "$host" != 0.0.0.0 ]] || host=127.0.0.1
for _ in $(seq 1 100); do
	if answers "$host" "$port"; then break; fi
	sleep 0.1
done
base="${PUBLIC_BASE_URL:-http://localhost:8080}"
echo
echo "tenantsync is running."
echo "  open:        $base"
echo "  console:     $base/console"
echo "  JSON API:    curl -H 'Authorization: Bearer $OPERATOR_API_TOKEN' $base/api/v1/tenants"
if [[ -n "$emulated" ]]; then
	echo "  emulator:    $ENTRA_AUTHORITY_HOST (CA: $state/entraemu-ca.pem; your browser will warn about it, see README)"
	sed -n '2,40p' "$state/entraemu.log" | sed 's/^/  /'
fi
echo "  logs:        $state/*.log"
echo "Ctrl-C stops everything."
exited=""
wait -n -p exited "${pids[@]}" || true
# Reached only when a process ended by itself (a signal runs on_signal,
# which exits); say which one.
if [[ -z "$stopping" ]]; then
	for i in "${!pids[@]}"; do
		if [[ "${pids[$i]}" == "$exited" ]]; then
			echo "${names[$i]} exited; see $state/${names[$i]}.log" >&2
			tail -n 20 "$state/${names[$i]}.log" >&2 || true
		fi
	done
	exit 1
fi
