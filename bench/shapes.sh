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
#
#   SHAPES_KEPT=1000000 bash bench/shapes.sh   # history kept against none
#
# SHAPES_KEPT=N (default off: each state with history takes minutes to
# make, about 10 minutes in all for a million) measures instead of the
# shapes whether N finished sagas kept in the tables slow the worker down
# (issue 24): in SHAPES_KEPT_ROUNDS (2) rounds, ordered none-kept then
# kept-none (so a drift of the machine's load falls on both), the tables
# are emptied (TRUNCATE saga.gtx, which empties the others without queuing
# barrier records to forget) and, for "kept", filled with N finished 2-step
# sagas copied from a real one (bench_keep_history); then VACUUM ANALYZE,
# CHECKPOINT, and on the same cluster a burst of SHAPES_KEPT_BURST (20,000)
# sagas drained and the closed loop at 16 clients (saga.start) for
# SHAPES_SECONDS.  Prints each state's rates and cluster CPU per saga, the
# ratios kept/none, the scans of the saga tables meanwhile, and with N kept
# the plans and times of the worker's statements on saga.gtx and of
# saga.transactions and saga.history for one gid.  SHAPES_KEPT_EXPLAIN_MS=3
# (diagnosis, off by default) also preloads auto_explain (plans of
# statements over that many ms, to the server log) and pg_stat_statements,
# and prints per state the worker's slow statements and the coordinator's
# statements by total time.

SHAPES_SECONDS="${SHAPES_SECONDS:-10}"
SHAPES_OPEN_SECONDS="${SHAPES_OPEN_SECONDS:-20}"
SHAPES_BURSTS="${SHAPES_BURSTS:-2000 100000}"
SHAPES_KEPT="${SHAPES_KEPT:-0}"
SHAPES_KEPT_ROUNDS="${SHAPES_KEPT_ROUNDS:-2}"
SHAPES_KEPT_BURST="${SHAPES_KEPT_BURST:-20000}"

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

# bench_keep_history N PREFIX: N finished 2-step sagas in the tables, gids
# PREFIX-0 .. PREFIX-(N-1), as the worker leaves them.  PREFIX-0 is a real
# one (the burst's transfer, run and waited for); the others are copies of
# its rows in saga.gtx, saga.gtx_step and saga.gtx_event (none at 1.6 for
# an ordinary saga), every column as it has it (statuses, attempts, result,
# saga key from the sequence), the account of the steps' text varied and
# the timestamps shifted so that saga i finished i x 50 ms after a day ago,
# in id order, the steps' times within it as the real one's.  So the views
# show them as they show a real one (saga.transactions, saga.history), and
# a schema change that the copy does not follow fails here.  The
# participants get no barrier records for the copies.
bench_keep_history() {
	local n="$1" prefix="$2"
	sql bench "SELECT saga.start(ARRAY[
		saga.step('bank_a', 'UPDATE account SET balance = balance - 1 WHERE id = 1',
				  'UPDATE account SET balance = balance + 1 WHERE id = 1', expect_rows => 1),
		saga.step('bank_b', 'UPDATE account SET balance = balance + 1 WHERE id = 1',
				  'UPDATE account SET balance = balance - 1 WHERE id = 1', expect_rows => 1)],
		gid => '$prefix-0')" >/dev/null
	[ "$(sql bench "SELECT saga.wait('$prefix-0', '60 seconds')")" = succeeded ] ||
		saga_die "the saga $prefix-0 that bench_keep_history copies did not succeed"
	sql bench "WITH t AS (SELECT * FROM saga.gtx WHERE gid = '$prefix-0'),
		new AS (
			INSERT INTO saga.gtx (gid, mode, status, phase, owner, payload, timeout, created_at,
								  submitted_at, finished_at, deadline, abort_requested, abort_reason,
								  last_error, definition, definition_version)
			SELECT '$prefix-' || g, t.mode, t.status, t.phase, t.owner, t.payload, t.timeout,
				   t.created_at - d.shift, t.submitted_at - d.shift, t.finished_at - d.shift,
				   t.deadline - d.shift, t.abort_requested, t.abort_reason, t.last_error,
				   t.definition, t.definition_version
			  FROM t, generate_series(1, $n - 1) g,
				   LATERAL (SELECT t.finished_at - (now() - interval '1 day' + g * interval '50 ms') AS shift) d
			 ORDER BY g
			RETURNING id, finished_at),
		steps AS (
			INSERT INTO saga.gtx_step (gtx_id, step, name, target, action, compensation, confirm,
									   after_steps, expect_rows, max_attempts, timeout, status,
									   maybe_applied, attempts, next_attempt_at, last_error,
									   last_sqlstate, started_at, finished_at, result, confirm_result)
			SELECT new.id, s.step, s.name, s.target,
				   replace(s.action, 'WHERE id = 1', 'WHERE id = ' || (new.id % ${BENCH_ACCOUNTS:-10000} + 1)),
				   replace(s.compensation, 'WHERE id = 1', 'WHERE id = ' || (new.id % ${BENCH_ACCOUNTS:-10000} + 1)),
				   s.confirm, s.after_steps, s.expect_rows, s.max_attempts, s.timeout, s.status,
				   s.maybe_applied, s.attempts, s.next_attempt_at - d.shift, s.last_error,
				   s.last_sqlstate, s.started_at - d.shift, s.finished_at - d.shift, s.result,
				   s.confirm_result
			  FROM new CROSS JOIN t JOIN saga.gtx_step s ON s.gtx_id = t.id,
				   LATERAL (SELECT t.finished_at - new.finished_at AS shift) d
			 ORDER BY new.id, s.step
			RETURNING 1)
		INSERT INTO saga.gtx_event (gtx_id, step, at, event, detail)
		SELECT new.id, e.step, e.at - (t.finished_at - new.finished_at), e.event, e.detail
		  FROM new CROSS JOIN t JOIN saga.gtx_event e ON e.gtx_id = t.id
		 ORDER BY new.id, e.id" >/dev/null
}

