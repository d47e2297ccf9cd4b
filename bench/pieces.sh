#!/usr/bin/env bash
# bench/pieces.sh: the pieces of a saga's cost, each alone, against the
# floor's (issue 24), in seconds instead of a full load run.
#
#   bash bench/pieces.sh       # its own cluster; prints a markdown section
#
# One session at a time (pgbench, one client, PIECES_SECONDS (5) s a piece,
# PIECES_ROUNDS (3) rounds, the median kept), on bench/cluster.sh's cluster
# (durable commits) without a pg_saga worker (max_worker_processes = 1,
# which the logical replication launcher takes: the sagas submitted stay
# pending and nothing else runs).  CPU per transaction is the cluster's, from /proc
# (the postmaster's reaped children: pgbench's backend is one), so it
# includes the commit.
#
# The client's submission, on the coordinator database (bench), each
# statement prepared (pgbench -M prepared) as a driver would:
#   floor      the floor's INSERT of the saga row (gid unique, the steps'
#              SQL as arrays) and its commit;
#   gtx        the INSERT of saga.gtx's row alone, as saga.start writes it;
#   gtx+arrays the same row with its two steps as arrays in it (a table
#              like saga.gtx with nine array columns more): what "steps
#              in the saga row" would write;
#   gtx+steps  saga.start's own statement by hand: the row and two rows
#              of saga.gtx_step;
#   start      saga.start(ARRAY[saga.step(...), saga.step(...)]).
# The worker's part of a 2-step saga at the coordinator, each as a
# PL/pgSQL function (its statements' plans kept, as the worker's SPI
# plans are), on 10,000 sagas of each layout:
#   read_rows    what the worker reads of a saga it takes up: its row, then
#                its steps' rows in saga.gtx_step;
#   read_arrays  the same from one row with the steps as arrays in it;
#   final_rows   its final write: the UPDATE of the saga's row and one of
#                each step's row, and the commit;
#   final_arrays the same as one UPDATE of a row with the steps' state as
#                arrays in it.
# The participant's call, on a participant database (bank_a, the objects
# of saga.setup_participant), per step, as query text like the worker's
# batches (pgbench -M simple):
#   batch N    saga_participant.run_steps() with N steps of SQL text;
#   floor N    the floor's call with N steps (barrier INSERT and the
#              step's UPDATE per step, each in an exception block);
#   alone      saga_participant.run() of one step.
# PIECES_ONLY ("batch1 batch4") runs only those pieces; PIECES_PARTICIPANT
# (a file) installs other participant objects than pg_saga_participant.sql,
# to A/B a change of them.  Nothing here is a test.
PIECES_SECONDS="${PIECES_SECONDS:-5}"
PIECES_ROUNDS="${PIECES_ROUNDS:-3}"

pieces_sql() { saga_as_pg psql -X -q -At -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -d "$1" "${@:2}"; }

# CPU so far of the postmaster's reaped children, in clock ticks
pieces_ticks() {
	local f
	f=($(cut -d' ' -f16-17 "/proc/$(head -1 "$dir/data/postmaster.pid")/stat"))
	echo $((f[0] + f[1]))
}

# pieces_run DB SCRIPT MODE STEPS -> us of CPU per step (per transaction if STEPS is 1)
pieces_run() {
	local db="$1" script="$2" mode="$3" steps="$4" before after out n
	before="$(pieces_ticks)"
	out="$(saga_as_pg pgbench -n -M "$mode" -h "$dir" -p "$port" -c 1 -T "$PIECES_SECONDS" -f "$script" "$db" 2>&1)" ||
		saga_die "pgbench $script: $out"
	n="$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")"
	sleep 0.5	# the backend exits and is reaped
	after="$(pieces_ticks)"
	awk -v t=$((after - before)) -v hz="$ticks_per_s" -v n="$n" -v s="$steps" \
		'BEGIN { printf "%.0f\n", t / hz * 1e6 / n / s }'
}

