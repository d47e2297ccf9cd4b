#!/usr/bin/env bash
# bench/profile.sh: where the CPU of a saga goes, one command:
# `bash bench/profile.sh` (as root, or a user with sudo: it re-runs itself
# through sudo).
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
saga_run_as_root bench/profile.sh "$@"

SECONDS_SAMPLED="${PROFILE_SECONDS:-6}"
CLIENTS="${PROFILE_CLIENTS:-16}"
TOP="${PROFILE_TOP:-15}"
. bench/cluster.sh
bench_can_profile || saga_die "perf cannot sample here: install it (Debian: linux-perf) and run as root"
bench_cluster_up

saga_log "warming up"
saga_as_pg "$work/driver" saga "$CLIENTS" 3 0 "$COORD" "$CONN_A" "$CONN_B" >/dev/null

bench_profile "$CLIENTS" "$SECONDS_SAMPLED" "$TOP"