# The scans of the saga tables so far: "seq_scan seq_tup_read idx_scan" of
# saga.gtx, then of saga.gtx_step, then of saga.gtx_event.
shapes_scans() {
	sql bench "SELECT string_agg(seq_scan || ' ' || seq_tup_read || ' ' || coalesce(idx_scan, 0), ' ' ORDER BY relname)
				 FROM pg_stat_user_tables WHERE schemaname = 'saga' AND relname IN ('gtx', 'gtx_step', 'gtx_event')"
}

# CPU ticks of the pg_saga worker so far
shapes_worker_ticks() {
	local pid
	pid="$(sql bench "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_saga worker' AND datname = 'bench'")"
	awk '{ print $14 + $15 }' "/proc/$pid/stat"
}

# One state of bench_shapes_kept: empties the tables, keeps N finished sagas
# (0: none), vacuums, then the burst and the closed loop.  Prints
# "burst_per_s burst_cpu_ms loop_per_s loop_cpu_ms burst_worker_cpu_ms",
# then the scans' deltas over both (gtx seq_scan seq_tup_read idx_scan,
# the same of gtx_event and gtx_step), then what else happened: events
# stored, statuses of the sagas run, the server log's new lines (the
# first few of them after that).
shapes_kept_state() {
	local n="$1" label="$2" t0 t1 s0 s1 line burst_s burst_rate loop_rate loop_cpu w0 w1 log0
	[ "$(sql bench "SELECT count(*) FROM saga.gtx WHERE finished_at IS NULL")" = 0 ] ||
		saga_die "sagas are unfinished: cannot empty the tables"
	sql bench "TRUNCATE saga.gtx"
	if [ "$n" -gt 0 ]; then
		saga_log "shapes: keeping $n finished sagas"
		bench_keep_history "$n" history
	fi
	sql bench "VACUUM ANALYZE saga.gtx"
	sql bench "VACUUM ANALYZE saga.gtx_step"
	sql bench "VACUUM ANALYZE saga.gtx_event"
	sql bench "CHECKPOINT"
	sleep 2
	s0="$(shapes_scans)"
	[ -z "${SHAPES_KEPT_EXPLAIN_MS:-}" ] || sql bench "SELECT pg_stat_statements_reset()" >/dev/null
	log0="$(wc -l <"$dir/postmaster.log")"
	saga_log "shapes: $label: burst of $SHAPES_KEPT_BURST, then 16 clients for $SHAPES_SECONDS s"
	t0="$(cluster_cpu_ticks)"
	w0="$(shapes_worker_ticks)"
	read -r burst_s burst_rate _ <<<"$(shapes_burst "$SHAPES_KEPT_BURST" "burst-$label")"
	w1="$(shapes_worker_ticks)"
	t1="$(cluster_cpu_ticks)"
	local burst_cpu
	burst_cpu="$(awk -v t=$((t1 - t0)) -v hz="$ticks_per_s" -v n="$SHAPES_KEPT_BURST" 'BEGIN { printf "%.2f", t / hz * 1000 / n }')"
	t0="$(cluster_cpu_ticks)"
	line="$(saga_as_pg "$work/driver" start 16 "$SHAPES_SECONDS" 1 "$COORD" "$CONN_A" "$CONN_B" 0)"
	t1="$(cluster_cpu_ticks)"
	# fields: mode clients completed seconds per_second p50 p99
	set -- $line
	loop_rate="$5"
	loop_cpu="$(awk -v t=$((t1 - t0)) -v hz="$ticks_per_s" -v n="$3" -v s="$4" \
		'BEGIN { if (n > 0) printf "%.2f", t / hz * 1000 / (n * (s + 1) / s); else print "-" }')"
	sleep 2
	s1="$(shapes_scans)"
	echo "$burst_rate $burst_cpu $loop_rate $loop_cpu $(awk -v t=$((w1 - w0)) -v hz="$ticks_per_s" -v n="$SHAPES_KEPT_BURST" 'BEGIN { printf "%.2f", t / hz * 1000 / n }')"
	paste -d' ' <(tr ' ' '\n' <<<"$s1") <(tr ' ' '\n' <<<"$s0") | awk '{ printf "%d ", $1 - $2 } END { print "" }'
	echo "events stored: $(sql bench "SELECT coalesce(string_agg(event || ' ' || n, ', '), 'none')
										FROM (SELECT event, count(*) n FROM saga.gtx_event GROUP BY event ORDER BY event) x");" \
		"sagas run: $(sql bench "SELECT string_agg(status || ' ' || n, ', ')
								   FROM (SELECT status, count(*) n FROM saga.gtx WHERE gid NOT LIKE 'history-%' GROUP BY status ORDER BY status) x");" \
		"server log: $(($(wc -l <"$dir/postmaster.log") - log0)) lines," \
		"$(awk -v from="$log0" 'NR > from && /canceling statement due to statement timeout/ { n++ } END { print n + 0 }' "$dir/postmaster.log")" \
		"statements cancelled by statement_timeout (steps of batches over their allowance, sent again alone)"
	awk -v from="$log0" 'NR > from && NR <= from + 5 { print substr($0, 1, 200) }' "$dir/postmaster.log"
	if [ -n "${SHAPES_KEPT_EXPLAIN_MS:-}" ]; then
		echo "statements of the worker slower than $SHAPES_KEPT_EXPLAIN_MS ms (auto_explain), by text:"
		awk -v from="$log0" 'NR > from && /pg_saga worker LOG:  duration:/ { w = 1; split($0, d, "duration: "); ms = d[2] + 0; next }
			w && /Query Text:/ { q = substr($0, index($0, "Query Text:") + 12, 140); n[q]++; t[q] += ms; w = 0; plan[q] = ""; cur = q; next }
			w { w = 0 }
			cur != "" && /^\t/ && (/Scan/ || /Sort/) && length(plan[cur]) < 300 { p = $0; gsub(/^[ \t]+/, "", p); plan[cur] = plan[cur] " | " substr(p, 1, 80); next }
			!/^\t/ { cur = "" }
			END { for (q in n) printf "  %d x, %.0f ms: %s%s\n", n[q], t[q], q, plan[q] }' "$dir/postmaster.log" | sort -t' ' -k3,3nr | head -n 6
		echo "the coordinator's statements by total time (pg_stat_statements): calls, total ms, mean ms, rows, text"
		sql bench "SELECT '  ' || calls || ', ' || round(total_exec_time) || ', ' || round(mean_exec_time::numeric, 3) || ', ' || rows || ', ' || left(regexp_replace(query, '\s+', ' ', 'g'), 150)
					 FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'bench')
					 ORDER BY total_exec_time DESC LIMIT 8"
	fi
}

