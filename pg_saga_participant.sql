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
 * saga_participant.run(), which first records (coordinator, owner, gid, step,
 * operation) in the barrier table:
 *   - a repeated call finds its record and does nothing ('duplicate');
 *   - a compensation (or cancel) whose action never took effect records the
 *     action itself as "taken by compensation" and does nothing ('null');
 *     the action, if it arrives later, finds that record and does nothing
 *     ('hanging').
 * Records are keyed by the role that wrote them and row-level security hides
 * other roles' records, so no role can read, pre-empt or forge another's.
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
REVOKE ALL ON saga_participant.barrier FROM PUBLIC;
GRANT SELECT, INSERT, DELETE ON saga_participant.barrier TO PUBLIC;

/*
 * Runs one operation of one step behind the barrier and returns what
 * happened: 'done', 'duplicate', 'null' (compensation without action) or
 * 'hanging' (action after its compensation).  With expect_rows, the last
 * statement of sql must report exactly that many rows, otherwise SQLSTATE
 * 21000 rolls the whole transaction back, barrier record included.
 */
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
				  WHERE name NOT IN ('pgsaga_step', 'pgsaga_batch'))
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

CREATE OR REPLACE FUNCTION saga_participant.run(
	coordinator text, gid text, step int, op text, sql text, expect_rows bigint DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SECURITY INVOKER
AS $run$
DECLARE
	n bigint;
	-- the worker's settings, to set again once the step is done
	worker_timeout text := current_setting('statement_timeout');
	worker_check_interval text := current_setting('client_connection_check_interval', true);
BEGIN
	IF op NOT IN ('action', 'compensation', 'confirm') THEN
		RAISE EXCEPTION 'unknown barrier operation "%"', op USING ERRCODE = '22023';
	END IF;

	IF op = 'compensation' THEN
		-- Claim the action's slot first: if that succeeds the action never
		-- took effect, and the claim also stops it from running later.
		INSERT INTO saga_participant.barrier AS b (coordinator, gid, step, op, origin)
		VALUES (run.coordinator, run.gid, run.step, 'action', 'compensation')
		ON CONFLICT DO NOTHING;
		IF FOUND THEN
			INSERT INTO saga_participant.barrier AS b (coordinator, gid, step, op, origin)
			VALUES (run.coordinator, run.gid, run.step, 'compensation', 'compensation')
			ON CONFLICT DO NOTHING;
			RETURN 'null';
		END IF;
	END IF;

	INSERT INTO saga_participant.barrier AS b (coordinator, gid, step, op, origin)
	VALUES (run.coordinator, run.gid, run.step, run.op, run.op)
	ON CONFLICT DO NOTHING;
	IF NOT FOUND THEN
		IF run.op = 'action' AND EXISTS (
			SELECT 1 FROM saga_participant.barrier b
			 WHERE b.coordinator = run.coordinator AND b.owner = current_user
			   AND b.gid = run.gid AND b.step = run.step
			   AND b.op = 'action' AND b.origin = 'compensation') THEN
			RETURN 'hanging';
		END IF;
		RETURN 'duplicate';
	END IF;

	EXECUTE run.sql;
	GET DIAGNOSTICS n = ROW_COUNT;
	IF run.expect_rows IS NOT NULL AND n <> run.expect_rows THEN
		RAISE EXCEPTION 'step % expected % row(s) but its last statement reported %',
			run.step, run.expect_rows, n
			USING ERRCODE = '21000';
	END IF;
	PERFORM saga_participant.clean_session(worker_timeout, worker_check_interval);
	RETURN 'done';
END
$run$;
GRANT EXECUTE ON FUNCTION saga_participant.run(text, text, int, text, text, bigint) TO PUBLIC;

/*
 * Runs several step operations in one transaction, each in a
 * subtransaction of its own (an exception block), and returns one row per
 * element, in order: run()'s answer, or the SQLSTATE, message, detail, hint
 * and context of the error that rolled that element back, barrier record
 * included.  The
 * worker acts on the answers only once the whole transaction committed; if
 * it did not, no element took effect.  An element that would wait for a
 * lock (held by another batch, say, which may wait on this one) gives up at
 * once with 55P03, and the worker sends it again alone: concurrent batches
 * over the same rows neither deadlock nor queue behind each other.  Every element starts from a clean
 * session (see clean_session), so nothing one step leaves, not even SET
 * LOCAL, reaches the next.
 */
CREATE OR REPLACE FUNCTION saga_participant.run_batch(
	coordinator text, gids text[], steps int[], ops text[], sqls text[], expect_rows bigint[])
RETURNS TABLE (reply text, error_sqlstate text, error_message text, error_detail text,
			   error_hint text, error_context text)
LANGUAGE plpgsql SECURITY INVOKER
AS $run_batch$
DECLARE
	worker_timeout text := current_setting('statement_timeout');
	worker_check_interval text := current_setting('client_connection_check_interval', true);
BEGIN
	FOR i IN 1 .. coalesce(cardinality(gids), 0) LOOP
		reply := NULL;
		error_sqlstate := NULL;
		error_message := NULL;
		error_detail := NULL;
		error_hint := NULL;
		error_context := NULL;
		BEGIN
			-- never wait on a lock for long while holding the batch's others:
			-- a step that would is answered 55P03 and sent again on its own
			PERFORM pg_catalog.set_config('saga.gid', gids[i], true),
					pg_catalog.set_config('saga.step', steps[i]::text, true),
					pg_catalog.set_config('lock_timeout', '1ms', true);
			reply := saga_participant.run(run_batch.coordinator, gids[i], steps[i], ops[i],
										  sqls[i], expect_rows[i]);
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
GRANT EXECUTE ON FUNCTION saga_participant.run_batch(text, text[], int[], text[], text[], bigint[])
	TO PUBLIC;
