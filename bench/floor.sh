#!/usr/bin/env bash
# bench/floor.sh: pg_saga against the floor of issue 24, write by write.
#
#   bash bench/floor.sh        # its own cluster; prints a markdown section
#
# The floor is the least durable work any saga design must do for the
# transfer of bench/driver.c, written by hand in plain SQL (driver MODE
# floor): the client INSERTs the saga row (gid unique, both steps' SQL as
# arrays) and commits, then SELECTs its status once; each participant
# runs, per 16 sagas in one remote transaction, a barrier INSERT and the
# step's UPDATE (EXECUTE of its text) per saga in one exception block; the
# coordinator sets the final status of the 16 in one UPDATE and commits.
#
# On the cluster of bench/cluster.sh, at FLOOR_CLIENTS (16) clients, closed
# loop, FLOOR_SECONDS (10) s after FLOOR_WARMUP (2) s, in FLOOR_ROUNDS (3)
# alternating rounds (A B C D A B C D ...), each figure the median round:
#   baseline  the two UPDATEs, each in its own transaction, no coordination;
#   floor     the floor above;
#   start     pg_saga: saga.start(ARRAY[saga.step(...), ...]) + saga.wait;
#   run       pg_saga: CALL saga.run('bench_transfer', $1, gid => $2) from a
#             definition with bound values (when saga.run exists).
# CPU per unit of work is read from the operating system: every process of
# the cluster (cluster_cpu_ticks: the postmaster, its live children and the
# ones it reaped) plus the driver's own CPU (the clients, and in MODE floor
# the coordinator thread), over every iteration of the run, warm-up
# included, divided by those iterations.
#
# The same modes then run with one client (the p50 the client sees, over
# the baseline's and the floor's: what issue 24's one-client target asks),
# and, at FLOOR_CLIENTS, each saga mode's CPU is split by role: each
# session's CPU from /proc over the middle of a run (floor_roles), per saga
# finished meanwhile.
#
# Then the cluster is restarted with pg_stat_statements (track = all, so
# the statements run inside functions count too) and, for pg_saga (start,
# run) and the floor, FLOOR_COUNT (1,000) sagas are run at 16 clients and
# the writes they made are read from pg_stat_user_tables (n_tup_ins,
# n_tup_upd, n_tup_hot_upd, n_tup_del) before and after, on the
# coordinator and each participant; index entries written are counted as
# (inserts + non-HOT updates) x the table's indexes (an upper bound where
# an index is partial).  The statements each database ran per saga come
# from pg_stat_statements.  Nothing here is a test.
FLOOR_CLIENTS="${FLOOR_CLIENTS:-16}"
FLOOR_SECONDS="${FLOOR_SECONDS:-10}"
FLOOR_WARMUP="${FLOOR_WARMUP:-2}"
FLOOR_ROUNDS="${FLOOR_ROUNDS:-3}"
FLOOR_COUNT="${FLOOR_COUNT:-1000}"
# the stats of an idle session reach pg_stat_user_tables within 10 s
FLOOR_SETTLE="${FLOOR_SETTLE:-11}"

# floor_measure MODE [CLIENTS] -> "per_second p50 cpu_ms_per_unit cluster_ms client_ms"
floor_measure() {
	local mode="$1" clients="${2:-$FLOOR_CLIENTS}" before after line
	sql bench "CHECKPOINT" >/dev/null
	before="$(cluster_cpu_ticks)"
	line="$(saga_as_pg "$work/driver" "$mode" "$clients" "$FLOOR_SECONDS" "$FLOOR_WARMUP" \
		"$COORD" "$CONN_A" "$CONN_B" 0)"
	sleep 0.5	# the driver's backends exit and are reaped
	after="$(cluster_cpu_ticks)"
	# driver: mode clients completed seconds per_second p50 p99 total cpu_s
	set -- $line
	awk -v t=$((after - before)) -v hz="$ticks_per_s" -v n="$8" -v c="$9" -v tps="$5" -v p50="$6" \
		'BEGIN { printf "%s %s %.3f %.3f %.3f\n", tps, p50, (t / hz + c) * 1000 / n, t / hz * 1000 / n, c * 1000 / n }'
}

# Sagas finished so far: pg_saga's, or the floor's (MODE floor)
floor_finished() {
	if [ "$1" = floor ]; then
		sql bench "SELECT count(*) FROM floor.saga WHERE status <> 'submitted'"
	else
		bench_finished
	fi
}

