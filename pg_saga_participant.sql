/*
 * pg_saga_participant.sql: the barrier objects a participant database needs.
 *
 * saga.setup_participant(target) runs this file on the target; a DBA of a
 * managed database can run it by hand instead (psql -f).  No C extension is
 * needed on the participant.  Safe to run again: every statement is
 * idempotent, and running it upgrades the function in place.
 *
 * The barrier makes each branch call exactly-once in effect.  Every call of
 * a step's operation runs, in one transaction with the user's SQL, through
 * saga_participant.run_step() (or run(), its form without a result), which
 * first records (coordinator, owner, gid, step, operation) in the barrier
 * table:
 *   - a repeated call finds its record and does nothing ('duplicate');
 *   - a compensation (or cancel) whose action never took effect records the
 *     action itself as "taken by compensation" and does nothing ('null');
 *     the action, if it arrives later, finds that record and does nothing
 *     ('hanging').
 * Records are keyed by the role that wrote them and row-level security hides
 * other roles' records, so no role can read, pre-empt or forge another's.
 * A record also keeps its operation's result (the rows its last statement
 * returned), so that a repeated call answers what the first one did.
 * "coordinator" is the caller's barrier identity: since pg_saga 1.5 one
 * per saga, so that a saga's records are its own, and forget() deletes
 * them once the coordinator purged the saga (see the end of this file).
 */
CREATE SCHEMA IF NOT EXISTS saga_participant;
GRANT USAGE ON SCHEMA saga_participant TO PUBLIC;

CREATE TABLE IF NOT EXISTS saga_participant.barrier (
	coordinator	text NOT NULL,
	owner		name NOT NULL DEFAULT current_user,
	gid			text NOT NULL,
	step		int NOT NULL,
	op			text NOT NULL,
	origin		text NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (coordinator, owner, gid, step, op)
);
ALTER TABLE saga_participant.barrier ENABLE ROW LEVEL SECURITY;
ALTER TABLE saga_participant.barrier FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS barrier_own ON saga_participant.barrier;
CREATE POLICY barrier_own ON saga_participant.barrier
	USING (owner = current_user) WITH CHECK (owner = current_user);
-- the result of an action or confirm, kept with its record so that a
-- repeated call (its reply was lost) still answers it (since pg_saga 1.4)
ALTER TABLE saga_participant.barrier ADD COLUMN IF NOT EXISTS result jsonb;
REVOKE ALL ON saga_participant.barrier FROM PUBLIC;
GRANT SELECT, INSERT, DELETE ON saga_participant.barrier TO PUBLIC;
GRANT UPDATE (result) ON saga_participant.barrier TO PUBLIC;

/*
 * Leaves the session as the worker set it up, so that nothing a step's SQL
 * left in it reaches the next step that lands on the same connection:
 * settings (SET, SET LOCAL, set_config) back to their defaults, then the
 * worker's statement_timeout and client_connection_check_interval again;
 * the role; session advisory locks; temporary tables; LISTEN; open cursors
 * (but the unnamed portal running this very call); prepared statements but
 * the worker's own.  What cannot have changed is
 * not touched: each costs a lookup unless the step used it.
 */
CREATE OR REPLACE FUNCTION saga_participant.clean_session(
	worker_timeout text, worker_check_interval text)
RETURNS void
LANGUAGE plpgsql SECURITY INVOKER
AS $clean$
DECLARE
	has_temp boolean;
	has_cursors boolean;
	statements text[];
	statement_name text;
BEGIN
	/*
	 * LISTEN takes effect at commit, so no look tells whether the step did
	 * it: UNLISTEN always, except in a transaction to be prepared (mode
	 * xa), which cannot have done it (PREPARE TRANSACTION refuses both).
	 */
	IF current_setting('saga_participant.prepare', true) IS DISTINCT FROM 'on' THEN
		UNLISTEN *;
	END IF;
	RESET ALL;
	-- one statement for the rest, which is checked by looking
	SELECT pg_catalog.set_config('role', 'none', false) IS NULL,
		   pg_catalog.set_config('statement_timeout', worker_timeout, false) IS NULL,
		   CASE WHEN worker_check_interval IS NOT NULL THEN pg_catalog.set_config(
				'client_connection_check_interval', worker_check_interval, false) END IS NULL,
		   pg_catalog.pg_advisory_unlock_all() IS NULL,
		   pg_catalog.pg_my_temp_schema() <> 0,
		   EXISTS (SELECT FROM pg_catalog.pg_cursors WHERE name <> ''),
		   ARRAY(SELECT name FROM pg_catalog.pg_prepared_statements
				  WHERE name NOT LIKE 'pgsaga\_%')
	  INTO has_temp, has_temp, has_temp, has_temp, has_temp, has_cursors, statements;
	IF has_temp THEN
		DISCARD TEMP;
	END IF;
	IF has_cursors THEN
		EXECUTE 'CLOSE ALL';
	END IF;
	FOREACH statement_name IN ARRAY statements LOOP
		EXECUTE pg_catalog.format('DEALLOCATE %I', statement_name);
	END LOOP;
END
$clean$;
GRANT EXECUTE ON FUNCTION saga_participant.clean_session(text, text) TO PUBLIC;

/*
 * Bound values (since pg_saga 1.5).  A step whose SQL uses the saga's
 * values ($1 .. $n) arrives as its statements, one per array element, with
 * the numbers each references and the values as a text[] parameter: the
 * values are in no SQL text.  run_step() keeps them in a setting of the
 * transaction, where arg(n) reads them, and runs each statement through
 * bound_call(): prepared once per session (under a name clean_session()
 * keeps) with the types PostgreSQL infers, as PREPARE without types does,
 * then executed with value n, read from that setting, cast to its type.
 */
CREATE OR REPLACE FUNCTION saga_participant.arg(n int)
RETURNS text
LANGUAGE sql STABLE SECURITY INVOKER
AS $arg$
	SELECT (pg_catalog.current_setting('saga_participant.args')::text[])[n]
$arg$;
GRANT EXECUTE ON FUNCTION saga_participant.arg(int) TO PUBLIC;

/*
 * The statement that runs statement with the values it references (refs):
 * EXECUTE of its prepared form, which it prepares in this session first if
 * need be; statement itself when it references none.
 */
CREATE OR REPLACE FUNCTION saga_participant.bound_call(statement text, refs int[])
RETURNS text
LANGUAGE plpgsql SECURITY INVOKER
AS $bound_call$
DECLARE
	statement_name text;
	top int;
	types regtype[];
	call_args text := '';
BEGIN
	IF coalesce(cardinality(refs), 0) = 0 THEN
		RETURN statement;
	END IF;
	statement_name := 'pgsaga_u_' || pg_catalog.md5(statement);
	SELECT p.parameter_types INTO types
	  FROM pg_catalog.pg_prepared_statements p WHERE p.name = statement_name;
	IF NOT FOUND THEN
		top := (SELECT pg_catalog.max(r) FROM pg_catalog.unnest(refs) AS r);
		-- unknown: inferred, as PREPARE without types does; text: not sent
		EXECUTE pg_catalog.format('PREPARE %I(%s) AS %s', statement_name,
			(SELECT pg_catalog.string_agg(CASE WHEN i = ANY (refs) THEN 'unknown' ELSE 'text' END,
										  ', ' ORDER BY i)
			   FROM pg_catalog.generate_series(1, top) AS i),
			statement);
		SELECT p.parameter_types INTO types
		  FROM pg_catalog.pg_prepared_statements p WHERE p.name = statement_name;
	END IF;
	/*
	 * Each value read from the setting run_step() keeps them in, as arg(n)
	 * does, but written out: an SQL function in the call would be inlined,
	 * its body parsed again, at every call.  A loop of simple expressions,
	 * not a query, builds it: a third of the cost.
	 */
	FOR i IN 1 .. cardinality(types) LOOP
		IF i > 1 THEN
			call_args := call_args || ', ';
		END IF;
		IF i = ANY (refs) THEN
			call_args := call_args || '(pg_catalog.current_setting(''saga_participant.args'')::text[])['
				|| i || ']::' || types[i]::text;
		ELSE
			call_args := call_args || 'NULL::text';
		END IF;
	END LOOP;
	RETURN 'EXECUTE ' || pg_catalog.quote_ident(statement_name) || '(' || call_args || ')';
END
$bound_call$;
GRANT EXECUTE ON FUNCTION saga_participant.bound_call(text, int[]) TO PUBLIC;

/*
 * Runs an action's statements (one per element) with the values kept in
 * the transaction's setting, each statement_args[i] the numbers it
 * references (int[] text), through bound_call(), and answers the last
 * one's row count: what the fast paths of run_step() and run_steps() do
 * for an action that binds values and keeps no result.  counted: the last
 * statement comes with RETURNING NULL (the coordinator adds it where
 * expect_rows counts the rows of a statement that binds values), and its
 * rows are counted one by one, as the EXECUTE of a prepared statement
 * reports no row count of its own and a count kept by SPI would hold them
 * all in memory.
 */
CREATE OR REPLACE FUNCTION saga_participant.run_bound(statements text[], statement_args text[],
													  counted boolean)
RETURNS bigint
LANGUAGE plpgsql SECURITY INVOKER
AS $run_bound$
DECLARE
	last_one int := pg_catalog.cardinality(statements);
	last_sql text;
	n bigint := 0;
	counted_row record;
BEGIN
	FOR i IN 1 .. last_one - 1 LOOP
		EXECUTE saga_participant.bound_call(statements[i], statement_args[i]::int[]);
	END LOOP;
	last_sql := saga_participant.bound_call(statements[last_one], statement_args[last_one]::int[]);
	IF counted THEN
		FOR counted_row IN EXECUTE last_sql LOOP
			n := n + 1;
		END LOOP;
	ELSE
		EXECUTE last_sql;
		GET DIAGNOSTICS n = ROW_COUNT;
	END IF;
	RETURN n;
