#!/usr/bin/env bash
# bench/shapes.sh: the load shapes users create, against the same baseline.
#
#   bash bench/shapes.sh               # its own cluster; prints a markdown section
#   SHAPES_BATCH_SIZE=1 bash bench/shapes.sh   # the same with batching off (A/B)
#
# bench/run.sh sources it and puts its section into BENCHMARKS.md (call
# bench_shapes without a subshell: it also sets shape_* for the verdicts).  On the
# cluster of bench/cluster.sh, one after the other:
#   - the baseline (both UPDATEs run bare) at 16 clients and at 1 client;
#   - closed loop (each client waits for its saga) at 16 clients and at 1,
#     submitted step by step (begin, add_step, submit) and with saga.start;
#   - open loop: 16 clients submit with saga.start without waiting for
#     SHAPES_OPEN_SECONDS (20) s, then the queue drains; completed sagas per
#     second over the whole window, from the first submit to the last saga
#     finished;
#   - bursts: 2,000 and 100,000 two-step sagas started in one transaction,
#     drained (rate from the commit to the last saga finished);
#   - a worker restarted with 100,000 sagas pending: time from the new
#     worker's start to its first step started.
# SHAPES_BURSTS ("2000 100000") and SHAPES_SECONDS (10) change the sizes.
# Timings come from the tables (submitted_at, started_at, finished_at) and
# the driver; nothing here is a test.

SHAPES_SECONDS="${SHAPES_SECONDS:-10}"
SHAPES_OPEN_SECONDS="${SHAPES_OPEN_SECONDS:-20}"
SHAPES_BURSTS="${SHAPES_BURSTS:-2000 100000}"

# Waits until no saga whose gid matches $1 is unfinished.
shapes_drain() {
	sql bench "DO \$\$ BEGIN
	  WHILE EXISTS (SELECT 1 FROM saga.gtx WHERE gid LIKE '$1' AND finished_at IS NULL) LOOP
		PERFORM pg_sleep(0.1);
	  END LOOP;
	END \$\$;" >/dev/null
}

# shapes_driver MODE CLIENTS SECONDS -> "per_second p50 p99"
shapes_driver() {
	local line
	line="$(saga_as_pg "$work/driver" "$1" "$2" "$3" 1 "$COORD" "$CONN_A" "$CONN_B" 0)"
	set -- $line
	echo "$5 $6 $7"
}

# p50 from the submitting commit to succeeded over the last $1 seconds
shapes_commit_p50() {
	sql bench "SELECT round((extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY finished_at - submitted_at)) * 1000)::numeric, 2)
				 FROM saga.gtx WHERE status = 'succeeded' AND finished_at > now() - interval '$1 seconds'"
}

# A burst of N two-step sagas started in one transaction, under gid prefix
# $2: prints "drain_seconds per_second succeeded".
shapes_burst() {
	local n="$1" prefix="$2"
	sql bench "SELECT count(saga.start(ARRAY[
		saga.step('bank_a', 'UPDATE account SET balance = balance - 1 WHERE id = ' || (g % ${BENCH_ACCOUNTS:-10000} + 1),
				  'UPDATE account SET balance = balance + 1 WHERE id = ' || (g % ${BENCH_ACCOUNTS:-10000} + 1), expect_rows => 1),
		saga.step('bank_b', 'UPDATE account SET balance = balance + 1 WHERE id = ' || (g % ${BENCH_ACCOUNTS:-10000} + 1),
				  'UPDATE account SET balance = balance - 1 WHERE id = ' || (g % ${BENCH_ACCOUNTS:-10000} + 1), expect_rows => 1)],
		gid => '$prefix-' || g)) FROM generate_series(1, $n) g" >/dev/null
	shapes_drain "$prefix-%"
	sql bench "SELECT round(extract(epoch FROM max(finished_at) - max(submitted_at))::numeric, 2) || ' ' ||
					  round(($n / extract(epoch FROM max(finished_at) - max(submitted_at)))::numeric) || ' ' ||
					  count(*) FILTER (WHERE status = 'succeeded')
				 FROM saga.gtx WHERE gid LIKE '$prefix-%'"
}

# 100,000 sagas pending, the worker terminated right after their commit:
# prints "ms_to_first_step drain_seconds".
shapes_restart() {
	local n="$1" old new
	old="$(sql bench "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_saga worker' AND datname = 'bench'")"
	sql bench "BEGIN;
		SELECT count(saga.start(ARRAY[
			saga.step('bank_a', 'UPDATE account SET balance = balance - 1 WHERE id = ' || (g % ${BENCH_ACCOUNTS:-10000} + 1), expect_rows => 1),
			saga.step('bank_b', 'UPDATE account SET balance = balance + 1 WHERE id = ' || (g % ${BENCH_ACCOUNTS:-10000} + 1), expect_rows => 1)],
			gid => 'restart-' || g)) FROM generate_series(1, $n) g;
		SELECT pg_terminate_backend($old);
		COMMIT;" >/dev/null
	sql bench "DO \$\$ BEGIN
	  WHILE NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'pg_saga worker'
						  AND datname = 'bench' AND pid <> $old) LOOP
		PERFORM pg_sleep(0.05);
		PERFORM pg_stat_clear_snapshot();
	  END LOOP;
	END \$\$;" >/dev/null
	new="$(sql bench "SELECT backend_start FROM pg_stat_activity WHERE backend_type = 'pg_saga worker' AND datname = 'bench'")"
	shapes_drain 'restart-%'
	sql bench "SELECT round((extract(epoch FROM min(s.started_at) - '$new'::timestamptz) * 1000)::numeric) || ' ' ||
					  round(extract(epoch FROM max(g.finished_at) - '$new'::timestamptz)::numeric, 1)
				 FROM saga.gtx g JOIN saga.gtx_step s ON s.gtx_id = g.id
				WHERE g.gid LIKE 'restart-%' AND s.started_at >= '$new'::timestamptz"
}