# "pid role ticks" of every session of the cluster, role being coordinator
# (a backend on bench other than the worker: the clients', and in MODE
# floor also its coordinator's), worker, or participant (any backend on
# bank_a or bank_b: pg_saga's sessions, or the floor coordinator's).
floor_role_ticks() {
	local pid role f
	sql postgres "SELECT pid, CASE WHEN backend_type = 'pg_saga worker' THEN 'worker'
								   WHEN datname = 'bench' THEN 'coordinator'
								   WHEN datname IN ('bank_a', 'bank_b') THEN 'participant'
								   ELSE 'other' END
					FROM pg_stat_activity WHERE pid <> pg_backend_pid()" |
	while IFS='|' read -r pid role; do
		f=($(cut -d' ' -f14-15 "/proc/$pid/stat" 2>/dev/null || echo "- -"))
		[ "${f[0]}" = - ] || echo "$pid $role $(( f[0] + f[1] ))"
	done
}

# floor_roles MODE -> "coordinator worker participant rest": CPU ms per
# finished saga of each role's sessions, and of the rest of the cluster
# (the postmaster, WAL writer, checkpointer, connections that came and
# went), over FLOOR_SECONDS - 2 s in the middle of a closed loop at
# FLOOR_CLIENTS clients.  Sessions are matched by pid at both ends, so the
# driver's CPU (the clients' own, and the floor's coordinator thread) is
# not in it.
floor_roles() {
	local mode="$1" driver n0 n1 c0 c1
	saga_as_pg "$work/driver" "$mode" "$FLOOR_CLIENTS" "$FLOOR_SECONDS" "$FLOOR_WARMUP" \
		"$COORD" "$CONN_A" "$CONN_B" 0 >/dev/null &
	driver=$!
	sleep $((FLOOR_WARMUP + 1))
	n0="$(floor_finished "$mode")"
	c0="$(cluster_cpu_ticks)"
	floor_role_ticks >"$work/roles.0"
	sleep $((FLOOR_SECONDS - 2))
	n1="$(floor_finished "$mode")"
	c1="$(cluster_cpu_ticks)"
	floor_role_ticks >"$work/roles.1"
	wait "$driver"
	sort "$work/roles.0" >"$work/roles.0s"
	sort "$work/roles.1" >"$work/roles.1s"
	join "$work/roles.0s" "$work/roles.1s" |
		awk -v n=$((n1 - n0)) -v hz="$ticks_per_s" -v all=$((c1 - c0)) '
			$2 == $4 { d[$2] += $5 - $3; s += $5 - $3 }
			END { printf "%.3f %.3f %.3f %.3f\n", d["coordinator"] * 1000 / hz / n, d["worker"] * 1000 / hz / n,
						 d["participant"] * 1000 / hz / n, (all - s) * 1000 / hz / n }'
}

# floor_measure_one MODE: floor_measure at one client
floor_measure_one() {
	floor_measure "$1" 1
}

# floor_rounds VAR MODES LABEL COMMAND: FLOOR_ROUNDS alternating rounds of
# COMMAND MODE for each of MODES, each line appended to VAR[MODE] (VAR an
# associative array of the caller's).
floor_rounds() {
	local -n acc="$1"
	local modes="$2" label="$3" command="$4" round mode
	for ((round = 1; round <= FLOOR_ROUNDS; round++)); do
		for mode in $modes; do
			saga_log "floor: round $round, $mode $label"
			acc[$mode]+="$("$command" "$mode")"$'\n'
			saga_log "floor: $(tail -n 1 <<<"${acc[$mode]%$'\n'}")"
		done
	done
}

