#!/usr/bin/env bash
# Compares the worker of commit BASE with this tree's: PAIRS alternating
# runs of `make bench-fleet` (TENANTS, USERS, ROUNDS as there), each pair
# with this tree's emulator, harness and schema, and prints per pair the
# ratios this tree / BASE of tenants/s, and of machine CPU and the
# product's own CPU (worker and Postgres, no emulator) per tenant. Ratios
# from one pair are what the project reports: the machine's speed moves
# both sides of a pair together (README, Benchmarks). BASE's worker must
# run on this tree's schema (the harness migrates with this tree). The
# workers connect to Postgres straight, without the relay that counts
# round trips (ROUNDTRIPS=false): its wakeups and CPU are the benchmark's,
# and a CPU-bound worker would pay them in tenants/s.
#
#   make bench-fleet-ab BASE=bd426af PAIRS=3
set -euo pipefail
base=${BASE:?"BASE=<commit> names the worker to compare with"}
pairs=${PAIRS:-3}
go=${GO:-go}
work=$(mktemp -d)
cleanup() {
	git worktree remove --force "$work/base" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
git worktree add --detach "$work/base" "$base" >/dev/null 2>&1
(cd "$work/base" && "$go" build -o "$work/worker-base" ./cmd/worker)
"$go" build -o "$work/worker-tree" ./cmd/worker

# run prints the benchmark line of one bench-fleet run of worker $1.
run() {
	make -s bench-fleet WORKER="$1" ROUNDTRIPS=false | grep '^BenchmarkFleetRound' || {
		echo "bench-fleet with $1 printed no result" >&2
		return 1
	}
}

# metric prints the value of metric $2 in benchmark line $1 (each value
# comes before its name).
metric() {
	tr -s ' \t' '\n' <<<"$1" | awk -v m="$2" '$0 == m { print prev; found = 1 } { prev = $0 } END { exit !found }'
}

metrics=(first-tenants/s steady-tenants/s first-machine-cpu-µs/tenant steady-machine-cpu-µs/tenant
	first-product-cpu-µs/tenant steady-product-cpu-µs/tenant)
printf '%-6s %-30s %12s %12s %8s\n' pair metric "$base" tree ratio
for i in $(seq "$pairs"); do
	b=$(run "$work/worker-base")
	t=$(run "$work/worker-tree")
	for m in "${metrics[@]}"; do
		x=$(metric "$b" "$m")
		y=$(metric "$t" "$m")
		printf '%-6s %-30s %12s %12s %8s\n' "$i" "$m" "$x" "$y" "$(awk -v x="$x" -v y="$y" 'BEGIN { printf "%.2f", y / x }')"
	done
done