END
$run_bound$;
GRANT EXECUTE ON FUNCTION saga_participant.run_bound(text[], text[], boolean) TO PUBLIC;

/*
 * Runs one operation of one step behind the barrier and answers what
 * happened: reply 'done', 'duplicate', 'null' (compensation without action)
 * or 'hanging' (action after its compensation), and the operation's result.
 *
 * sql runs first; result_sql, when given, is the statement that ends the
 * operation, as the coordinator split it off: it returns rows, which are
 * the step's result, a jsonb array of one object per row in the order the
 * statement returned them.  Without it the result is NULL: the last
 * statement returns no rows.  A result is kept with the barrier record, so
 * a repeated call (whose first reply was lost) answers 'duplicate' with the
 * same result; one larger than max_result_size bytes fails with SQLSTATE
 * 54000, and one whose rows have two columns of the same name (which a
 * jsonb object cannot hold) with 42712.  With expect_rows, the last statement must
 * report exactly that many rows, otherwise SQLSTATE 21000.  Either error
 * rolls the whole transaction back, barrier record included.
 *
 * saga.gid, saga.step and saga.results (the results of the steps this one
 * runs after, a jsonb object; '{}' when there are none) are set for the
 * transaction first, so the step's SQL can read them.  A compensation or
 * confirm finds there its own action's result, under step_name: if the
 * coordinator does not know it (the action's reply was lost), it is taken
 * from the action's barrier record.
 *
 * With statements (since pg_saga 1.5), the operation binds the saga's
 * values arg_values: its statements are those, statement_args the numbers
 * of the values each references (as int[] text), sql is not used and
 * result_sql only says whether the last statement's rows are the result.
 * A last statement that references values and whose rows expect_rows
 * counts comes with RETURNING NULL, and its rows are counted.
 */
CREATE OR REPLACE FUNCTION saga_participant.run_step(
	coordinator text, gid text, step int, op text, sql text, expect_rows bigint,
	result_sql text, results text, max_result_size int, step_name text,
	statements text[], statement_args text[], arg_values text[],
	OUT reply text, OUT result jsonb)
LANGUAGE plpgsql SECURITY INVOKER
AS $run_step$
DECLARE
	last_sql text;
	counted boolean := false;
	last_one int;
	n bigint;
	size bigint;
	r record;
	rows jsonb[] := '{}';
	fast boolean := false;
	twice text;
	-- the worker's settings, to set again once the step is done
	worker_timeout text := current_setting('statement_timeout');
	worker_check_interval text := current_setting('client_connection_check_interval', true);
BEGIN
	/*
	 * An action that keeps no result, taking effect for the first time:
	 * the commonest call, run here with as few expressions as it needs (a
	 * step alone is a transaction of its own, in which each expression
	 * this function meets is set up again).  A repeat, and every other
	 * call, takes the full path; both end alike.
	 */
	IF run_step.op = 'action' AND run_step.result_sql IS NULL
	   AND (run_step.statements IS NULL OR pg_catalog.cardinality(run_step.statements) > 0) THEN
		PERFORM pg_catalog.set_config('saga.gid', run_step.gid, true),
				pg_catalog.set_config('saga.step', run_step.step::text, true),
				pg_catalog.set_config('saga.results', coalesce(run_step.results, '{}'), true);
		INSERT INTO saga_participant.barrier AS b (coordinator, gid, step, op, origin)
		VALUES (run_step.coordinator, run_step.gid, run_step.step, 'action', 'action')
		ON CONFLICT DO NOTHING;
		fast := FOUND;
		IF fast AND run_step.statements IS NULL THEN
			EXECUTE run_step.sql;
			GET DIAGNOSTICS n = ROW_COUNT;
		ELSIF fast THEN
			PERFORM pg_catalog.set_config('saga_participant.args',
										  coalesce(run_step.arg_values, '{}')::text, true);
			n := saga_participant.run_bound(run_step.statements, run_step.statement_args,
				run_step.expect_rows IS NOT NULL
				AND run_step.statement_args[pg_catalog.cardinality(run_step.statements)] <> '{}');
		END IF;
	END IF;

	IF NOT fast THEN
		IF op NOT IN ('action', 'compensation', 'confirm') THEN
			RAISE EXCEPTION 'unknown barrier operation "%"', op USING ERRCODE = '22023';
		END IF;
		-- the caller's statement may have set them already (see run())
		IF pg_catalog.current_setting('saga.gid', true) IS DISTINCT FROM run_step.gid
		   OR pg_catalog.current_setting('saga.step', true) IS DISTINCT FROM run_step.step::text
		   OR pg_catalog.current_setting('saga.results', true) IS DISTINCT FROM
			  coalesce(run_step.results, '{}') THEN
			PERFORM pg_catalog.set_config('saga.gid', run_step.gid, true),
					pg_catalog.set_config('saga.step', run_step.step::text, true),
					pg_catalog.set_config('saga.results', coalesce(run_step.results, '{}'), true);
		END IF;
		IF op <> 'action' AND step_name IS NOT NULL
		   AND NOT coalesce(run_step.results, '{}')::jsonb ? step_name THEN
			PERFORM pg_catalog.set_config('saga.results',
				(coalesce(run_step.results, '{}')::jsonb
				 || pg_catalog.jsonb_build_object(step_name, coalesce(b.result, '[]')))::text, true)
			   FROM saga_participant.barrier b
			  WHERE b.coordinator = run_step.coordinator AND b.owner = current_user
				AND b.gid = run_step.gid AND b.step = run_step.step AND b.op = 'action'
				AND b.origin = 'action';
		END IF;

		IF op = 'compensation' THEN
			-- Claim the action's slot first: if that succeeds the action never
			-- took effect, and the claim also stops it from running later.
			INSERT INTO saga_participant.barrier AS b (coordinator, gid, step, op, origin)
			VALUES (run_step.coordinator, run_step.gid, run_step.step, 'action', 'compensation')
			ON CONFLICT DO NOTHING;
			IF FOUND THEN
				INSERT INTO saga_participant.barrier AS b (coordinator, gid, step, op, origin)
				VALUES (run_step.coordinator, run_step.gid, run_step.step, 'compensation', 'compensation')
				ON CONFLICT DO NOTHING;
				reply := 'null';
				RETURN;
			END IF;
		END IF;

		INSERT INTO saga_participant.barrier AS b (coordinator, gid, step, op, origin)
		VALUES (run_step.coordinator, run_step.gid, run_step.step, run_step.op, run_step.op)
		ON CONFLICT DO NOTHING;
		IF NOT FOUND THEN
			SELECT CASE WHEN b.origin <> b.op THEN 'hanging' ELSE 'duplicate' END, b.result
			  INTO reply, result
			  FROM saga_participant.barrier b
			 WHERE b.coordinator = run_step.coordinator AND b.owner = current_user
			   AND b.gid = run_step.gid AND b.step = run_step.step AND b.op = run_step.op;
			IF reply = 'hanging' THEN
				result := NULL;
			END IF;
			RETURN;
		END IF;

		IF run_step.statements IS NOT NULL THEN
			PERFORM pg_catalog.set_config('saga_participant.args',
										  coalesce(run_step.arg_values, '{}')::text, true);
			last_one := cardinality(run_step.statements);
			FOR i IN 1 .. last_one - 1 LOOP
				EXECUTE saga_participant.bound_call(run_step.statements[i],
													run_step.statement_args[i]::int[]);
			END LOOP;
			last_sql := saga_participant.bound_call(run_step.statements[last_one],
													run_step.statement_args[last_one]::int[]);
			counted := run_step.result_sql IS NULL AND run_step.expect_rows IS NOT NULL
				AND run_step.statement_args[last_one] <> '{}';
		ELSIF run_step.result_sql IS NULL THEN
			last_sql := run_step.sql;
		ELSE
			IF run_step.sql <> '' THEN
				EXECUTE run_step.sql;
			END IF;
			last_sql := run_step.result_sql;
		END IF;
		IF run_step.result_sql IS NULL AND NOT counted THEN
			EXECUTE last_sql;
			GET DIAGNOSTICS n = ROW_COUNT;
		ELSE
			n := 0;
			FOR r IN EXECUTE last_sql LOOP
				n := n + 1;
				CONTINUE WHEN counted;
				IF n = 1 THEN
					SELECT k INTO twice FROM pg_catalog.json_object_keys(pg_catalog.row_to_json(r)) AS k
					 GROUP BY k HAVING pg_catalog.count(*) > 1 LIMIT 1;
					IF twice IS NOT NULL THEN
						RAISE EXCEPTION 'the result of step % has two columns named "%"', run_step.step, twice
							USING ERRCODE = '42712',
								  HINT = 'Give the columns of the last statement distinct names (AS ...).';
					END IF;
				END IF;
				rows := pg_catalog.array_append(rows, pg_catalog.to_jsonb(r));
			END LOOP;
			IF NOT counted THEN
				result := pg_catalog.to_jsonb(rows);
			END IF;
		END IF;
	END IF;
	IF run_step.expect_rows IS NOT NULL AND n <> run_step.expect_rows THEN
		RAISE EXCEPTION 'step % expected % row(s) but its last statement reported %',
			run_step.step, run_step.expect_rows, n
			USING ERRCODE = '21000';
	END IF;
	IF result IS NOT NULL AND result <> '[]' THEN
		size := pg_catalog.octet_length(result::text);
		IF size > run_step.max_result_size THEN
			RAISE EXCEPTION 'the result of step % is % bytes, more than saga.max_result_size (% bytes)',
				run_step.step, size, run_step.max_result_size
				USING ERRCODE = '54000',
					  HINT = 'Return fewer rows or columns, or raise saga.max_result_size on the coordinator.';
		END IF;
		UPDATE saga_participant.barrier b SET result = run_step.result
		 WHERE b.coordinator = run_step.coordinator AND b.owner = current_user
		   AND b.gid = run_step.gid AND b.step = run_step.step AND b.op = run_step.op;
	END IF;
	-- run_steps() cleans after each step itself, for less
	IF pg_catalog.current_setting('saga_participant.in_batch', true) IS DISTINCT FROM 'on' THEN
		PERFORM saga_participant.clean_session(worker_timeout, worker_check_interval);
	END IF;
	reply := 'done';
