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
CREATE OR REPLACE FUNCTION saga_participant.run(
	coordinator text, gid text, step int, op text, sql text, expect_rows bigint DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SECURITY INVOKER
AS $run$
DECLARE
	n bigint;
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
	RETURN 'done';
END
$run$;
GRANT EXECUTE ON FUNCTION saga_participant.run(text, text, int, text, text, bigint) TO PUBLIC;
