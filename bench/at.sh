#!/usr/bin/env bash
# bench/at.sh: at sagas per second next to saga-mode sagas, same cluster,
# same run.
#
#   bash bench/at.sh                   # its own cluster; prints a markdown section
#   AT_CLIENTS=16 AT_SECONDS=30 bash bench/at.sh
#
# On the cluster of bench/cluster.sh (account tables enabled for at mode on
# both participants), pgbench runs the same two-step transfer, one
# transaction per saga, each client waiting for its saga (saga.start, then
# saga.wait): first in saga mode (with compensations), then in at mode (no
# compensation: the participant records the row images), then saga mode
# again, so a drift of the machine shows.  Accounts are drawn at random from
# BENCH_ACCOUNTS (10,000): at sagas seldom meet on a reserved row.  Per-step
# cost: the mean time from a step's start to its end, from saga.gtx_step.
# Nothing here is a test.

AT_CLIENTS="${AT_CLIENTS:-8}"
AT_SECONDS="${AT_SECONDS:-10}"

# at_pgbench MODE -> sagas/s (pgbench's tps without the connection time)
at_pgbench() {
	local mode="$1" script="$work/at-bench-$1.sql" comp_a="" comp_b=""
	if [ "$mode" = saga ]; then
		comp_a=", 'UPDATE account SET balance = balance + 1 WHERE id = ' || :id"
		comp_b=", 'UPDATE account SET balance = balance - 1 WHERE id = ' || :id"
	fi
	saga_as_pg tee "$script" >/dev/null <<-SQL
	\set id random(1, ${BENCH_ACCOUNTS:-10000})
	SELECT saga.start(ARRAY[
		saga.step('bank_a', 'UPDATE account SET balance = balance - 1 WHERE id = ' || :id $comp_a, expect_rows => 1),
		saga.step('bank_b', 'UPDATE account SET balance = balance + 1 WHERE id = ' || :id $comp_b, expect_rows => 1)],
		mode => '$mode') AS g \gset
	SELECT saga.wait(:g);
	SQL
	saga_as_pg "$(saga_pg_bindir)/pgbench" -n -M extended -h "$dir" -p "$port" \
		-c "$AT_CLIENTS" -j "$AT_CLIENTS" -T "$AT_SECONDS" -f "$script" bench 2>/dev/null |
		awk '/^tps = / { printf "%.0f", $3 }'
}

# mean ms from a step's start to its end, over the sagas of MODE
# (only the sagas of this section: bench/run.sh ran others on the cluster)
at_step_ms() {
	sql bench "SELECT round((extract(epoch FROM avg(s.finished_at - s.started_at)) * 1000)::numeric, 2)
				 FROM saga.gtx g JOIN saga.gtx_step s ON s.gtx_id = g.id
				WHERE g.mode = '$1' AND g.status = 'succeeded' AND g.created_at >= '$at_since'"
}

# Prints the markdown section.
bench_at() {
	local saga1 at saga2 saga_ms at_ms left
	at_since="$(sql bench "SELECT now()")"
	sql bench "SELECT saga.setup_participant('bank_a', at_tables => '{account}');
			   SELECT saga.setup_participant('bank_b', at_tables => '{account}');" >/dev/null
	saga_log "at: saga mode, $AT_CLIENTS clients, $AT_SECONDS s"
	saga1="$(at_pgbench saga)"
	saga_log "at: at mode"
	at="$(at_pgbench at)"
	saga_log "at: saga mode again"
	saga2="$(at_pgbench saga)"
	saga_ms="$(at_step_ms saga)"
	at_ms="$(at_step_ms at)"
	left="$(sql bank_a "SELECT (SELECT count(*) FROM saga_participant.at_undo) + (SELECT count(*) FROM saga_participant.at_lock)")"
	ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
	cat <<MD
| mode, $AT_CLIENTS clients, closed loop (saga.start + saga.wait) | figure |
|---|---|
| saga | $saga1 sagas/s, then $saga2 sagas/s (second run) |
| at | $at sagas/s: **$(ratio "$at" "$(( (saga1 + saga2) / 2 ))")** of saga mode |
| mean time per step, start to end | saga $saga_ms ms, at $at_ms ms |
| undo and lock rows left on bank_a | $left |
MD
}

# Run on its own: a cluster of its own, and the section on stdout.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	cd "$(dirname "${BASH_SOURCE[0]}")/.."
	. scripts/lib.sh
	saga_run_as_root bench/at.sh "$@"
	. bench/cluster.sh
	bench_cluster_up
	bench_at
fi