END
$run_step$;
GRANT EXECUTE ON FUNCTION saga_participant.run_step(text, text, int, text, text, bigint, text, text,
													int, text, text[], text[], text[]) TO PUBLIC;

-- run_step() binding no value, as coordinators before pg_saga 1.5 call it
CREATE OR REPLACE FUNCTION saga_participant.run_step(
	coordinator text, gid text, step int, op text, sql text, expect_rows bigint,
	result_sql text, results text, max_result_size int, step_name text DEFAULT NULL,
	OUT reply text, OUT result jsonb)
LANGUAGE plpgsql SECURITY INVOKER
AS $run_step_1_4$
BEGIN
	-- PL/pgSQL, not SQL: its plan is kept for the session, not made per call
	SELECT r.reply, r.result INTO reply, result
	  FROM saga_participant.run_step(run_step.coordinator, run_step.gid, run_step.step, run_step.op,
									 run_step.sql, run_step.expect_rows, run_step.result_sql,
									 run_step.results, run_step.max_result_size, run_step.step_name,
									 NULL::text[], NULL::text[], NULL::text[]) AS r;
END
$run_step_1_4$;
GRANT EXECUTE ON FUNCTION saga_participant.run_step(text, text, int, text, text, bigint, text, text, int, text)
	TO PUBLIC;

/*
 * run_step() without results, as coordinators before pg_saga 1.4 call it
 * (and later ones, for steps that neither return rows nor read results, so
 * that participants set up by an earlier version keep working).  An action
 * taking effect for the first time takes run_step()'s short path.
 */
