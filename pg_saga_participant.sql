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
 * Runs one operation of one step behind the barrier and answers what
 * happened: reply 'done', 'duplicate', 'null' (compensation without action)
 * or 'hanging' (action after its compensation), and the operation's result.
 *
 * sql runs first; result_sql, when given, is the statement that ends the
 * operation, rewritten by the coordinator to answer its row count and its
 * rows as a jsonb array (the step's result).  Without it the result is
 * NULL: the last statement returns no rows.  A result is kept with the
 * barrier record, so a repeated call (whose first reply was lost) answers
 * 'duplicate' with the same result; one larger than max_result_size bytes
 * fails with SQLSTATE 54000.  With expect_rows, the last statement must
 * report exactly that many rows, otherwise SQLSTATE 21000.  Either error
 * rolls the whole transaction back, barrier record included.
 *
 * saga.gid, saga.step and saga.results (the results of the steps this one
 * runs after, a jsonb object; '{}' when there are none) are set for the
 * transaction first, so the step's SQL can read them.  A compensation or
 * confirm finds there its own action's result, under step_name: if the
 * coordinator does not know it (the action's reply was lost), it is taken
 * from the action's barrier record.
 */
CREATE OR REPLACE FUNCTION saga_participant.run_step(
	coordinator text, gid text, step int, op text, sql text, expect_rows bigint,
	result_sql text, results text, max_result_size int, step_name text DEFAULT NULL)
RETURNS TABLE (reply text, result jsonb)
LANGUAGE plpgsql SECURITY INVOKER
AS $run_step$
DECLARE
	n bigint;
	size bigint;
	-- the worker's settings, to set again once the step is done
	worker_timeout text := current_setting('statement_timeout');
	worker_check_interval text := current_setting('client_connection_check_interval', true);
BEGIN
	IF op NOT IN ('action', 'compensation', 'confirm') THEN
		RAISE EXCEPTION 'unknown barrier operation "%"', op USING ERRCODE = '22023';
	END IF;
	PERFORM pg_catalog.set_config('saga.gid', run_step.gid, true),
			pg_catalog.set_config('saga.step', run_step.step::text, true),
			pg_catalog.set_config('saga.results', coalesce(run_step.results, '{}'), true);
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
			RETURN NEXT;
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
		RETURN NEXT;
		RETURN;
	END IF;

	IF run_step.result_sql IS NULL THEN
		EXECUTE run_step.sql;
		GET DIAGNOSTICS n = ROW_COUNT;
	ELSE
		IF run_step.sql <> '' THEN
			EXECUTE run_step.sql;
		END IF;
		EXECUTE run_step.result_sql INTO n, result;
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
	PERFORM saga_participant.clean_session(worker_timeout, worker_check_interval);
	reply := 'done';
	RETURN NEXT;
END
$run_step$;
GRANT EXECUTE ON FUNCTION saga_participant.run_step(text, text, int, text, text, bigint, text, text, int, text)
	TO PUBLIC;

/*
 * run_step() without results, as coordinators before pg_saga 1.4 call it
 * (and later ones, for steps that neither return rows nor read results, so
 * that participants set up by an earlier version keep working).
 */
CREATE OR REPLACE FUNCTION saga_participant.run(
	coordinator text, gid text, step int, op text, sql text, expect_rows bigint DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SECURITY INVOKER
AS $run$
DECLARE
	reply text;
BEGIN
	SELECT r.reply INTO reply FROM saga_participant.run_step(run.coordinator, run.gid, run.step, run.op, run.sql, run.expect_rows, NULL, pg_catalog.current_setting('saga.results', true), NULL) AS r;
	RETURN reply;
END
$run$;
GRANT EXECUTE ON FUNCTION saga_participant.run(text, text, int, text, text, bigint) TO PUBLIC;

/*
 * Runs several step operations in one transaction, each in a
 * subtransaction of its own (an exception block), and returns one row per
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
