#!/usr/bin/env bash
# bench/profile.sh: where the CPU of a saga goes, one command:
# `sudo bash bench/profile.sh`.
#
# Starts the benchmark's cluster (bench/cluster.sh), runs the 2-step
# transfer saga with 16 clients, samples every CPU with `perf record`
# meanwhile, and prints the hottest functions of each process role: the
# clients' backends on the coordinator, the pg_saga worker, and the worker's
# sessions on the participants.  Needs perf (Debian: linux-perf) and root
# or kernel.perf_event_paranoid <= 0; prints the report, writes nothing.
#
# Knobs: PROFILE_SECONDS (6), PROFILE_CLIENTS (16), PROFILE_TOP (15).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/lib.sh

SECONDS_SAMPLED="${PROFILE_SECONDS:-6}"
CLIENTS="${PROFILE_CLIENTS:-16}"
TOP="${PROFILE_TOP:-15}"
command -v perf >/dev/null || saga_die "perf is not installed (Debian: apt-get install linux-perf)"

. bench/cluster.sh
bench_cluster_up

saga_log "warming up"
saga_as_pg "$work/driver" saga "$CLIENTS" 3 0 "$COORD" "$CONN_A" "$CONN_B" >/dev/null

saga_as_pg "$work/driver" saga "$CLIENTS" $((SECONDS_SAMPLED + 4)) 0 "$COORD" "$CONN_A" "$CONN_B" >"$work/driver.out" &
driver=$!
sleep 2
# Which backend plays which role, while the load runs.
pids_of() {
	sql bench "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE $1"
}
client_pids="$(pids_of "datname = 'bench' AND backend_type = 'client backend' AND pid <> pg_backend_pid()")"
worker_pids="$(pids_of "backend_type = 'pg_saga worker'")"
participant_pids="$(pids_of "application_name = 'pg_saga'")"
n0="$(sql bench "SELECT count(*) FROM saga.gtx WHERE finished_at IS NOT NULL")"
saga_log "sampling for $SECONDS_SAMPLED s"
perf record -q -F 997 -a -o "$work/perf.data" -- sleep "$SECONDS_SAMPLED" 2>/dev/null
n1="$(sql bench "SELECT count(*) FROM saga.gtx WHERE finished_at IS NOT NULL")"
wait "$driver"

report() {
	local title="$1" pids="$2"
	local share
	share="$(perf report -q -i "$work/perf.data" --no-children --pid "$pids" --sort pid 2>/dev/null |
		awk '{ s += $1 } END { printf "%.1f", s }')"
	echo
	echo "## $title: ${share}% of all samples (pids $pids)"
	perf report -q -i "$work/perf.data" --no-children --pid "$pids" --percentage relative \
		--sort dso,sym 2>/dev/null | grep -v '^$' | head -n "$TOP" || true
}
echo "# pg_saga profile: $CLIENTS clients, $((n1 - n0)) sagas finished in $SECONDS_SAMPLED s sampled"
echo "# per role: its share of all samples, then its hottest functions as % of the role"
report "client backends" "$client_pids"
report "pg_saga worker" "$worker_pids"
report "participant sessions" "$participant_pids"