# the text of run_steps()'s call with n steps, as the worker sends it
pieces_batch_script() {
	local n="$1" i sep g="" s="" c="" one="" act="" nul="" size="" name="" timeout=""
	for ((i = 1; i <= n; i++)); do
		sep="$([ "$i" -gt 1 ] && echo , || true)"
		echo "\\set a$i random(1, 10000)"
		g+="$sep\"g:r-$i\""
		s+="$sep\"UPDATE account SET balance = balance - 1 WHERE id = :a$i AND balance >= 1\""
		c+="${sep}c" one+="${sep}1" act+="${sep}action" nul+="${sep}NULL"
		size+="${sep}1048576" name+="${sep}s1" timeout+="${sep}60000"
	done
	echo "\\set r random(1, 1000000000000)"
	if [ "$2" = floor ]; then
		echo "SELECT floor_run('{$g}'::text[], 1, '{$s}'::text[]);"
	else
		echo "SELECT i, reply, result, error_sqlstate, error_message, error_detail, error_hint, error_context, cut, ms" \
			"FROM saga_participant.run_steps('{$c}'::text[], '{$g}'::text[], '{$one}'::text[], '{$act}'::text[]," \
			"'{$s}'::text[], '{$one}'::text[], '{$nul}'::text[], '{$nul}'::text[], '{$size}'::text[], '{$name}'::text[]," \
			"'{$nul}'::text[], '{$nul}'::text[], '{$nul}'::text[], '{$timeout}'::text[]);"
	fi
}