CREATE OR REPLACE FUNCTION saga_participant.run(
	coordinator text, gid text, step int, op text, sql text, expect_rows bigint DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SECURITY INVOKER
AS $run$
BEGIN
	RETURN (saga_participant.run_step(run.coordinator, run.gid, run.step, run.op, run.sql,
									  run.expect_rows, NULL, pg_catalog.current_setting('saga.results', true),
									  NULL, NULL, NULL::text[], NULL::text[], NULL::text[])).reply;
END
$run$;
GRANT EXECUTE ON FUNCTION saga_participant.run(text, text, int, text, text, bigint) TO PUBLIC;

/*
 * Runs several step operations in one transaction, each in a
 * subtransaction of its own (an exception block), as coordinators from
 * pg_saga 1.2 to 1.4 send batches (later ones use run_batch_step()), and returns one row per
 * element, in order: run_step()'s answer (reply and result), or the
 * SQLSTATE, message, detail, hint and context of the error that rolled
 * that element back, barrier record included.  The worker acts on the
 * answers only once the whole transaction committed; if it did not, no
 * element took effect.  An element that would wait for a lock (held by
 * another batch, say, which may wait on this one) gives up at once with
 * 55P03, and the worker sends it again alone: concurrent batches over the
 * same rows neither deadlock nor queue behind each other.  Every element
 * starts from a clean session (see clean_session), so nothing one step
 * leaves, not even SET LOCAL, reaches the next.
 */
CREATE OR REPLACE FUNCTION saga_participant.run_batch(
	coordinator text, gids text[], steps int[], ops text[], sqls text[], expect_rows bigint[],
	result_sqls text[], results text[], max_result_size int, step_names text[])
RETURNS TABLE (reply text, result jsonb, error_sqlstate text, error_message text,
			   error_detail text, error_hint text, error_context text)
LANGUAGE plpgsql SECURITY INVOKER
AS $run_batch$
DECLARE
	worker_timeout text := current_setting('statement_timeout');
	worker_check_interval text := current_setting('client_connection_check_interval', true);
BEGIN
	FOR i IN 1 .. coalesce(cardinality(gids), 0) LOOP
		reply := NULL;
		result := NULL;
		error_sqlstate := NULL;
		error_message := NULL;
		error_detail := NULL;
		error_hint := NULL;
		error_context := NULL;
		BEGIN
			-- never wait on a lock for long while holding the batch's others:
			-- a step that would is answered 55P03 and sent again on its own
			PERFORM pg_catalog.set_config('lock_timeout', '1ms', true);
			SELECT r.reply, r.result INTO reply, result
			  FROM saga_participant.run_step(run_batch.coordinator, gids[i], steps[i], ops[i],
											 sqls[i], expect_rows[i], result_sqls[i], results[i],
											 run_batch.max_result_size, step_names[i]) AS r;
		EXCEPTION WHEN OTHERS THEN
			GET STACKED DIAGNOSTICS error_sqlstate = RETURNED_SQLSTATE, error_message = MESSAGE_TEXT,
				error_detail = PG_EXCEPTION_DETAIL, error_hint = PG_EXCEPTION_HINT,
				error_context = PG_EXCEPTION_CONTEXT;
			-- what a rollback does not undo
			PERFORM saga_participant.clean_session(worker_timeout, worker_check_interval);
		END;
		RETURN NEXT;
	END LOOP;
END
$run_batch$;
GRANT EXECUTE ON FUNCTION saga_participant.run_batch(text, text[], int[], text[], text[], bigint[],
													 text[], text[], int, text[]) TO PUBLIC;

/*
 * One step of a batch, as coordinators since pg_saga 1.5 send batches: a
 * pipeline of statements in one remote transaction, each step between a
 * SAVEPOINT and its RELEASE, under a statement_timeout of its own (see
 * src/remote.c).  It is run_step(), plus what makes a step's fate its own
 * when it shares a transaction with other steps:
 *   - it never waits on a row lock (held by another batch, say, which may
 *     wait on this one): it gives up at once with 55P03 and the worker
 *     sends it again alone;
 *   - the constraint checks it deferred run now, as its own commit would
 *     run them, so a violation is its error, not the batch's at commit;
 *     then every constraint is back to its declared timing (what SET
 *     CONSTRAINTS did in this step does not reach the next one);
 *   - a step that made the transaction read-only (which nothing can undo
 *     but its own rollback) fails with 25006 and is sent again alone.
 */
CREATE OR REPLACE FUNCTION saga_participant.run_batch_step(
	coordinator text, gid text, step int, op text, sql text, expect_rows bigint,
	result_sql text, results text, max_result_size int, step_name text,
	statements text[], statement_args text[], arg_values text[],
	OUT reply text, OUT result jsonb)
LANGUAGE plpgsql SECURITY INVOKER
AS $run_batch_step$
DECLARE
	was_read_only text := pg_catalog.current_setting('transaction_read_only');
	initially_deferred text;
BEGIN
	PERFORM pg_catalog.set_config('lock_timeout', '1ms', true);
	SELECT r.reply, r.result INTO reply, result
	  FROM saga_participant.run_step(run_batch_step.coordinator, run_batch_step.gid,
									 run_batch_step.step, run_batch_step.op, run_batch_step.sql,
									 run_batch_step.expect_rows, run_batch_step.result_sql,
									 run_batch_step.results, run_batch_step.max_result_size,
									 run_batch_step.step_name, run_batch_step.statements,
									 run_batch_step.statement_args, run_batch_step.arg_values) AS r;
	IF EXISTS (SELECT FROM pg_catalog.pg_constraint WHERE condeferrable) THEN
		SET CONSTRAINTS ALL IMMEDIATE;
		SELECT pg_catalog.string_agg(pg_catalog.format('%I.%I', n.nspname, c.conname), ', ')
		  INTO initially_deferred
		  FROM pg_catalog.pg_constraint c
		  JOIN pg_catalog.pg_namespace n ON n.oid = c.connamespace
		 WHERE c.condeferred;
		IF initially_deferred IS NOT NULL THEN
			EXECUTE 'SET CONSTRAINTS ' || initially_deferred || ' DEFERRED';
		END IF;
	END IF;
	IF pg_catalog.current_setting('transaction_read_only') <> was_read_only THEN
		RAISE EXCEPTION 'step % made the transaction read-only: it runs alone', run_batch_step.step
			USING ERRCODE = '25006';
	END IF;
END
$run_batch_step$;
GRANT EXECUTE ON FUNCTION saga_participant.run_batch_step(text, text, int, text, text, bigint,
														  text, text, int, text, text[], text[],
														  text[]) TO PUBLIC;

-- run_batch_step() binding no value (a coordinator of pg_saga 1.5 before bound values)
CREATE OR REPLACE FUNCTION saga_participant.run_batch_step(
	coordinator text, gid text, step int, op text, sql text, expect_rows bigint,
	result_sql text, results text, max_result_size int, step_name text,
	OUT reply text, OUT result jsonb)
LANGUAGE sql SECURITY INVOKER
AS $run_batch_step_1_5$
	SELECT r.reply, r.result
	  FROM saga_participant.run_batch_step(coordinator, gid, step, op, sql, expect_rows,
										   result_sql, results, max_result_size, step_name,
										   NULL::text[], NULL::text[], NULL::text[]) AS r
$run_batch_step_1_5$;
GRANT EXECUTE ON FUNCTION saga_participant.run_batch_step(text, text, int, text, text, bigint,
														  text, text, int, text) TO PUBLIC;

/*
 * What the session has open that a step may have left: cursors (but the
 * unnamed portal running this very call) and prepared statements (but the
 * worker's own), named; NULL if none.
 */
CREATE OR REPLACE FUNCTION saga_participant.left_open()
RETURNS text
LANGUAGE plpgsql STABLE SECURITY INVOKER
AS $left_open$
BEGIN
	-- PL/pgSQL, not SQL: its plan is kept for the session, not made per call
	RETURN (SELECT pg_catalog.string_agg(what, ', ')
			  FROM (SELECT pg_catalog.format('cursor %I', name) AS what
					  FROM pg_catalog.pg_cursors WHERE name <> ''
					UNION ALL
					SELECT pg_catalog.format('prepared statement %I', name)
					  FROM pg_catalog.pg_prepared_statements
					 WHERE name NOT LIKE 'pgsaga\_%') AS o);
END
$left_open$;
GRANT EXECUTE ON FUNCTION saga_participant.left_open() TO PUBLIC;

/*
 * The steps of a batch, as coordinators since pg_saga 1.7 send batches: one
 * statement for many steps, in the transaction of that statement, each step
 * in a subtransaction of its own (an exception block).  Element i of each
 * array is run_step()'s argument of step i (steps, expect_rows and
 * max_result_sizes as text; statements, statement_args and arg_values as the
 * text of their own arrays); timeouts are each step's own, in ms.  Returns a
 * row per step it ran, in order: its index, run_step()'s answer, or the
 * error that rolled that step back, barrier record included; whether the
 * allowance cut it (below); and how long it ran, in ms.
 *
 * What makes a step's fate its own when it shares a transaction with others
 * (SPEC, "Batches"):
 *   - it never waits on a row lock (held by another batch, say, which may
 *     wait on this one): it gives up at once with 55P03 and the worker
 *     sends it again alone;
 *   - the constraint checks it deferred run at its end, as its own commit
 *     would run them, and every constraint is back to its declared timing
 *     before the next step;
 *   - a step that made the transaction read-only (which nothing can undo
 *     but its own rollback) fails with 25006 and is sent again alone;
 *   - nothing it set reaches the next step: its settings and role are reset
 *     and its session advisory locks and temporary tables go, as
 *     clean_session() does for a step alone; what this function cannot
 *     afford to look for after every step (an open cursor, a prepared
 *     statement) is looked for once at the end, and after a step that
 *     failed (before its cleaning removes it), and a batch that has one
 *     fails as a whole (0A000): nothing of it took effect, and the worker
 *     sends its steps again alone, where clean_session() removes it;
 *   - a step that runs longer than its own timeout fails with 57014 once it
 *     ends (it is cut short below, at the latest).
 *
 * The statement runs under a statement_timeout that the worker sets to
 * what a step may hold its batch-mates (its allowance).  When it fires, the
 * step running is rolled back and answered with cut = true, and the
 * function returns at once: the steps before it take effect with the
 * statement, and the worker sends that step and the ones after it again
 * (see src/remote.c).  A 57014 raised sooner (by the step itself, or by a
 * cancel of the statement) is the step's own error: the timer's is told
 * by the time since statement_timestamp(), which the worker makes exact by
 * sending the statement as query text.
 */
CREATE OR REPLACE FUNCTION saga_participant.run_steps(
	coordinators text[], gids text[], steps text[], ops text[], sqls text[], expect_rows text[],
	result_sqls text[], results text[], max_result_sizes text[], step_names text[],
	statements text[], statement_args text[], arg_values text[], timeouts text[])
RETURNS TABLE (i int, reply text, result jsonb, error_sqlstate text, error_message text,
			   error_detail text, error_hint text, error_context text, cut boolean, ms float8)
LANGUAGE plpgsql SECURITY INVOKER
AS $run_steps$
DECLARE
	step_started timestamptz;
	worker_timeout text := pg_catalog.current_setting('statement_timeout');
	worker_check_interval text := pg_catalog.current_setting('client_connection_check_interval', true);
	allowance interval := pg_catalog.current_setting('statement_timeout')::interval;
	was_read_only text := pg_catalog.current_setting('transaction_read_only');
	has_deferrable boolean;
	initially_deferred text;
	has_temp boolean;
	left_open text;
	fresh boolean;
	n bigint;
	step_statements text[];
	step_refs text[];
	last_one int;
BEGIN
	SELECT pg_catalog.bool_or(c.condeferrable),
		   pg_catalog.string_agg(pg_catalog.format('%I.%I', n.nspname, c.conname), ', ')
			   FILTER (WHERE c.condeferred)
	  INTO has_deferrable, initially_deferred
	  FROM pg_catalog.pg_constraint c
	  JOIN pg_catalog.pg_namespace n ON n.oid = c.connamespace
	 WHERE c.condeferrable;
	PERFORM pg_catalog.set_config('lock_timeout', '1ms', true),
			pg_catalog.set_config('saga_participant.in_batch', 'on', true);
	FOR k IN 1 .. coalesce(pg_catalog.cardinality(gids), 0) LOOP
		i := k;
		reply := NULL;
		result := NULL;
		error_sqlstate := NULL;
		error_message := NULL;
		error_detail := NULL;
		error_hint := NULL;
		error_context := NULL;
		cut := false;
		step_started := pg_catalog.clock_timestamp();
		BEGIN
			/*
			 * The common step (an action that keeps no result, of SQL text
			 * or of statements that bind values) taking effect for the
			 * first time: what run_step() does for it, here, without the
			 * cost of a call (a fifth of a step's).  A repeat, and every
			 * other step, goes to run_step().
			 */
			fresh := false;
			step_statements := statements[k]::text[];
			step_refs := statement_args[k]::text[];
			last_one := coalesce(pg_catalog.cardinality(step_statements), 0);
			IF ops[k] = 'action' AND result_sqls[k] IS NULL
			   AND (statements[k] IS NULL OR last_one > 0) THEN
				PERFORM pg_catalog.set_config('saga.gid', gids[k], true),
						pg_catalog.set_config('saga.step', steps[k], true),
						pg_catalog.set_config('saga.results', coalesce(results[k], '{}'), true);
				INSERT INTO saga_participant.barrier AS b (coordinator, gid, step, op, origin)
				VALUES (coordinators[k], gids[k], steps[k]::int, 'action', 'action')
				ON CONFLICT DO NOTHING;
				fresh := FOUND;
			END IF;
			IF fresh THEN
				IF statements[k] IS NULL THEN
					EXECUTE sqls[k];
					GET DIAGNOSTICS n = ROW_COUNT;
				ELSE
					PERFORM pg_catalog.set_config('saga_participant.args',
												  coalesce(arg_values[k]::text[], '{}')::text, true);
					n := saga_participant.run_bound(step_statements, step_refs,
						expect_rows[k] IS NOT NULL AND step_refs[last_one] <> '{}');
				END IF;
				IF expect_rows[k] IS NOT NULL AND n <> expect_rows[k]::bigint THEN
					RAISE EXCEPTION 'step % expected % row(s) but its last statement reported %',
						steps[k], expect_rows[k], n
						USING ERRCODE = '21000';
				END IF;
				reply := 'done';
			ELSE
				SELECT r.reply, r.result INTO reply, result
				  FROM saga_participant.run_step(coordinators[k], gids[k], steps[k]::int, ops[k],
												 sqls[k], expect_rows[k]::bigint, result_sqls[k],
												 results[k], max_result_sizes[k]::int, step_names[k],
												 statements[k]::text[], statement_args[k]::text[],
												 arg_values[k]::text[]) AS r;
			END IF;
			IF has_deferrable THEN
				SET CONSTRAINTS ALL IMMEDIATE;
				IF initially_deferred IS NOT NULL THEN
					EXECUTE 'SET CONSTRAINTS ' || initially_deferred || ' DEFERRED';
				END IF;
			END IF;
			IF pg_catalog.current_setting('transaction_read_only') <> was_read_only THEN
				RAISE EXCEPTION 'step % made the transaction read-only: it runs alone', steps[k]
					USING ERRCODE = '25006';
			END IF;
			IF timeouts[k]::int > 0 AND pg_catalog.clock_timestamp() - step_started >
			   pg_catalog.make_interval(secs => timeouts[k]::int / 1000.0) THEN
				RAISE EXCEPTION 'canceling statement due to statement timeout'
					USING ERRCODE = '57014',
						  DETAIL = pg_catalog.format('Step %s ran for longer than its timeout (%s ms).',
													 steps[k], timeouts[k]);
			END IF;
			-- what a step alone finds cleaned by run_step (see clean_session)
			RESET ALL;
			SELECT pg_catalog.set_config('role', 'none', false) IS NULL
				   OR pg_catalog.set_config('statement_timeout', worker_timeout, false) IS NULL
				   OR CASE WHEN worker_check_interval IS NOT NULL THEN pg_catalog.set_config(
						  'client_connection_check_interval', worker_check_interval, false) END IS NULL
				   OR pg_catalog.set_config('lock_timeout', '1ms', true) IS NULL
				   OR pg_catalog.set_config('saga_participant.in_batch', 'on', true) IS NULL
				   OR pg_catalog.pg_advisory_unlock_all() IS NULL,
				   pg_catalog.pg_my_temp_schema() <> 0
			  INTO has_temp, has_temp;
			IF has_temp THEN
				DISCARD TEMP;
			END IF;
		-- every error, those OTHERS leaves out included
		EXCEPTION WHEN query_canceled OR assert_failure OR others THEN
			GET STACKED DIAGNOSTICS error_sqlstate = RETURNED_SQLSTATE,
				error_message = MESSAGE_TEXT, error_detail = PG_EXCEPTION_DETAIL,
				error_hint = PG_EXCEPTION_HINT, error_context = PG_EXCEPTION_CONTEXT;
			-- the allowance ran out: the statement's timer, not the step's doing
			-- (the worker sends the statement as query text, so its
			-- statement_timestamp() was taken before the timer started)
			cut := error_sqlstate = '57014' AND allowance > '0'::interval AND
				pg_catalog.clock_timestamp() - pg_catalog.statement_timestamp() >= allowance;
			-- the cleaning below would hide what an earlier step left open
			left_open := coalesce(left_open, saga_participant.left_open());
			-- what a rollback does not undo
			PERFORM saga_participant.clean_session(worker_timeout, worker_check_interval),
					pg_catalog.set_config('lock_timeout', '1ms', true),
					pg_catalog.set_config('saga_participant.in_batch', 'on', true);
		END;
		ms := pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() - step_started) * 1000;
		RETURN NEXT;
		EXIT WHEN cut;
	END LOOP;
	-- LISTEN takes effect at commit, for the whole transaction
	UNLISTEN *;
	left_open := coalesce(left_open, saga_participant.left_open());
	IF left_open IS NOT NULL THEN
		RAISE EXCEPTION 'a step of this batch left % open: its steps run again alone', left_open
			USING ERRCODE = '0A000';
	END IF;
