#!/usr/bin/env bash
# bench/results.sh: what step results cost, on the cluster of bench/cluster.sh.
#
#   bash bench/results.sh        # its own cluster; prints a markdown section
#
# bench/run.sh sources it (after bench/shapes.sh, whose shapes_drain it
# uses) and puts bench_results's section into BENCHMARKS.md.
# Bursts of RESULTS_N (5,000) two-step sagas started in one transaction and
# drained, three kinds one after the other, twice (A B C A B C), same
# cluster and run:
#   none   both steps an UPDATE (no rows returned: the result is []);
#   small  the first step's UPDATE ... RETURNING id (a ~10-byte result),
#          the second reads it from saga.results;
#   1kB    the first step returns a 1kB value, the second reads it.
# The drain rate (sagas per second from the commit to the last one
# finished) of each kind, and its ratio to "none".  RESULTS_KINDS ("none
# small 1kB") and RESULTS_ROUNDS (2) change what runs: RESULTS_KINDS=none
# also runs on builds before step results, for an A/B of the library.
# Nothing here is a test.
RESULTS_N="${RESULTS_N:-5000}"
RESULTS_KINDS="${RESULTS_KINDS:-none small 1kB}"
RESULTS_ROUNDS="${RESULTS_ROUNDS:-2}"

# results_burst KIND ROUND -> "drain_rate sagas_not_succeeded"
results_burst() {
	local kind="$1" prefix="res-$1-$2" first second
	local id="(g % ${BENCH_ACCOUNTS:-10000} + 1)"
	case "$kind" in
		none)
			first="'UPDATE account SET balance = balance - 1 WHERE id = ' || $id"
			second="'UPDATE account SET balance = balance + 1 WHERE id = ' || $id" ;;
		small)
			first="'UPDATE account SET balance = balance - 1 WHERE id = ' || $id || ' RETURNING id'"
			second="'UPDATE account SET balance = balance + 1 WHERE id = (current_setting(''saga.results'')::jsonb #>> ''{step1,0,id}'')::int'" ;;
		1kB)
			first="'UPDATE account SET balance = balance - 1 WHERE id = ' || $id || ' RETURNING id, repeat(''x'', 1000) AS pad'"
			second="'UPDATE account SET balance = balance + 1 WHERE id = (current_setting(''saga.results'')::jsonb #>> ''{step1,0,id}'')::int'" ;;
	esac
	sql bench "SELECT count(saga.start(ARRAY[
		saga.step('bank_a', $first, expect_rows => 1),
		saga.step('bank_b', $second, expect_rows => 1)],
		gid => '$prefix-' || g)) FROM generate_series(1, $RESULTS_N) g" >/dev/null
	shapes_drain "$prefix-%"
	sql bench "SELECT round(($RESULTS_N / extract(epoch FROM max(finished_at) - max(submitted_at)))::numeric)
				 || ' ' || count(*) FILTER (WHERE status <> 'succeeded')
				 FROM saga.gtx WHERE gid LIKE '$prefix-%'"
}

# Prints the markdown section.
bench_results() {
	local round kind r bad b none
	declare -A rate
	for round in $(seq "$RESULTS_ROUNDS"); do
		for kind in $RESULTS_KINDS; do
			saga_log "results: burst of $RESULTS_N, kind $kind, round $round"
			read -r r bad <<<"$(results_burst "$kind" "$round")"
			[ "$bad" = 0 ] || saga_die "results: $bad sagas of kind $kind did not succeed"
			rate[$kind]="${rate[$kind]:-} $r"
		done
	done
	best() { tr ' ' '\n' <<<"$1" | grep . | sort -n | tail -1; }
	none="$(best "${rate[none]:-}")"
	echo "| kind, bursts of $RESULTS_N two-step sagas | drain rate, sagas/s (best of $RESULTS_ROUNDS) | over none |"
	echo "|---|---|---|"
	for kind in $RESULTS_KINDS; do
		b="$(best "${rate[$kind]}")"
		echo "| $kind | $b (runs:${rate[$kind]}) | $(awk -v a="$b" -v n="${none:-0}" 'BEGIN { if (n > 0) printf "%.2f", a / n; else print "-" }') |"
	done
}

# Run on its own: a cluster of its own, and the section on stdout.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	cd "$(dirname "${BASH_SOURCE[0]}")/.."
	. scripts/lib.sh
	saga_run_as_root bench/results.sh "$@"
	. bench/cluster.sh
	. bench/shapes.sh
	bench_cluster_up
	bench_results
fi