# the worker's reads and final writes, on sagas in saga.gtx and
# saga.gtx_step and on the same sagas in public.gtx_arrays (pieces_setup)
pieces_worker_setup() {
	local upd="'UPDATE account SET balance = balance - 1 WHERE id = ' || id || ' AND balance >= 1'"
	local add="'UPDATE account SET balance = balance + 1 WHERE id = ' || id"
	local now2="ARRAY[clock_timestamp(), clock_timestamp()]" none2="ARRAY[NULL, NULL]"
	pieces_sql bench <<-EOF
	ALTER TABLE public.gtx_arrays ADD COLUMN step_status text[], ADD COLUMN maybe_applied boolean[],
		ADD COLUMN attempts int[], ADD COLUMN next_attempt_at timestamptz[], ADD COLUMN step_errors text[],
		ADD COLUMN step_sqlstates text[], ADD COLUMN started_ats timestamptz[], ADD COLUMN finished_ats timestamptz[],
		ADD COLUMN results jsonb[], ADD COLUMN confirm_results jsonb[];
	INSERT INTO saga.gtx (gid, mode, owner, status, submitted_at)
		SELECT 'w-' || g, 'saga', 10, 'running', now() FROM generate_series(1, 10000) g;
	INSERT INTO saga.gtx_step (gtx_id, step, name, target, action, compensation, expect_rows)
		SELECT id, s, s::text, CASE s WHEN 1 THEN 'bank_a' ELSE 'bank_b' END,
			   CASE s WHEN 1 THEN $upd ELSE $add END, CASE s WHEN 1 THEN $add ELSE $upd END, 1
		  FROM saga.gtx, generate_series(1, 2) s WHERE gid LIKE 'w-%';
	INSERT INTO public.gtx_arrays (id, gid, mode, owner, status, submitted_at, names, targets, actions,
								   compensations, confirms, afters, expect_rows, max_attempts, timeouts,
								   step_status, maybe_applied, attempts)
		SELECT id, 'a' || gid, mode, owner, status, submitted_at, ARRAY['1', '2'], ARRAY['bank_a', 'bank_b'],
			   ARRAY[$upd, $add], ARRAY[$add, $upd], $none2::text[], ARRAY['{}', '{}'], ARRAY[1, 1]::int8[],
			   $none2::int[], $none2::interval[], ARRAY['pending', 'pending'], ARRAY[false, false], ARRAY[0, 0]
		  FROM saga.gtx WHERE gid LIKE 'w-%';
	VACUUM ANALYZE saga.gtx, saga.gtx_step, public.gtx_arrays;
	CREATE FUNCTION read_rows(i bigint) RETURNS void LANGUAGE plpgsql AS \$f\$
	DECLARE r record;
	BEGIN
		FOR r IN SELECT id, gid, mode, status, phase, owner, deadline, abort_requested, abort_reason, last_error, saga_key
				   FROM saga.gtx WHERE id = ANY (ARRAY[i]) ORDER BY id LOOP END LOOP;
		FOR r IN SELECT gtx_id, step, name, target, action, compensation, confirm, after_steps::text, expect_rows,
						max_attempts, (EXTRACT(epoch FROM timeout) * 1000)::bigint, status, maybe_applied, attempts,
						next_attempt_at, last_error, last_sqlstate, started_at, finished_at, result::text,
						confirm_result::text
				   FROM saga.gtx_step WHERE gtx_id = ANY (ARRAY[i]) ORDER BY gtx_id, step LOOP END LOOP;
	END \$f\$;
	CREATE FUNCTION read_arrays(i bigint) RETURNS void LANGUAGE plpgsql AS \$f\$
	DECLARE r record;
	BEGIN
		FOR r IN SELECT id, gid, mode, status, phase, owner, deadline, abort_requested, abort_reason, last_error, saga_key,
						names, targets, actions, compensations, confirms, afters, expect_rows, max_attempts, timeouts,
						step_status, maybe_applied, attempts, next_attempt_at, step_errors, step_sqlstates,
						started_ats, finished_ats, results::text, confirm_results::text
				   FROM public.gtx_arrays WHERE id = ANY (ARRAY[i]) ORDER BY id LOOP END LOOP;
	END \$f\$;
	CREATE FUNCTION final_rows(i bigint) RETURNS void LANGUAGE plpgsql AS \$f\$
	BEGIN
		UPDATE saga.gtx SET status = 'succeeded', phase = 'forward', last_error = NULL,
			   finished_at = clock_timestamp() WHERE id = i;
		FOR s IN 1 .. 2 LOOP
			UPDATE saga.gtx_step SET status = 'succeeded', maybe_applied = false, attempts = 1,
				   next_attempt_at = NULL, last_error = NULL, last_sqlstate = NULL,
				   started_at = clock_timestamp(), finished_at = clock_timestamp()
			 WHERE gtx_id = i AND step = s;
		END LOOP;
	END \$f\$;
	CREATE FUNCTION final_arrays(i bigint) RETURNS void LANGUAGE plpgsql AS \$f\$
	BEGIN
		UPDATE public.gtx_arrays SET status = 'succeeded', phase = 'forward', last_error = NULL,
			   finished_at = clock_timestamp(), step_status = ARRAY['succeeded', 'succeeded'],
			   maybe_applied = ARRAY[false, false], attempts = ARRAY[1, 1],
			   next_attempt_at = $none2::timestamptz[], step_errors = $none2::text[],
			   step_sqlstates = $none2::text[], started_ats = $now2, finished_ats = $now2
		 WHERE id = i;
	END \$f\$;
	EOF
	local lo hi f
	lo="$(pieces_sql bench -c "SELECT min(id) FROM saga.gtx WHERE gid LIKE 'w-%'")"
	hi="$(pieces_sql bench -c "SELECT max(id) FROM saga.gtx WHERE gid LIKE 'w-%'")"
	mkdir -p "$work/pieces"
	for f in read_rows read_arrays final_rows final_arrays; do
		printf '\\set i random(%s, %s)\nSELECT %s(:i);\n' "$lo" "$hi" "$f" >"$work/pieces/$f.sql"
	done
}