# floor_median FIELD LINES: the median of field FIELD (1-based) of the
# non-empty lines of LINES
floor_median() {
	printf '%s\n' "$2" | awk -v f="$1" 'NF { print $f }' | sort -g |
		awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# "db|table|ins|upd|hot|del|indexes" for every user table of the three databases
floor_table_stats() {
	local db
	for db in bench bank_a bank_b; do
		sql "$db" "SELECT '$db', s.schemaname || '.' || s.relname, s.n_tup_ins, s.n_tup_upd, s.n_tup_hot_upd, s.n_tup_del,
						  (SELECT count(*) FROM pg_index i WHERE i.indrelid = s.relid)
					 FROM pg_stat_user_tables s" | tr '|' ' '
	done
}

# "commits db N" per database, then "wal records fpi bytes syncs" for the
# cluster
floor_db_stats() {
	sql bench "SELECT 'commits ' || datname || ' ' || xact_commit FROM pg_stat_database
				WHERE datname IN ('bench', 'bank_a', 'bank_b')
			   UNION ALL
			   SELECT 'wal ' || wal_records || ' ' || wal_fpi || ' ' || wal_bytes || ' ' || wal_sync FROM pg_stat_wal"
}

# floor_count MODE: runs FLOOR_COUNT sagas; writes $work/writes.MODE, per
# table written, "db table ins upd hot del indexes index_entries" per saga,
# and $work/statements.MODE (with pg_stat_statements)
floor_count() {
	local mode="$1" before after line
	sql bench "CHECKPOINT" >/dev/null
	sleep "$FLOOR_SETTLE"
	floor_table_stats >"$work/stats.before"
	floor_db_stats >"$work/db.before"
	if [ -n "$floor_pgss" ]; then
		sql bench "SELECT pg_stat_statements_reset()" >/dev/null
	fi
	line="$(saga_as_pg env BENCH_LIMIT="$FLOOR_COUNT" "$work/driver" "$mode" \
		"$FLOOR_CLIENTS" 600 0 "$COORD" "$CONN_A" "$CONN_B" 0)"
	set -- $line
	[ "$8" = "$FLOOR_COUNT" ] || saga_die "floor: $mode ran $8 sagas, not $FLOOR_COUNT"
	sleep "$FLOOR_SETTLE"
	if [ -n "$floor_pgss" ]; then
		# per database: calls per saga, rows per call, the statement
		sql bench "SELECT concat_ws(E'\\t', d.datname, round(s.calls::numeric / $FLOOR_COUNT, 2), s.toplevel,
						  round(s.rows::numeric / greatest(s.calls, 1), 1),
						  replace(regexp_replace(left(s.query, 120), '\\s+', ' ', 'g'), '|', '\\|'))
					 FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
					WHERE s.calls >= $FLOOR_COUNT / 20
					  AND s.query NOT LIKE '%pg_stat%' AND s.query NOT LIKE '%pg_index%'
					ORDER BY d.datname, s.calls DESC" >"$work/statements.$mode"
	fi
	floor_table_stats >"$work/stats.after"
	floor_db_stats >"$work/db.after"
	# "db commits" per saga, then "wal records fpi bytes syncs" per saga
	awk -v n="$FLOOR_COUNT" '
		{ k = $1 == "wal" ? "wal" : $1 " " $2 }
		NR == FNR { v[k] = $0; next }
		{ split(v[k], b, " ") }
		$1 == "commits" { printf "commits %s %.2f\n", $2, ($3 - b[3]) / n }
		$1 == "wal" { printf "wal %.2f %.2f %.0f %.2f\n", ($2 - b[2]) / n, ($3 - b[3]) / n, ($4 - b[4]) / n, ($5 - b[5]) / n }' \
		"$work/db.before" "$work/db.after" >"$work/db.$mode"
	awk -v n="$FLOOR_COUNT" '
		NR == FNR { ins[$1" "$2] = $3; upd[$1" "$2] = $4; hot[$1" "$2] = $5; del[$1" "$2] = $6; next }
		{
			k = $1" "$2
			i = ($3 - ins[k]) / n; u = ($4 - upd[k]) / n; h = ($5 - hot[k]) / n; d = ($6 - del[k]) / n
			if (i + u + d > 0)
				printf "%s %s %.2f %.2f %.2f %.2f %d %.2f\n", $1, $2, i, u, h, d, $7, (i + u - h) * $7
		}' "$work/stats.before" "$work/stats.after" >"$work/writes.$mode"
}

# The role of a database
floor_role() {
	case "$1" in
		bench) echo coordinator ;;
		*) echo "participant $1" ;;
	esac
}