# With history kept: the plans and times of the worker's statements on
# saga.gtx (generic plans, as it keeps them) and of the views for one gid.
shapes_kept_plans() {
	local n="$1" some="history-$(( $1 / 2 ))"
	echo "Rows kept: $(sql bench "SELECT count(*) FROM saga.gtx") sagas, $(sql bench "SELECT count(*) FROM saga.gtx_step") steps, $(sql bench "SELECT count(*) FROM saga.gtx_event") events; saga.gtx $(sql bench "SELECT pg_size_pretty(pg_total_relation_size('saga.gtx'))"), saga.gtx_step $(sql bench "SELECT pg_size_pretty(pg_total_relation_size('saga.gtx_step'))") with indexes"
	echo
	echo "A real finished saga (history-0, burst-$2-1) and copies (history-1, $some), in the views:"
	echo
	saga_as_pg "${PSQL[@]}" -d bench -c "SELECT gid, mode, status, owner, steps, steps_done, last_error, finished_at - submitted_at AS took
		FROM saga.transactions WHERE gid IN ('history-0', 'history-1', '$some', 'burst-$2-1') ORDER BY gid"
	saga_as_pg "${PSQL[@]}" -d bench -c "SELECT gid, step, event, detail, at - min(at) OVER (PARTITION BY gid) AS since_first
		FROM saga.history WHERE gid IN ('history-0', '$some', 'burst-$2-1') ORDER BY gid, at, step NULLS FIRST"
	saga_as_pg "${PSQL[@]}" -d bench -c "SELECT gid, step, name, target, status, attempts, result, finished_at - started_at AS took
		FROM saga.steps WHERE gid IN ('history-0', '$some') ORDER BY gid, step"
	echo "The views for one gid ($some), EXPLAIN ANALYZE:"
	echo
	local view
	for view in transactions history; do
		saga_as_pg "${PSQL[@]}" -d bench -c "SELECT * FROM saga.$view WHERE gid = '$some'" >/dev/null
		echo "saga.$view:"
		saga_as_pg "${PSQL[@]}" -d bench -c "EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) SELECT * FROM saga.$view WHERE gid = '$some'"
	done
	echo "The worker's statements on saga.gtx (generic plans), the pick-up after the last id taken, the aborts, the steps of a saga, the bench's drain poll:"
	echo
	saga_as_pg "${PSQL[@]}" -d bench <<-EOF
	SET plan_cache_mode = force_generic_plan;
	PREPARE live_after(bigint, int) AS
		SELECT id, gid, mode, status, phase, owner, deadline, abort_requested, abort_reason, last_error, saga_key,
			   (SELECT pg_catalog.cardinality(a.args) FROM saga.gtx_args a WHERE a.gtx_id = gtx.id),
			   (SELECT a.args::text FROM saga.gtx_args a WHERE a.gtx_id = gtx.id),
			   CASE WHEN status = 'pending' AND id > 0 THEN false ELSE EXISTS (
				   SELECT FROM saga.gtx_event e WHERE e.gtx_id = gtx.id
				   AND e.event NOT IN ('submitted', 'abort_requested')) END
		  FROM saga.gtx
		 WHERE finished_at IS NULL AND status IN ('pending', 'running', 'committing', 'compensating')
		   AND id > \$1 ORDER BY id LIMIT \$2;
	EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) EXECUTE live_after(0, 64);
	PREPARE aborts(bigint) AS
		SELECT id, abort_requested, abort_reason FROM saga.gtx
		 WHERE finished_at IS NULL AND id <= \$1 AND abort_requested
		   AND status IN ('pending', 'running', 'committing', 'compensating');
	EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) EXECUTE aborts(9223372036854775807);
	PREPARE steps(bigint[]) AS
		SELECT * FROM saga.gtx_step WHERE gtx_id = ANY (\$1) ORDER BY gtx_id, step;
	SELECT max(id) AS last_id FROM saga.gtx \\gset
	EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) EXECUTE steps(ARRAY[:last_id::bigint]);
	RESET plan_cache_mode;
	EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON)
		SELECT 1 FROM saga.gtx WHERE gid LIKE 'burst-$2-%' AND finished_at IS NULL;
	EOF
}