END
$run_steps$;
GRANT EXECUTE ON FUNCTION saga_participant.run_steps(text[], text[], text[], text[], text[], text[],
													 text[], text[], text[], text[], text[], text[],
													 text[], text[]) TO PUBLIC;

/*
 * A batch's values, apart (since pg_saga 1.9).  The saga's values are
 * data, never SQL text, and a batch goes as query text (see run_steps()
 * above), so the worker sends the values just before, as the parameter of
 * a statement that keeps them in the session setting
 * saga_participant.batch_values, after a token of the round's own and a
 * colon; the batch's call names only that token.  take_batch_values()
 * answers them (the text of run_steps()' arg_values) and clears the
 * setting; without them (none kept, or another round's) it fails with
 * 08P01, which fails the batch's statement as a whole, and the worker
 * sends its steps alone, each with its values as parameters.
 */
CREATE OR REPLACE FUNCTION saga_participant.take_batch_values(values_token text)
RETURNS text[]
LANGUAGE plpgsql SECURITY INVOKER
AS $take_batch_values$
DECLARE
	kept text := pg_catalog.current_setting('saga_participant.batch_values', true);
BEGIN
	PERFORM pg_catalog.set_config('saga_participant.batch_values', '', false);
	IF kept IS NULL OR pg_catalog.strpos(kept, ':') = 0
	   OR pg_catalog.split_part(kept, ':', 1) IS DISTINCT FROM values_token THEN
		RAISE EXCEPTION 'the values of this batch are not in the session'
			USING ERRCODE = '08P01',
				  DETAIL = 'The worker sets them just before the batch, in the same session.',
				  HINT = 'A pooler that moves statements between sessions cannot carry batches with values.';
	END IF;
	RETURN pg_catalog.substr(kept, pg_catalog.length(values_token) + 2)::text[];
END
$take_batch_values$;
GRANT EXECUTE ON FUNCTION saga_participant.take_batch_values(text) TO PUBLIC;

/*
 * run_steps() with the batch's values apart, as the 1.9 worker calls it
 * for steps that bind values.  SQL, not PL/pgSQL: RETURN QUERY would hold
 * a cursor open (before PostgreSQL 14) that run_steps() takes for one a
 * step left.  Objects set up before 1.9 lack this form: a call of it fails
 * there with 42883, and the worker sends the steps alone.
 */
CREATE OR REPLACE FUNCTION saga_participant.run_steps(
	coordinators text[], gids text[], steps text[], ops text[], sqls text[], expect_rows text[],
	result_sqls text[], results text[], max_result_sizes text[], step_names text[],
	statements text[], statement_args text[], timeouts text[], values_token text)
RETURNS TABLE (i int, reply text, result jsonb, error_sqlstate text, error_message text,
			   error_detail text, error_hint text, error_context text, cut boolean, ms float8)
LANGUAGE sql SECURITY INVOKER
AS $run_steps_apart$
	SELECT * FROM saga_participant.run_steps(coordinators, gids, steps, ops, sqls, expect_rows,
											 result_sqls, results, max_result_sizes, step_names,
											 statements, statement_args,
											 saga_participant.take_batch_values(values_token), timeouts)
$run_steps_apart$;
GRANT EXECUTE ON FUNCTION saga_participant.run_steps(text[], text[], text[], text[], text[], text[],
													 text[], text[], text[], text[], text[], text[],
													 text[], text) TO PUBLIC;

-- run_batch() as coordinators before pg_saga 1.4 call it
CREATE OR REPLACE FUNCTION saga_participant.run_batch(
	coordinator text, gids text[], steps int[], ops text[], sqls text[], expect_rows bigint[])
RETURNS TABLE (reply text, error_sqlstate text, error_message text, error_detail text,
			   error_hint text, error_context text)
LANGUAGE sql SECURITY INVOKER
AS $run_batch_1_3$
	SELECT b.reply, b.error_sqlstate, b.error_message, b.error_detail, b.error_hint, b.error_context
	  FROM saga_participant.run_batch(coordinator, gids, steps, ops, sqls, expect_rows,
									  NULL, NULL, NULL, NULL) AS b
$run_batch_1_3$;
GRANT EXECUTE ON FUNCTION saga_participant.run_batch(text, text[], int[], text[], text[], bigint[])
	TO PUBLIC;

/* ---- AT mode ----------------------------------------------------------
 *
 * In mode at the user writes only the action; the participant records what
 * it changed and can put it back.  A trigger, saga_at_capture, on every
 * enabled table (saga_participant.at_enable) writes, for each row an at
 * step inserts, updates or deletes, one row of at_undo: the table, the
 * primary key before and after, and the row's before- and after-image as
 * jsonb, in the order of change (seq).  Outside an at step the trigger
 * looks up one setting and returns.
 *
 * While the saga is not final, every row it changed is reserved in at_lock,
 * keyed by table and primary key: another at saga's step that changes it
 * fails with SQLSTATE 40001, which the coordinator retries with backoff.
 *
 * The coordinator calls:
 *   run_at(..., 'action', sql)       the action, behind the barrier, with
 *                                    recording on; then every table the
 *                                    transaction changed must be enabled
 *   run_at(..., 'compensation', _)   at_restore() behind the barrier: the
 *                                    step's rows put back in reverse order,
 *                                    each checked against its after-image
 *   at_forget(coordinator, gid)      once the saga succeeded: its undo
 *                                    records and reservations go
 * at_undo and at_lock are private to the role that wrote them (row-level
 * security), as the barrier is.
 */
CREATE TABLE IF NOT EXISTS saga_participant.at_undo (
	coordinator	text NOT NULL,
	owner		name NOT NULL DEFAULT current_user,
	gid			text NOT NULL,
	step		int NOT NULL,
	seq			bigserial,
	tab			regclass NOT NULL,
	op			text NOT NULL,
	key_before	jsonb,			-- NULL for an insert
	key_after	jsonb,			-- NULL for a delete
	before		jsonb,
	after		jsonb,
	created_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (coordinator, owner, gid, step, seq)
);
ALTER TABLE saga_participant.at_undo ENABLE ROW LEVEL SECURITY;
ALTER TABLE saga_participant.at_undo FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS at_undo_own ON saga_participant.at_undo;
CREATE POLICY at_undo_own ON saga_participant.at_undo
	USING (owner = current_user) WITH CHECK (owner = current_user);
REVOKE ALL ON saga_participant.at_undo FROM PUBLIC;
GRANT SELECT, INSERT, DELETE ON saga_participant.at_undo TO PUBLIC;
GRANT USAGE ON SEQUENCE saga_participant.at_undo_seq_seq TO PUBLIC;

CREATE TABLE IF NOT EXISTS saga_participant.at_lock (
	tab			regclass NOT NULL,
	key			jsonb NOT NULL,
	coordinator	text NOT NULL,
	owner		name NOT NULL DEFAULT current_user,
	gid			text NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tab, key)
);
CREATE INDEX IF NOT EXISTS at_lock_saga ON saga_participant.at_lock (coordinator, owner, gid);
ALTER TABLE saga_participant.at_lock ENABLE ROW LEVEL SECURITY;
ALTER TABLE saga_participant.at_lock FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS at_lock_own ON saga_participant.at_lock;
-- a reservation blocks at sagas on the row: only a role that may change the
-- table can make one
CREATE POLICY at_lock_own ON saga_participant.at_lock
	USING (owner = current_user)
	WITH CHECK (owner = current_user AND
				pg_catalog.has_table_privilege(tab, 'INSERT, UPDATE, DELETE'));
REVOKE ALL ON saga_participant.at_lock FROM PUBLIC;
GRANT SELECT, INSERT, DELETE ON saga_participant.at_lock TO PUBLIC;

/*
 * Reserves row key of table tab for at saga gid, or raises 40001 if another
 * at saga holds it.  The primary key of at_lock decides: a concurrent
 * reservation of the same row waits for the other transaction and then
 * sees its row.  A reservation of another role is invisible (row-level
 * security) but conflicts all the same.
 */
CREATE OR REPLACE FUNCTION saga_participant.at_reserve(
	tab regclass, key jsonb, coordinator text, gid text)