# Prints the markdown section.
bench_shapes() {
	local b16 b1 s16 st16 s1 st1 p50 lat_s lat_st open_n open_s open_rate
	saga_log "shapes: baseline at 16 clients and 1"
	read -r b16 _ <<<"$(shapes_driver baseline 16 "$SHAPES_SECONDS")"
	read -r _ b1 _ <<<"$(shapes_driver baseline 1 "$SHAPES_SECONDS")"
	saga_log "shapes: closed loop, step by step and saga.start"
	read -r s16 _ <<<"$(shapes_driver saga 16 "$SHAPES_SECONDS")"
	read -r st16 _ <<<"$(shapes_driver start 16 "$SHAPES_SECONDS")"
	read -r _ s1 _ <<<"$(shapes_driver saga 1 "$SHAPES_SECONDS")"
	lat_s="$(shapes_commit_p50 "$SHAPES_SECONDS")"
	read -r _ st1 _ <<<"$(shapes_driver start 1 "$SHAPES_SECONDS")"
	lat_st="$(shapes_commit_p50 "$SHAPES_SECONDS")"

	saga_log "shapes: open loop, 16 clients for $SHAPES_OPEN_SECONDS s, then the drain"
	local t0
	t0="$(sql bench "SELECT clock_timestamp()")"
	saga_as_pg "$work/driver" start-open 16 "$SHAPES_OPEN_SECONDS" 0 "$COORD" "$CONN_A" "$CONN_B" 0 >/dev/null
	shapes_drain 'b%'
	read -r open_n open_s <<<"$(sql bench "SELECT count(*) || ' ' || round(extract(epoch FROM max(finished_at) - '$t0'::timestamptz)::numeric, 1)
		FROM saga.gtx WHERE submitted_at >= '$t0'::timestamptz AND gid LIKE 'b%'")"
	open_rate="$(awk -v n="$open_n" -v s="$open_s" 'BEGIN { printf "%.0f", n / s }')"

	local bursts=() n first_rate="" rate r
	for n in $SHAPES_BURSTS; do
		saga_log "shapes: burst of $n"
		read -r r rate _ <<<"$(shapes_burst "$n" "burst$n")"
		local versus=""
		if [ -n "$first_rate" ]; then
			versus="$(awk -v a="$rate" -v b="$first_rate" 'BEGIN { printf ", %.2f of the first burst'"'"'s rate", a / b }')"
		else
			first_rate="$rate"
		fi
		bursts+=("| burst of $n sagas started in one transaction | drained in $r s: **$rate sagas/s**$versus |")
	done
	saga_log "shapes: worker restarted with 100,000 pending"
	local restart_ms restart_drain
	read -r restart_ms restart_drain <<<"$(shapes_restart 100000)"

	ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
	# for the verdicts of bench/run.sh
	shape_closed_steps="$(ratio "$s16" "$b16")"
	shape_closed_start="$(ratio "$st16" "$b16")"
	shape_open="$(ratio "$open_rate" "$b16")"
	shape_burst="$(ratio "$rate" "$first_rate")"
	shape_lat_steps="$(ratio "$lat_s" "$b1")"
	shape_lat_start="$(ratio "$lat_st" "$b1")"
	shape_restart_ms="$restart_ms"
	cat <<EOF
| shape | figure |
|---|---|
| baseline, 16 clients | $b16 transfers/s |
| closed loop, 16 clients, step by step | $s16 sagas/s: **$(ratio "$s16" "$b16")** of the baseline |
| closed loop, 16 clients, saga.start | $st16 sagas/s: **$(ratio "$st16" "$b16")** of the baseline |
| open loop, 16 clients submitting with saga.start for $SHAPES_OPEN_SECONDS s, then drained | $open_n sagas in $open_s s: $open_rate sagas/s, **$(ratio "$open_rate" "$b16")** of the baseline |
$(printf '%s\n' "${bursts[@]}")
| worker restarted with 100,000 sagas pending | first step $restart_ms ms after the new worker started; all done $restart_drain s after |
| 1 client, baseline p50 (client) | $b1 ms |
| 1 client, step by step: client p50, commit-to-succeeded p50 | $s1 ms, $lat_s ms: **$(ratio "$lat_s" "$b1")x** the baseline |
| 1 client, saga.start: client p50, commit-to-succeeded p50 | $st1 ms, $lat_st ms: **$(ratio "$lat_st" "$b1")x** the baseline |
EOF
}

# Run on its own: a cluster of its own, and the section on stdout.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	cd "$(dirname "${BASH_SOURCE[0]}")/.."
	. scripts/lib.sh
	saga_run_as_root bench/shapes.sh "$@"
	. bench/cluster.sh
	bench_cluster_up
	if [ -n "${SHAPES_BATCH_SIZE:-}" ]; then
		sql bench "ALTER SYSTEM SET saga.batch_size = $SHAPES_BATCH_SIZE"
		sql bench "SELECT pg_reload_conf()" >/dev/null
	fi
	bench_shapes
fi