bench_floor() {
	local modes="baseline floor start" mode
	if [ "$(sql bench "SELECT count(*) FROM pg_proc WHERE proname = 'run' AND pronamespace = 'saga'::regnamespace")" != 0 ]; then
		modes="$modes run"
	fi
	declare -A lines ones roles
	local role_modes="${modes#baseline }"
	floor_rounds lines "$modes" "at $FLOOR_CLIENTS clients" floor_measure
	# one client: latency as the client sees it
	floor_rounds ones "$modes" "at 1 client" floor_measure_one
	floor_rounds roles "$role_modes" "CPU by role" floor_roles

	# pg_stat_statements for the counts, if this PostgreSQL has it
	floor_pgss=""
	if [ -f "$("$(saga_pg_config)" --pkglibdir)/pg_stat_statements.so" ]; then
		saga_as_pg tee -a "$dir/data/postgresql.conf" >/dev/null <<-CONF
		# bench/floor.sh: statements per saga
		shared_preload_libraries = 'pg_saga,pg_stat_statements'
		pg_stat_statements.track = all
		pg_stat_statements.track_utility = on
		pg_stat_statements.max = 10000
		CONF
		saga_as_pg pg_ctl -D "$dir/data" -l "$dir/postmaster.log" -w restart >/dev/null
		postmaster_pid="$(head -1 "$dir/data/postmaster.pid")"
		sql bench "CREATE EXTENSION pg_stat_statements" && floor_pgss=1
	fi
	local count_modes="floor start"
	case " $modes " in *" run "*) count_modes="$count_modes run" ;; esac
	for mode in $count_modes; do
		saga_log "floor: writes of $FLOOR_COUNT sagas, $mode"
		floor_count "$mode"
	done

	local b_tps="" b_cpu="" tps f_cpu col m2 m3 m4 m5
	echo "### Throughput and CPU per unit, $FLOOR_CLIENTS clients, closed loop"
	echo
	echo "Medians of $FLOOR_ROUNDS alternating rounds of $FLOOR_SECONDS s (after $FLOOR_WARMUP s of warm-up). CPU per unit: all processes of the cluster plus the clients (the driver process), over every iteration of the run, in ms; the baseline's unit is one transfer, the others' one finished saga."
	echo
	echo "| what | per second | of the baseline | client p50 (ms) | CPU per unit (ms): all / cluster / driver | CPU over the baseline's | CPU over the floor's | the rounds: per second, CPU ms |"
	echo "|---|---|---|---|---|---|---|---|"
	f_cpu="$(floor_median 3 "${lines[floor]}")"
	for mode in $modes; do
		tps="$(floor_median 1 "${lines[$mode]}")"
		m2="$(floor_median 2 "${lines[$mode]}")"
		m3="$(floor_median 3 "${lines[$mode]}")"
		m4="$(floor_median 4 "${lines[$mode]}")"
		m5="$(floor_median 5 "${lines[$mode]}")"
		[ "$mode" = baseline ] && b_tps="$tps" b_cpu="$m3"
		echo "| $mode | $tps | $(awk -v a="$tps" -v b="$b_tps" 'BEGIN { printf "%.2f", a / b }') | $m2 | $m3 / $m4 / $m5 | **$(awk -v a="$m3" -v b="$b_cpu" 'BEGIN { printf "%.2f", a / b }')** | $(awk -v a="$m3" -v b="$f_cpu" 'BEGIN { printf "%.2f", a / b }') | $(printf '%s' "${lines[$mode]}" | awk 'NF { printf "%s%s, %s", (NR > 1 ? "; " : ""), $1, $3 }') |"
	done
	echo
	echo "### One client"
	echo
	echo "The same, one client, closed loop: the client's p50 from sending its first statement to having the outcome (the baseline: both UPDATEs done). Medians of $FLOOR_ROUNDS rounds."
	echo
	echo "| what | per second | client p50 (ms) | over the baseline's p50 | over the floor's p50 | the rounds' p50 |"
	echo "|---|---|---|---|---|---|"
	local b_p50 f_p50
	b_p50="$(floor_median 2 "${ones[baseline]}")"
	f_p50="$(floor_median 2 "${ones[floor]}")"
	for mode in $modes; do
		m2="$(floor_median 2 "${ones[$mode]}")"
		echo "| $mode | $(floor_median 1 "${ones[$mode]}") | $m2 | **$(awk -v a="$m2" -v b="$b_p50" 'BEGIN { printf "%.2f", a / b }')** | $(awk -v a="$m2" -v b="$f_p50" 'BEGIN { printf "%.2f", a / b }') | $(printf '%s' "${ones[$mode]}" | awk 'NF { printf "%s%s", (NR > 1 ? ", " : ""), $2 }') |"
	done
	echo
	echo "### CPU per finished saga by role, $FLOOR_CLIENTS clients"
	echo
	echo "Each session's CPU from /proc over $((FLOOR_SECONDS - 2)) s in the middle of a closed loop, per saga finished meanwhile, ms (each column the median of $FLOOR_ROUNDS rounds). coordinator: the backends on the coordinator database other than the worker (the clients', and for the floor its coordinator's); participant: every backend on bank_a and bank_b; rest: the rest of the cluster. The driver's own CPU is not in it."
	echo
	echo "| what | coordinator | worker | participants | rest | all | the rounds: coordinator, worker, participants, rest |"
	echo "|---|---|---|---|---|---|---|"
	for mode in $role_modes; do
		m2="$(floor_median 1 "${roles[$mode]}")"
		m3="$(floor_median 2 "${roles[$mode]}")"
		m4="$(floor_median 3 "${roles[$mode]}")"
		m5="$(floor_median 4 "${roles[$mode]}")"
		echo "| $mode | $m2 | $m3 | $m4 | $m5 | $(awk -v a="$m2" -v b="$m3" -v c="$m4" -v d="$m5" 'BEGIN { printf "%.3f", a + b + c + d }') | $(printf '%s' "${roles[$mode]}" | awk 'NF { printf "%s%s, %s, %s, %s", (NR > 1 ? "; " : ""), $1, $2, $3, $4 }') |"
	done
	echo
	echo "### Writes per finished 2-step saga ($FLOOR_COUNT sagas, $FLOOR_CLIENTS clients)"
	echo
	echo "From pg_stat_user_tables before and after, per saga. Index entries written: (inserts + non-HOT updates) x the table's indexes."
	echo
	echo "| what | where | table | inserts | updates (HOT) | deletes | indexes | index entries |"
	echo "|---|---|---|---|---|---|---|---|"
	for mode in $count_modes; do
		awk -v m="$mode" '{ printf "| %s | %s | %s | %s | %s (%s) | %s | %s | %s |\n", m, $1, $2, $3, $4, $5, $6, $7, $8 }' "$work/writes.$mode"
	done
	echo
	echo "Totals per saga (rows written = inserts + updates + deletes):"
	echo
	echo "| what | where | rows inserted | rows updated (HOT) | rows deleted | index entries |"
	echo "|---|---|---|---|---|---|"
	for mode in $count_modes; do
		awk -v m="$mode" '{ i[$1] += $3; u[$1] += $4; h[$1] += $5; d[$1] += $6; x[$1] += $8 }
			END { for (db in i) printf "| %s | %s | %.2f | %.2f (%.2f) | %.2f | %.2f |\n", m, db, i[db], u[db], h[db], d[db], x[db] }' \
			"$work/writes.$mode" | sort
	done
	echo
	echo "Transactions committed per saga by database (pg_stat_database.xact_commit, read-only ones included), and WAL per saga for the whole cluster (pg_stat_wal; wal_sync is the number of WAL flushes to disk):"
	echo
	echo "| what | commits at bench | commits at bank_a | commits at bank_b | WAL records | full-page images | WAL bytes | WAL flushes |"
	echo "|---|---|---|---|---|---|---|---|"
	for mode in $count_modes; do
		awk -v m="$mode" '$1 == "commits" { c[$2] = $3 } $1 == "wal" { w = $2 " | " $3 " | " $4 " | " $5 }
			END { printf "| %s | %s | %s | %s | %s |\n", m, c["bench"], c["bank_a"], c["bank_b"], w }' "$work/db.$mode"
	done
	if [ -n "$floor_pgss" ]; then
		echo
		echo "### Statements per saga (pg_stat_statements, track = all)"
		echo
		echo "Statements run at least once per 20 sagas; top level or nested (inside a function or procedure, SPI included). The database tells the role: bench is the coordinator (the clients' backends and the pg_saga worker), bank_a and bank_b the participants."
		for mode in $count_modes; do
			echo
			echo "$mode:"
			echo
			echo "| database | calls per saga | top level | rows per call | statement |"
			echo "|---|---|---|---|---|"
			awk -F'\t' '{ printf "| %s | %s | %s | %s | `%s` |\n", $1, $2, $3, $4, $5 }' "$work/statements.$mode"
			echo
			awk -F'\t' '{ n[$1] += $2; if ($3 == "t") t[$1] += $2 }
				END { for (d in n) printf "%s: %.1f statements per saga, %.1f of them top level\n", d, n[d], t[d] }' "$work/statements.$mode" | sort | sed 's/^/- /'
		done
	fi
}

# Run on its own: a cluster of its own, and the section on stdout.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	cd "$(dirname "${BASH_SOURCE[0]}")/.."
	. scripts/lib.sh
	saga_run_as_root bench/floor.sh "$@"
	. bench/cluster.sh
	bench_cluster_up
	bench_floor
fi