RETURNS void
LANGUAGE plpgsql SECURITY INVOKER
AS $at_reserve$
DECLARE
	holder_coordinator text;
	holder_gid text;
BEGIN
	INSERT INTO saga_participant.at_lock AS l (tab, key, coordinator, gid)
	VALUES (at_reserve.tab, at_reserve.key, at_reserve.coordinator, at_reserve.gid)
	ON CONFLICT DO NOTHING;
	IF FOUND THEN
		RETURN;
	END IF;
	SELECT l.coordinator, l.gid INTO holder_coordinator, holder_gid
	  FROM saga_participant.at_lock l
	 WHERE l.tab = at_reserve.tab AND l.key = at_reserve.key;
	IF holder_coordinator = at_reserve.coordinator AND holder_gid = at_reserve.gid THEN
		RETURN;					-- reserved by this saga already
	END IF;
	RAISE EXCEPTION 'row % of table % is reserved by at saga %', at_reserve.key, at_reserve.tab,
		coalesce('"' || holder_gid || '"', 'of another role')
		USING ERRCODE = '40001',
			  DETAIL = 'An at saga that is not final holds every row it changed.',
			  HINT = 'The step is retried; it goes through once that saga is final.';
END
$at_reserve$;
GRANT EXECUTE ON FUNCTION saga_participant.at_reserve(regclass, jsonb, text, text) TO PUBLIC;

/*
 * A row's image.  jsonb holds values of most types in their text form,
 * which depends on session settings: those are pinned here and in
 * at_restore() (SET clauses, which apply inside the function only), so the
 * images made in an action compare equal to those made in its restore,
 * whatever the action set, and read back as the same values.
 */
CREATE OR REPLACE FUNCTION saga_participant.at_image(r anyelement)
RETURNS jsonb
LANGUAGE sql STABLE
SET TimeZone = 'UTC' SET IntervalStyle = 'postgres' SET extra_float_digits = 3
SET DateStyle = 'ISO, MDY' SET bytea_output = 'hex'
AS $at_image$
	SELECT pg_catalog.to_jsonb(r)
$at_image$;
GRANT EXECUTE ON FUNCTION saga_participant.at_image(anyelement) TO PUBLIC;

/*
 * The trigger of enabled tables (AFTER INSERT OR UPDATE OR DELETE, FOR EACH
 * ROW); its arguments are the table's primary key columns.  Does something
 * only while saga_participant.at holds "<step> <coordinator> <gid>", which
 * run_at() sets for the action of an at step, with the role that runs the
 * step in saga_participant.at_role.  A change made under another role (in a
 * SECURITY DEFINER function, after SET ROLE) is refused: its records would
 * belong to that role, and the restore, which runs as the step's role,
 * would never see them.
 */
CREATE OR REPLACE FUNCTION saga_participant.at_capture()
RETURNS trigger
LANGUAGE plpgsql SECURITY INVOKER
AS $at_capture$
DECLARE
	ctx text := current_setting('saga_participant.at', true);
	at_step int;
	at_coordinator text;
	at_gid text;
	old_image jsonb;
	new_image jsonb;
	old_key jsonb;
	new_key jsonb;
BEGIN
	IF ctx IS NULL OR ctx = '' THEN
		RETURN NULL;
	END IF;
	IF current_user <> current_setting('saga_participant.at_role', true) THEN
		RAISE EXCEPTION 'at step % changed table % as role %, not as role %, which runs the step',
			pg_catalog.split_part(ctx, ' ', 1), TG_RELID::regclass, current_user,
			current_setting('saga_participant.at_role', true)
			USING ERRCODE = '0A000',
				  DETAIL = 'Rows changed under another role (in a SECURITY DEFINER function, after SET ROLE) could not be restored; nothing of the step took effect.',
				  HINT = 'Change the rows of enabled tables as the role that runs the step: make the function SECURITY INVOKER, or leave SET ROLE out of the action.';
	END IF;
	at_step := pg_catalog.split_part(ctx, ' ', 1)::int;
	at_coordinator := pg_catalog.split_part(ctx, ' ', 2);
	at_gid := pg_catalog.substr(ctx, pg_catalog.length(pg_catalog.split_part(ctx, ' ', 1)) +
								pg_catalog.length(at_coordinator) + 3);
	IF TG_OP <> 'INSERT' THEN
		old_image := saga_participant.at_image(OLD);
		SELECT pg_catalog.jsonb_object_agg(k, old_image -> k) INTO old_key
		  FROM pg_catalog.unnest(TG_ARGV) AS k;
		PERFORM saga_participant.at_reserve(TG_RELID::regclass, old_key, at_coordinator, at_gid);
	END IF;
	IF TG_OP <> 'DELETE' THEN
		new_image := saga_participant.at_image(NEW);
		SELECT pg_catalog.jsonb_object_agg(k, new_image -> k) INTO new_key
		  FROM pg_catalog.unnest(TG_ARGV) AS k;
		IF new_key IS DISTINCT FROM old_key THEN
			PERFORM saga_participant.at_reserve(TG_RELID::regclass, new_key, at_coordinator, at_gid);
		END IF;
	END IF;
	INSERT INTO saga_participant.at_undo
		(coordinator, gid, step, tab, op, key_before, key_after, before, after)
	VALUES (at_coordinator, at_gid, at_step, TG_RELID::regclass, TG_OP, old_key, new_key,
			old_image, new_image);
	RETURN NULL;
END
$at_capture$;
GRANT EXECUTE ON FUNCTION saga_participant.at_capture() TO PUBLIC;

-- TRUNCATE cannot be undone row by row: refused on enabled tables in at steps
CREATE OR REPLACE FUNCTION saga_participant.at_refuse_truncate()
RETURNS trigger
LANGUAGE plpgsql SECURITY INVOKER
AS $at_refuse_truncate$
BEGIN
	IF current_setting('saga_participant.at', true) <> '' THEN
		RAISE EXCEPTION 'an at step cannot truncate table %', TG_RELID::regclass
			USING ERRCODE = '0A000',
				  HINT = 'Use DELETE: at mode restores rows from their images.';
	END IF;
	RETURN NULL;
END
$at_refuse_truncate$;
GRANT EXECUTE ON FUNCTION saga_participant.at_refuse_truncate() TO PUBLIC;

/*
 * Enables table tab for at mode: creates its triggers, with the primary key
 * columns as the capture trigger's arguments.  Run it again after changing
 * the table's primary key.  Needs the rights of CREATE TRIGGER (the table's
 * owner); idempotent.
 */
CREATE OR REPLACE FUNCTION saga_participant.at_enable(tab regclass)
RETURNS void
LANGUAGE plpgsql SECURITY INVOKER
AS $at_enable$
DECLARE
	keys text[];
	kind "char";
BEGIN
	SELECT c.relkind INTO kind FROM pg_catalog.pg_class c WHERE c.oid = at_enable.tab;
	IF kind NOT IN ('r', 'p') THEN
		RAISE EXCEPTION '% is not a table', at_enable.tab
			USING ERRCODE = '42809',
				  HINT = 'Only tables can take part in at mode.';
	END IF;
	SELECT pg_catalog.array_agg(a.attname::text ORDER BY k.ord) INTO keys
	  FROM pg_catalog.pg_index i
	 CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
	  JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
	 WHERE i.indrelid = at_enable.tab AND i.indisprimary;
	IF keys IS NULL THEN
		RAISE EXCEPTION 'table % has no primary key', at_enable.tab
			USING ERRCODE = '42P16',
				  DETAIL = 'at mode finds the rows it restores by their primary key.',
				  HINT = 'Add a primary key to the table, then enable it again.';
	END IF;
	IF EXISTS (SELECT FROM pg_catalog.pg_trigger t
				WHERE t.tgrelid = at_enable.tab AND t.tgname = 'saga_at_capture') THEN
		EXECUTE pg_catalog.format('DROP TRIGGER saga_at_capture ON %s', at_enable.tab);
	END IF;
	EXECUTE pg_catalog.format(
		'CREATE TRIGGER saga_at_capture AFTER INSERT OR UPDATE OR DELETE ON %s '
		'FOR EACH ROW EXECUTE FUNCTION saga_participant.at_capture(%s)',
		at_enable.tab, (SELECT pg_catalog.string_agg(pg_catalog.quote_literal(k), ', ')
						  FROM pg_catalog.unnest(keys) AS k));
	IF EXISTS (SELECT FROM pg_catalog.pg_trigger t
				WHERE t.tgrelid = at_enable.tab AND t.tgname = 'saga_at_truncate') THEN
		EXECUTE pg_catalog.format('DROP TRIGGER saga_at_truncate ON %s', at_enable.tab);
	END IF;
	EXECUTE pg_catalog.format(
		'CREATE TRIGGER saga_at_truncate BEFORE TRUNCATE ON %s '
		'FOR EACH STATEMENT EXECUTE FUNCTION saga_participant.at_refuse_truncate()',
		at_enable.tab);
END
$at_enable$;
GRANT EXECUTE ON FUNCTION saga_participant.at_enable(regclass) TO PUBLIC;

/*
 * The rows inserted, updated or deleted in each table that the session
 * counted but has not yet reported to the statistics (pg_stat_xact_*: the
 * current transaction's, and those of earlier ones not yet flushed), as
 * jsonb {"table oid": count}.  What an action changed is the difference of
 * two of these, taken before and after it: whatever changed the rows, the
 * action's statements, triggers or cascades.
 */
