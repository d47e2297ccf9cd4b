#!/usr/bin/env bash
# bench/bound.sh: bound values from a definition against SQL text steps.
#
#   bash bench/bound.sh          # its own cluster; prints a markdown section
#
# On the cluster of bench/cluster.sh, the transfer of bench/driver.c three
# ways, one after the other and BOUND_ROUNDS (3) times over (A B C A B C
# ...), at 16 clients and at 1 (BOUND_CLIENTS):
#   start   saga.start(ARRAY[saga.step(...), ...]) with the amount and the
#           account spliced into each step's SQL text (what users wrote
#           before 1.5): a different statement text for every saga, which
#           the participant parses and plans every time;
#   define  saga.start('bench_transfer', $1, gid => $2) from a definition,
#           the amount and account as bound values: one statement text,
#           prepared once per participant connection;
#   run     CALL saga.run('bench_transfer', $1, gid => $2): start, commit
#           and wait in one statement.
# Each figure is the median round: sagas per second as the clients see
# them, client p50, and CPU per finished saga by role (the clients'
# backends, the worker, the worker's sessions on the participants), from
# /proc over a window of BOUND_SECONDS (8) while the load runs.
# Nothing here is a test.
BOUND_ROUNDS="${BOUND_ROUNDS:-3}"
BOUND_CLIENTS="${BOUND_CLIENTS:-16 1}"
BOUND_SECONDS="${BOUND_SECONDS:-8}"

# bound_run MODE CLIENTS -> "per_second p50 client_ms worker_ms participant_ms"
bound_run() {
	local mode="$1" clients="$2" out n0 n1 pid role t
	declare -A before total
	out="$(mktemp)"
	saga_as_pg "$work/driver" "$mode" "$clients" $((BOUND_SECONDS + 3)) 2 "$COORD" "$CONN_A" "$CONN_B" >"$out" &
	local driver=$!
	sleep 3
	bench_roles >"$work/roles"
	while IFS='|' read -r pid role; do
		before[$pid]=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
	done <"$work/roles"
	n0="$(bench_finished)"
	sleep "$BOUND_SECONDS"
	n1="$(bench_finished)"
	while IFS='|' read -r pid role; do
		t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo "${before[$pid]}")
		total[$role]=$(( ${total[$role]:-0} + t - ${before[$pid]} ))
	done <"$work/roles"
	wait "$driver"
	# driver: mode clients completed seconds per_second p50 p99
	set -- $(cat "$out")
	rm -f "$out"
	echo -n "$5 $6 "
	for role in client worker participant; do
		awk -v t="${total[$role]:-0}" -v hz="$(getconf CLK_TCK)" -v n=$((n1 - n0)) \
			'BEGIN { printf "%.3f ", (n > 0 ? t / hz * 1000 / n : 0) }'
	done
	echo
}

# Prints the markdown section.
bench_bound() {
	local clients mode round lines rows=()
	for clients in $BOUND_CLIENTS; do
		declare -A runs=()
		for ((round = 0; round < BOUND_ROUNDS; round++)); do
			for mode in start define run; do
				saga_log "bound: $mode, $clients clients, round $((round + 1))"
				runs[$mode]+="$(bound_run "$mode" "$clients")"$'\n'
			done
		done
		for mode in start define run; do
			# the round with the median throughput
			read -r tps p50 c w p <<<"$(printf '%s' "${runs[$mode]}" | sort -n -k1,1 |
				sed -n "$(((BOUND_ROUNDS + 1) / 2))p")"
			rows+=("| $mode | $clients | $tps | $p50 | $c | $w | $p |")
		done
		unset runs
	done
	cat <<EOF
| how the transfer is started | clients | sagas/s | client p50 ms | CPU ms per saga: client | worker | participant |
|---|---|---|---|---|---|---|
$(printf '%s\n' "${rows[@]}")
EOF
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	cd "$(dirname "${BASH_SOURCE[0]}")/.."
	. scripts/lib.sh
	saga_run_as_root bench/bound.sh "$@"
	. bench/cluster.sh
	bench_cluster_up
	bench_bound
fi