pieces_setup() {
	# bench/cluster.sh's cluster and databases, without a pg_saga worker
	BENCH_SETTINGS="${BENCH_SETTINGS:+$BENCH_SETTINGS
}# bench/pieces.sh: no pg_saga worker
max_worker_processes = 1
max_parallel_workers = 0" bench_cluster_up
	if [ -n "$(sql postgres "SELECT 1 FROM pg_stat_activity WHERE backend_type LIKE 'pg_saga%'")" ]; then
		saga_die "a pg_saga worker runs: the pieces would not be alone"
	fi
	pieces_sql bench <<-'EOF'
	CREATE SCHEMA floor;
	CREATE TABLE floor.saga (id bigserial PRIMARY KEY, gid text NOT NULL UNIQUE, targets text[] NOT NULL,
							 actions text[] NOT NULL, compensations text[] NOT NULL,
							 status text NOT NULL DEFAULT 'submitted');
	CREATE TABLE public.gtx_arrays (LIKE saga.gtx INCLUDING ALL, names text[], targets text[], actions text[],
									compensations text[], confirms text[], afters text[], expect_rows int8[],
									max_attempts int[], timeouts interval[]);
	EOF
	pieces_worker_setup
	if [ -n "${PIECES_PARTICIPANT:-}" ]; then
		pieces_sql bank_a -c "SET client_min_messages = warning" -f "$PIECES_PARTICIPANT" >/dev/null
	fi
	pieces_sql bank_a <<-'EOF'
	CREATE TABLE floor_barrier (gid text, step int, op text, PRIMARY KEY (gid, step, op));
	CREATE FUNCTION floor_run(gids text[], step int, sqls text[]) RETURNS int[] LANGUAGE plpgsql AS $f$
	DECLARE n bigint; replies int[] := '{}';
	BEGIN
		FOR i IN 1 .. cardinality(gids) LOOP
			BEGIN
				INSERT INTO floor_barrier (gid, step, op) VALUES (gids[i], floor_run.step, 'action');
				EXECUTE sqls[i];
				GET DIAGNOSTICS n = ROW_COUNT;
				IF n <> 1 THEN RAISE EXCEPTION 'step % of % changed % rows', floor_run.step, gids[i], n; END IF;
				replies := replies || n::int;
			EXCEPTION WHEN unique_violation THEN replies := replies || -1;
				WHEN OTHERS THEN replies := replies || -2;
			END;
		END LOOP;
		RETURN replies;
	END $f$;
	EOF

	# the client's submission: the two steps of bench/driver.c's transfer
	local upd="'UPDATE account SET balance = balance - 1 WHERE id = ' || :a || ' AND balance >= 1'"
	local add="'UPDATE account SET balance = balance + 1 WHERE id = ' || :a"
	local steps="ARRAY['1','2'], ARRAY['bank_a','bank_b'], ARRAY[$upd, $add], ARRAY[$add, $upd], ARRAY[NULL,NULL]::text[], ARRAY['{}','{}'], ARRAY[1,1]::int8[], ARRAY[NULL,NULL]::int[], ARRAY[NULL,NULL]::interval[]"
	local gtx="'pending', pg_catalog.clock_timestamp()"
	mkdir -p "$work/pieces"
	printf '\\set a random(1, 10000)\n%s\n' \
		"INSERT INTO floor.saga (gid, targets, actions, compensations) VALUES ('f' || :a || '-' || random(), ARRAY['bank_a', 'bank_b'], ARRAY[$upd, $add], ARRAY[$add, $upd]) RETURNING id;" \
		>"$work/pieces/floor.sql"
	printf '\\set a random(1, 10000)\n%s\n' \
		"INSERT INTO saga.gtx (gid, mode, owner, payload, timeout, status, submitted_at) VALUES ('o' || :a || '-' || random(), 'saga', 10, NULL, NULL, $gtx) RETURNING gid, id;" \
		>"$work/pieces/gtx.sql"
	printf '\\set a random(1, 10000)\n%s\n' \
		"INSERT INTO public.gtx_arrays (id, gid, mode, owner, payload, timeout, status, submitted_at, names, targets, actions, compensations, confirms, afters, expect_rows, max_attempts, timeouts) VALUES (nextval('saga.gtx_id_seq'), 'a' || :a || '-' || random(), 'saga', 10, NULL, NULL, $gtx, $steps) RETURNING gid, id;" \
		>"$work/pieces/gtx_arrays.sql"
	printf '\\set a random(1, 10000)\n%s\n' \
		"WITH g AS (INSERT INTO saga.gtx (gid, mode, owner, payload, timeout, status, submitted_at) VALUES ('c' || :a || '-' || random(), 'saga', 10, NULL, NULL, $gtx) ON CONFLICT (gid) DO NOTHING RETURNING gid, id), s AS (INSERT INTO saga.gtx_step (gtx_id, step, name, target, action, compensation, confirm, after_steps, expect_rows, max_attempts, timeout) SELECT g.id, u.n, u.name, u.target, u.action, u.compensation, u.confirm, u.after::int[], u.expect_rows, u.max_attempts, u.timeout FROM g, unnest($steps) WITH ORDINALITY AS u (name, target, action, compensation, confirm, after, expect_rows, max_attempts, timeout, n)) SELECT gid, id FROM g;" \
		>"$work/pieces/gtx_steps.sql"
	printf '\\set a random(1, 10000)\n%s\n' \
		"SELECT saga.start(ARRAY[saga.step('bank_a', $upd, $add, expect_rows => 1), saga.step('bank_b', $add, $upd, expect_rows => 1)], gid => 's' || :a || '-' || random());" \
		>"$work/pieces/start.sql"
	# the participant's call
	local n
	for n in 1 4 8; do
		pieces_batch_script "$n" batch >"$work/pieces/batch$n.sql"
		pieces_batch_script "$n" floor >"$work/pieces/floor$n.sql"
	done
	printf '\\set a random(1, 10000)\n\\set r random(1, 1000000000000)\n%s\n' \
		"SELECT saga_participant.run('c', 'g:r', 1, 'action', 'UPDATE account SET balance = balance - 1 WHERE id = :a AND balance >= 1', 1) FROM (SELECT pg_catalog.set_config('saga.gid', 'g:r', true), pg_catalog.set_config('saga.step', '1', true), pg_catalog.set_config('saga.results', '{}', true) OFFSET 0) AS settings;" \
		>"$work/pieces/alone.sql"
	chmod -R a+rX "$work/pieces"
}