CREATE OR REPLACE FUNCTION saga_participant.at_change_counts()
RETURNS jsonb
LANGUAGE plpgsql STABLE				-- not sql: PL/pgSQL keeps the plan
AS $at_change_counts$
BEGIN
	RETURN (SELECT coalesce(pg_catalog.jsonb_object_agg(c.oid::text, n), '{}')
	  FROM pg_catalog.pg_class c
	 CROSS JOIN LATERAL (SELECT pg_catalog.pg_stat_get_xact_tuples_inserted(c.oid) +
								pg_catalog.pg_stat_get_xact_tuples_updated(c.oid) +
								pg_catalog.pg_stat_get_xact_tuples_deleted(c.oid) AS n) AS x
	 WHERE c.relkind = 'r' AND c.relpersistence <> 't' AND x.n > 0
	   -- not the catalogs (pg_catalog, pg_toast: fixed oids), nor this schema;
	   -- oids, not regnamespace casts, which would be looked up per row
	   AND c.relnamespace <> ALL (ARRAY[11, 99, (SELECT n.oid FROM pg_catalog.pg_namespace n
												  WHERE n.nspname = 'saga_participant')]::oid[]));
END
$at_change_counts$;
GRANT EXECUTE ON FUNCTION saga_participant.at_change_counts() TO PUBLIC;

/*
 * Raises if the action changed a table that is not enabled for at mode (or
 * has no primary key), naming it; before is at_change_counts() from before
 * the action.  A table counts as changed if its counters rose and the
 * transaction still holds a ROW EXCLUSIVE lock on it: the counters count
 * changes a subtransaction rolled back too (an exception block in the
 * action), but that released the locks it took.  Also raises if the
 * transaction holds an ACCESS EXCLUSIVE lock on a table that is not
 * temporary: TRUNCATE, ALTER TABLE and the like, which the counters do not
 * show and a restore cannot undo.
 */
CREATE OR REPLACE FUNCTION saga_participant.at_check_tables(step int, before jsonb)
RETURNS void
LANGUAGE plpgsql SECURITY INVOKER
AS $at_check_tables$
DECLARE
	bad regclass;
	has_key boolean;
BEGIN
	IF NOT current_setting('track_counts')::boolean THEN
		RAISE EXCEPTION 'at mode needs track_counts on the participant'
			USING ERRCODE = '55000',
				  HINT = 'Set track_counts = on (the default) on the participant.';
	END IF;
	SELECT c.oid::regclass INTO bad
	  FROM pg_catalog.pg_locks l
	  JOIN pg_catalog.pg_class c ON c.oid = l.relation
	 WHERE l.locktype = 'relation' AND l.pid = pg_catalog.pg_backend_pid()
	   AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d
						  WHERE d.datname = pg_catalog.current_database())
	   AND l.mode = 'AccessExclusiveLock' AND l.granted
	   AND c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
	 ORDER BY c.oid::regclass::text
	 LIMIT 1;
	IF bad IS NOT NULL THEN
		RAISE EXCEPTION 'at step % took an ACCESS EXCLUSIVE lock on table %, which at mode cannot undo', step, bad
			USING ERRCODE = '0A000',
				  DETAIL = 'TRUNCATE, ALTER TABLE and other DDL of a table cannot be restored from row images; nothing of the step took effect.',
				  HINT = 'Use DELETE instead of TRUNCATE, and leave DDL out of at actions (temporary tables excepted).';
	END IF;
	SELECT c.oid::regclass,
		   EXISTS (SELECT FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
	  INTO bad, has_key
	  FROM pg_catalog.jsonb_each_text(saga_participant.at_change_counts()) AS now_counts(rel, n)
	  JOIN pg_catalog.pg_class c ON c.oid = now_counts.rel::oid
	 WHERE now_counts.n::bigint > coalesce((at_check_tables.before ->> now_counts.rel)::bigint, 0)
	   AND EXISTS (SELECT FROM pg_catalog.pg_locks l
					WHERE l.locktype = 'relation' AND l.pid = pg_catalog.pg_backend_pid()
					  AND l.relation = c.oid AND l.mode = 'RowExclusiveLock' AND l.granted)
	   AND NOT EXISTS (SELECT FROM pg_catalog.pg_trigger t
						WHERE t.tgrelid = c.oid AND t.tgname = 'saga_at_capture'
						  AND t.tgenabled IN ('O', 'A'))
	 ORDER BY c.oid::regclass::text
	 LIMIT 1;
	IF bad IS NULL THEN
		RETURN;
	END IF;
	IF NOT has_key THEN
		RAISE EXCEPTION 'table % has no primary key, so an at step cannot change it', bad
			USING ERRCODE = '42P16',
				  DETAIL = pg_catalog.format('Step %s changed it; nothing of the step took effect.', step),
				  HINT = 'Add a primary key, then enable the table with saga_participant.at_enable() or saga.setup_participant(target, at_tables => ...).';
	END IF;
	RAISE EXCEPTION 'table % is not enabled for at mode', bad
		USING ERRCODE = '55000',
			  DETAIL = pg_catalog.format('Step %s changed it; nothing of the step took effect.', step),
			  HINT = pg_catalog.format('Enable it with SELECT saga_participant.at_enable(%L) on the participant, or saga.setup_participant(target, at_tables => ...) on the coordinator.', bad::text);
END
$at_check_tables$;
GRANT EXECUTE ON FUNCTION saga_participant.at_check_tables(int, jsonb) TO PUBLIC;

/*
 * A value for a message: jsonb text, cut after 40 characters.
 */
CREATE OR REPLACE FUNCTION saga_participant.at_show(value jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE
AS $at_show$
	SELECT CASE WHEN value IS NULL THEN 'absent'
				WHEN pg_catalog.length(value::text) > 40
				THEN pg_catalog.left(value::text, 40) || '...'
				ELSE value::text END
$at_show$;
GRANT EXECUTE ON FUNCTION saga_participant.at_show(jsonb) TO PUBLIC;

/*
 * Restores the rows step changed, in reverse order of change: deletes what
 * it inserted, inserts again what it deleted, puts back the columns it
 * updated.  Before each, the row must still be as the step left it (its
 * after-image; for a deleted row: absent); if not, this is a dirty
 * rollback: SQLSTATE 55000 (a business failure: the coordinator stops the
 * saga as failed), and the error rolls back all of this step's restore,
 * barrier record included, so saga.retry() runs it again whole.  Then the
 * step's undo
 * records go, and the saga's reservations that no undo record of it needs
 * any more.  Returns the number of rows restored.  A row that another step
 * of the saga changed later (steps with no dependency between them) is
 * restored by that step first: until then, SQLSTATE 40001, which the
 * coordinator retries.
 */
CREATE OR REPLACE FUNCTION saga_participant.at_restore(coordinator text, gid text, step int)
RETURNS bigint
LANGUAGE plpgsql SECURITY INVOKER
SET TimeZone = 'UTC' SET IntervalStyle = 'postgres' SET extra_float_digits = 3
SET DateStyle = 'ISO, MDY' SET bytea_output = 'hex'		-- as at_image()
AS $at_restore$
DECLARE
	u record;
	key_cols text[];
	cols text[];
	key_match text;
	now_image jsonb;
	differs text;
	later_step int;
	n bigint := 0;
BEGIN
	FOR u IN
		SELECT x.* FROM saga_participant.at_undo x
		 WHERE x.coordinator = at_restore.coordinator AND x.owner = current_user
		   AND x.gid = at_restore.gid AND x.step = at_restore.step
		 ORDER BY x.seq DESC
	LOOP
		key_cols := ARRAY(SELECT pg_catalog.jsonb_object_keys(coalesce(u.key_after, u.key_before)));
		SELECT pg_catalog.string_agg(pg_catalog.format('pgsaga_row.%1$I = pgsaga_key.%1$I', c), ' AND ')
		  INTO key_match FROM pg_catalog.unnest(key_cols) AS c;
		-- the row as it is now, under the key the step left it with
		EXECUTE pg_catalog.format(
			'SELECT pg_catalog.to_jsonb(pgsaga_row) FROM %1$s pgsaga_row, '
			'pg_catalog.jsonb_populate_record(NULL::%1$s, $1) pgsaga_key '
			'WHERE %2$s FOR UPDATE OF pgsaga_row', u.tab, key_match)
			INTO now_image USING coalesce(u.key_after, u.key_before);
		-- another step of the saga that changed the row later goes first;
		-- looked up with the row locked, so an action that changed it and
		-- committed meanwhile is seen
		SELECT x.step INTO later_step FROM saga_participant.at_undo x
		 WHERE x.coordinator = at_restore.coordinator AND x.owner = current_user
		   AND x.gid = at_restore.gid AND x.step <> at_restore.step
		   AND x.tab = u.tab AND x.seq > u.seq
		   AND (x.key_before = coalesce(u.key_after, u.key_before) OR
				x.key_after = coalesce(u.key_after, u.key_before))
		 ORDER BY x.seq DESC LIMIT 1;
		IF FOUND THEN
			RAISE EXCEPTION 'row % of table % was changed by step % of at saga % after step %, so step % is restored first',
				coalesce(u.key_after, u.key_before), u.tab, later_step, '"' || at_restore.gid || '"',
				at_restore.step, later_step
				USING ERRCODE = '40001',
					  DETAIL = 'Steps that changed the same row are restored in the reverse order of their changes.',
					  HINT = 'The restore is retried; it goes through once that step is restored.';
		END IF;
		IF now_image IS DISTINCT FROM u.after THEN
			IF now_image IS NULL THEN
				differs := 'it was deleted since';
			ELSIF u.after IS NULL THEN
				differs := 'it was inserted again since';
			ELSE
				SELECT pg_catalog.string_agg(pg_catalog.format('%s is %s, the step left %s', c,
						   saga_participant.at_show(now_image -> c),
						   saga_participant.at_show(u.after -> c)), '; ' ORDER BY c)
				  INTO differs
				  FROM pg_catalog.jsonb_object_keys(now_image || u.after) AS c
				 WHERE (now_image -> c) IS DISTINCT FROM (u.after -> c);
			END IF;
			RAISE EXCEPTION 'dirty rollback: row % of table % changed since step % of at saga % changed it: %',
				coalesce(u.key_after, u.key_before), u.tab, at_restore.step,
				'"' || at_restore.gid || '"', differs
				USING ERRCODE = '55000',
					  DETAIL = 'Nothing of the step was restored.',
					  HINT = 'Reconcile the row by hand (the image the step found is in saga_participant.at_undo), then call saga.retry() on the coordinator.';
		END IF;
		IF u.op = 'INSERT' THEN
			EXECUTE pg_catalog.format(
				'DELETE FROM %1$s pgsaga_row '
				'USING pg_catalog.jsonb_populate_record(NULL::%1$s, $1) pgsaga_key WHERE %2$s',
				u.tab, key_match) USING u.key_after;
		ELSE
			cols := ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
						   WHERE a.attrelid = u.tab AND a.attnum > 0 AND NOT a.attisdropped
							 AND a.attgenerated = ''
							 AND (u.op = 'DELETE' OR (u.before -> a.attname::text) IS DISTINCT FROM
												   (u.after -> a.attname::text))
						   ORDER BY a.attnum);
			IF u.op = 'DELETE' THEN
				EXECUTE pg_catalog.format(
					'INSERT INTO %1$s (%2$s) OVERRIDING SYSTEM VALUE '
					'SELECT %2$s FROM pg_catalog.jsonb_populate_record(NULL::%1$s, $1)',
					u.tab, (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(c), ', ')
							  FROM pg_catalog.unnest(cols) AS c)) USING u.before;
			ELSIF cardinality(cols) > 0 THEN
				EXECUTE pg_catalog.format(
					'UPDATE %1$s pgsaga_row SET %2$s '
					'FROM pg_catalog.jsonb_populate_record(NULL::%1$s, $1) pgsaga_before, '
					'pg_catalog.jsonb_populate_record(NULL::%1$s, $2) pgsaga_key WHERE %3$s',
					u.tab, (SELECT pg_catalog.string_agg(pg_catalog.format('%1$I = pgsaga_before.%1$I', c), ', ')
							  FROM pg_catalog.unnest(cols) AS c), key_match)
					USING u.before, u.key_after;
			END IF;
		END IF;
		n := n + 1;
	END LOOP;
	DELETE FROM saga_participant.at_undo x
	 WHERE x.coordinator = at_restore.coordinator AND x.owner = current_user
	   AND x.gid = at_restore.gid AND x.step = at_restore.step;
	DELETE FROM saga_participant.at_lock l
	 WHERE l.coordinator = at_restore.coordinator AND l.owner = current_user
	   AND l.gid = at_restore.gid
	   AND NOT EXISTS (SELECT FROM saga_participant.at_undo x
						WHERE x.coordinator = l.coordinator AND x.owner = l.owner
						  AND x.gid = l.gid AND x.tab = l.tab
						  AND (x.key_before = l.key OR x.key_after = l.key));
	RETURN n;