# Prints the markdown section of SHAPES_KEPT.
bench_shapes_kept() {
	local n="$SHAPES_KEPT" r state label order rows=() scans=() notes=() plans=""
	local -A sum
	for ((r = 1; r <= SHAPES_KEPT_ROUNDS; r++)); do
		order="none kept"
		[ $((r % 2)) -eq 1 ] || order="kept none"
		for state in $order; do
			label="$state$r"
			local kept=0 out line scan
			[ "$state" = none ] || kept="$n"
			saga_log "shapes: round $r, $state ($(cut -d' ' -f1-3 /proc/loadavg))"
			out="$(shapes_kept_state "$kept" "$label")"
			line="$(sed -n 1p <<<"$out")"
			scan="$(sed -n 2p <<<"$out")"
			notes+=("round $r, $state: $(sed -n '3,$p' <<<"$out")")
			local b bc l lc wc
			read -r b bc l lc wc <<<"$line"
			rows+=("| $r | $state | $b | $bc | $wc | $l | $lc | $(cut -d' ' -f1-3 /proc/loadavg) |")
			scan="${scan% }"
			scans+=("| $r | $state | ${scan// / | } |")
			sum[$state.b]=$(awk -v a="${sum[$state.b]:-0}" -v b="$b" 'BEGIN { print a + b }')
			sum[$state.l]=$(awk -v a="${sum[$state.l]:-0}" -v b="$l" 'BEGIN { print a + b }')
			declare -g "kept_round_${r}_${state}_b=$b" "kept_round_${r}_${state}_l=$l" \
				"kept_round_${r}_${state}_bc=$bc" "kept_round_${r}_${state}_lc=$lc"
			if [ "$state" = kept ] && [ -z "$plans" ]; then
				plans="$(shapes_kept_plans "$n" "$label")"
			fi
		done
	done
	ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
	local per_round=() v
	for ((r = 1; r <= SHAPES_KEPT_ROUNDS; r++)); do
		v="kept_round_${r}_"
		local kb="${v}kept_b" nb="${v}none_b" kl="${v}kept_l" nl="${v}none_l" kbc="${v}kept_bc" nbc="${v}none_bc" klc="${v}kept_lc" nlc="${v}none_lc"
		per_round+=("| $r | **$(ratio "${!kb}" "${!nb}")** | **$(ratio "${!kl}" "${!nl}")** | $(ratio "${!kbc}" "${!nbc}") | $(ratio "${!klc}" "${!nlc}") |")
	done
	shape_kept_burst="$(ratio "${sum[kept.b]}" "${sum[none.b]}")"
	shape_kept_loop="$(ratio "${sum[kept.l]}" "${sum[none.l]}")"
	cat <<EOF
$n finished 2-step sagas kept against none; each round on the same cluster, the tables emptied (TRUNCATE) and, for kept, filled, then VACUUM ANALYZE and CHECKPOINT:

| round | state | burst of $SHAPES_KEPT_BURST: sagas/s | burst: cluster CPU ms per saga | burst: worker CPU ms per saga | closed loop, 16 clients, saga.start: sagas/s | closed loop: cluster CPU ms per saga | load (1, 5, 15 min) after |
|---|---|---|---|---|---|---|---|
$(printf '%s\n' "${rows[@]}")

| round | burst drain rate, kept/none | closed loop, kept/none | burst CPU per saga, kept/none | closed loop CPU per saga, kept/none |
|---|---|---|---|---|
$(printf '%s\n' "${per_round[@]}")
| all rounds (sum of rates) | **$shape_kept_burst** | **$shape_kept_loop** | | |

Scans of the saga tables during each state's burst and closed loop (pg_stat_user_tables deltas; the bench's own polling included):