# pieces_median LINES: the median of the numbers, one a line
pieces_median() {
	sort -g <<<"$1" | awk 'NF { v[++n] = $1 } END { print v[int((n + 1) / 2)] }'
}

bench_pieces() {
	local piece round db mode steps
	# piece: database, pgbench mode, steps per call
	local -A spec=(
		[floor]="bench prepared 1" [gtx]="bench prepared 1" [gtx_arrays]="bench prepared 1"
		[gtx_steps]="bench prepared 1" [start]="bench prepared 1"
		[batch1]="bank_a simple 1" [floor1]="bank_a simple 1" [batch4]="bank_a simple 4"
		[floor4]="bank_a simple 4" [batch8]="bank_a simple 8" [floor8]="bank_a simple 8"
		[alone]="bank_a simple 1" [read_rows]="bench prepared 1" [read_arrays]="bench prepared 1"
		[final_rows]="bench prepared 1" [final_arrays]="bench prepared 1")
	local order="${PIECES_ONLY:-floor gtx gtx_arrays gtx_steps start read_rows read_arrays final_rows final_arrays floor1 batch1 alone floor4 batch4 floor8 batch8}"
	local -A us
	for ((round = 1; round <= PIECES_ROUNDS; round++)); do
		for piece in $order; do
			read -r db mode steps <<<"${spec[$piece]}"
			us[$piece]+="$(pieces_run "$db" "$work/pieces/$piece.sql" "$mode" "$steps")"$'\n'
		done
		saga_log "pieces: round $round done"
	done
	echo "### The pieces, each alone (bench/pieces.sh)"
	echo
	echo "One session, pgbench, $PIECES_SECONDS s a piece, µs of CPU of the cluster per transaction (per step for the participant's calls), commit included, median of $PIECES_ROUNDS rounds (the rounds after it)."
	echo
	echo "| piece | µs | rounds |"
	echo "|---|---|---|"
	for piece in $order; do
		echo "| $piece | $(pieces_median "${us[$piece]}") | $(printf '%s' "${us[$piece]}" | paste -sd, | sed 's/,/, /g') |"
	done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	cd "$(dirname "${BASH_SOURCE[0]}")/.."
	. scripts/lib.sh
	saga_run_as_root bench/pieces.sh "$@"
	. bench/cluster.sh
	pieces_setup
	bench_pieces
fi