END
$at_restore$;
GRANT EXECUTE ON FUNCTION saga_participant.at_restore(text, text, int) TO PUBLIC;

/*
 * Forgets a saga that succeeded: its undo records and its reservations.
 * Idempotent; called once per participant when the saga is decided.
 */
CREATE OR REPLACE FUNCTION saga_participant.at_forget(coordinator text, gid text)
RETURNS text
LANGUAGE plpgsql SECURITY INVOKER
AS $at_forget$
BEGIN
	DELETE FROM saga_participant.at_undo x
	 WHERE x.coordinator = at_forget.coordinator AND x.owner = current_user
	   AND x.gid = at_forget.gid;
	DELETE FROM saga_participant.at_lock l
	 WHERE l.coordinator = at_forget.coordinator AND l.owner = current_user
	   AND l.gid = at_forget.gid;
	RETURN 'done';
END
$at_forget$;
GRANT EXECUTE ON FUNCTION saga_participant.at_forget(text, text) TO PUBLIC;

/*
 * A call of an at step: as run(), and for the action with recording on and
 * the enabled tables checked afterwards; for the compensation (the
 * rollback), at_restore() behind the barrier.
 */
CREATE OR REPLACE FUNCTION saga_participant.run_at(
	coordinator text, gid text, step int, op text, sql text, expect_rows bigint DEFAULT NULL,
	result_sql text DEFAULT NULL, max_result_size int DEFAULT NULL)
RETURNS TABLE (reply text, result jsonb)
LANGUAGE plpgsql SECURITY INVOKER
AS $run_at$
DECLARE
	counts jsonb;
BEGIN
	IF op = 'action' THEN
		counts := saga_participant.at_change_counts();
		PERFORM pg_catalog.set_config('saga_participant.at_role', current_user, true);
		PERFORM pg_catalog.set_config('saga_participant.at',
									  run_at.step || ' ' || run_at.coordinator || ' ' || run_at.gid,
									  true);
		SELECT r.reply, r.result INTO reply, result
		  FROM saga_participant.run_step(run_at.coordinator, run_at.gid, run_at.step, 'action',
										 run_at.sql, run_at.expect_rows, run_at.result_sql,
										 pg_catalog.current_setting('saga.results', true),
										 run_at.max_result_size) AS r;
		PERFORM pg_catalog.set_config('saga_participant.at', '', true);
		PERFORM pg_catalog.set_config('saga_participant.at_role', '', true);
		IF reply = 'done' THEN
			PERFORM saga_participant.at_check_tables(run_at.step, counts);
		END IF;
		RETURN NEXT;
		RETURN;
	ELSIF op = 'compensation' THEN
		PERFORM pg_catalog.set_config('saga_participant.at', '', true);
		reply := saga_participant.run(run_at.coordinator, run_at.gid, run_at.step, 'compensation',
									  pg_catalog.format('SELECT saga_participant.at_restore(%L, %L, %s)',
														run_at.coordinator, run_at.gid, run_at.step));
		RETURN NEXT;
		RETURN;
	END IF;
	RAISE EXCEPTION 'unknown at operation "%"', op USING ERRCODE = '22023';
END
$run_at$;
GRANT EXECUTE ON FUNCTION saga_participant.run_at(text, text, int, text, text, bigint, text, int)
	TO PUBLIC;

/* ---- Sagas' own records, and forgetting them (since pg_saga 1.5) --------
 *
 * A coordinator of pg_saga 1.5 or later calls every saga it created under a
 * barrier identity of its own, "<coordinator id>:<saga key>", where it
 * passed its coordinator id before: a saga's records are its own, and a
 * later saga that reuses its gid (once the first one was purged) starts
 * clean.  Sagas created before its update keep the coordinator id alone.
 * Once the coordinator purged a saga, its worker calls forget() here for
 * the barrier identities of the sagas purged, in batches.
 */

/*
 * Deletes the calling role's barrier records (and at mode undo records and
 * reservations) of the sagas named by element: those of barrier identity
 * coordinators[i], or, where gids[i] is not NULL (a saga created before
 * pg_saga 1.5, whose identity is its coordinator's), only those of that
 * gid.  The coordinator calls it once the sagas are purged and none of
 * their calls can still arrive.  Returns the number of barrier records
 * deleted; idempotent.
 */
CREATE OR REPLACE FUNCTION saga_participant.forget(coordinators text[], gids text[])
RETURNS bigint
LANGUAGE plpgsql SECURITY INVOKER
AS $forget$
DECLARE
	n bigint;
BEGIN
	DELETE FROM saga_participant.barrier b
	 USING ROWS FROM (pg_catalog.unnest(forget.coordinators), pg_catalog.unnest(forget.gids))
		   AS f(coordinator, gid)
	 WHERE b.coordinator = f.coordinator AND b.owner = current_user
	   AND (f.gid IS NULL OR b.gid = f.gid);
	GET DIAGNOSTICS n = ROW_COUNT;
	DELETE FROM saga_participant.at_undo x
	 USING ROWS FROM (pg_catalog.unnest(forget.coordinators), pg_catalog.unnest(forget.gids))
		   AS f(coordinator, gid)
	 WHERE x.coordinator = f.coordinator AND x.owner = current_user
	   AND (f.gid IS NULL OR x.gid = f.gid);
	DELETE FROM saga_participant.at_lock l
	 USING ROWS FROM (pg_catalog.unnest(forget.coordinators), pg_catalog.unnest(forget.gids))
		   AS f(coordinator, gid)
	 WHERE l.coordinator = f.coordinator AND l.owner = current_user
	   AND (f.gid IS NULL OR l.gid = f.gid);
	RETURN n;
END
$forget$;
GRANT EXECUTE ON FUNCTION saga_participant.forget(text[], text[]) TO PUBLIC;

/* ---- The objects' version (since pg_saga 1.6) --------------------------
 *
 * The version of pg_saga whose pg_saga_participant.sql set these objects up,
 * as the coordinator's extension version ('1.8').  A coordinator's worker
 * reads it once per connection to know which of the functions above the
 * participant has, instead of finding out from a missing function's error;
 * objects set up by an earlier pg_saga have no version(), which tells it
 * as much.  Created last, so that a run of this file that stopped half-way
 * does not claim the newer version.
 */
CREATE OR REPLACE FUNCTION saga_participant.version()
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $version$ SELECT '1.9'::text $version$;
GRANT EXECUTE ON FUNCTION saga_participant.version() TO PUBLIC;