| round | state | gtx seq_scan | gtx seq_tup_read | gtx idx_scan | gtx_event seq_scan | gtx_event seq_tup_read | gtx_event idx_scan | gtx_step seq_scan | gtx_step seq_tup_read | gtx_step idx_scan |
|---|---|---|---|---|---|---|---|---|---|---|
$(printf '%s\n' "${scans[@]}")

\`\`\`
$(printf '%s\n' "${notes[@]}")

$plans
\`\`\`
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
	if [ -n "${SHAPES_KEPT_EXPLAIN_MS:-}" ]; then
		# diagnosis: the plans of statements slower than this, the worker's included
		saga_as_pg tee -a "$dir/data/postgresql.conf" >/dev/null <<-EOF
		shared_preload_libraries = 'pg_saga,auto_explain,pg_stat_statements'
		auto_explain.log_min_duration = '${SHAPES_KEPT_EXPLAIN_MS}ms'
		auto_explain.log_level = log
		EOF
		saga_as_pg pg_ctl -D "$dir/data" -l "$dir/postmaster.log" -w restart >/dev/null
		postmaster_pid="$(head -1 "$dir/data/postmaster.pid")"
		sql bench "CREATE EXTENSION pg_stat_statements"
	fi
	if [ -n "${SHAPES_BATCH_SIZE:-}" ]; then
		sql bench "ALTER SYSTEM SET saga.batch_size = $SHAPES_BATCH_SIZE"
		sql bench "SELECT pg_reload_conf()" >/dev/null
	fi
	if [ "$SHAPES_KEPT" -gt 0 ]; then
		bench_shapes_kept
	else
		bench_shapes
	fi
fi
