-- Sagas run by the worker against the loopback target.

-- A transfer that succeeds; the step SQL sees saga.gid and saga.step.
BEGIN;
SELECT saga.begin('ok-1');
SELECT saga.add_step('ok-1', 'loop',
	action => $$UPDATE account SET balance = balance - 30 WHERE id = 1 AND balance >= 30;
				INSERT INTO ledger VALUES (current_setting('saga.gid'), current_setting('saga.step')::int, -30)$$,
	compensation => $$UPDATE account SET balance = balance + 30 WHERE id = 1$$);
SELECT saga.add_step('ok-1', 'loop',
	action => $$UPDATE account SET balance = balance + 30 WHERE id = 2$$,
	compensation => $$UPDATE account SET balance = balance - 30 WHERE id = 2$$,
	expect_rows => 1);
SELECT saga.submit('ok-1');
-- waiting in the submitting transaction cannot work
SELECT try($$SELECT saga.wait('ok-1')$$);
SELECT saga.status('ok-1');
COMMIT;
SELECT saga.wait('ok-1');
SELECT * FROM account ORDER BY id;
SELECT * FROM ledger ORDER BY gid, step;
SELECT gid, mode, status, steps, steps_done, last_error FROM saga.transactions WHERE gid = 'ok-1';
SELECT gid, step, name, target, status, attempts, last_error, last_sqlstate FROM saga.steps WHERE gid = 'ok-1' ORDER BY step;
SELECT step, event FROM saga.history WHERE gid = 'ok-1' ORDER BY at;
SELECT gid, step, op, origin FROM saga_participant.barrier WHERE gid = 'ok-1' ORDER BY step, op;

-- The second step violates a CHECK constraint: the first is compensated.
BEGIN;
SELECT saga.begin('fail-1');
SELECT saga.add_step('fail-1', 'loop',
	action => $$UPDATE account SET balance = balance - 10 WHERE id = 1$$,
	compensation => $$UPDATE account SET balance = balance + 10 WHERE id = 1$$);
SELECT saga.add_step('fail-1', 'loop',
	action => $$UPDATE account SET balance = balance - 1000 WHERE id = 2$$,
	compensation => $$UPDATE account SET balance = balance + 1000 WHERE id = 2$$);
SELECT saga.submit('fail-1');
COMMIT;
SELECT saga.wait('fail-1');
SELECT * FROM account ORDER BY id;
SELECT gid, status, last_error FROM saga.transactions WHERE gid = 'fail-1';
SELECT step, status, last_sqlstate, last_error FROM saga.steps WHERE gid = 'fail-1' ORDER BY step;
SELECT step, event FROM saga.history WHERE gid = 'fail-1' ORDER BY at;
SELECT gid, step, op, origin FROM saga_participant.barrier WHERE gid = 'fail-1' ORDER BY step, op;

-- expect_rows: the action matched no row, so it failed with 21000.
BEGIN;
SELECT saga.begin('rows-1');
SELECT saga.add_step('rows-1', 'loop',
	action => $$UPDATE account SET balance = balance - 5 WHERE id = 99$$,
	compensation => $$UPDATE account SET balance = balance + 5 WHERE id = 99$$,
	expect_rows => 1);
SELECT saga.submit('rows-1');
COMMIT;
SELECT saga.wait('rows-1');
SELECT step, status, last_sqlstate, last_error FROM saga.steps WHERE gid = 'rows-1';

-- A compensation that fails for a business reason: the saga is failed,
-- and saga.retry() resumes it once the cause is fixed.
CREATE TABLE frozen (id int PRIMARY KEY);
BEGIN;
SELECT saga.begin('stuck-1');
SELECT saga.add_step('stuck-1', 'loop',
	action => $$SELECT 1$$,
	compensation => $$INSERT INTO frozen VALUES (1)$$);
SELECT saga.add_step('stuck-1', 'loop', action => $$SELECT 1/0$$);
SELECT saga.submit('stuck-1');
-- makes the compensation fail: in place before the worker can reach it
INSERT INTO frozen VALUES (1);
COMMIT;
SELECT saga.wait('stuck-1');
SELECT step, status, last_sqlstate FROM saga.steps WHERE gid = 'stuck-1' ORDER BY step;
SELECT try($$SELECT saga.abort('stuck-1')$$);
DELETE FROM frozen;
SELECT saga.retry('stuck-1');
SELECT saga.wait('stuck-1');
SELECT step, status, attempts FROM saga.steps WHERE gid = 'stuck-1' ORDER BY step;
SELECT count(*) AS compensated_rows FROM frozen;
-- Three independent steps run at once: each counts its arrival on a
-- sequence (not transactional: the others see it at once, and it stays
-- when the step returns) and waits until all three arrived, which steps run
-- one after the other never do (they fail after 50 s, and the saga is
-- aborted).
CREATE SEQUENCE par_arrived;
CREATE FUNCTION meet(arrived regclass, n int) RETURNS void LANGUAGE plpgsql AS $f$
DECLARE
	seen bigint;
BEGIN
	PERFORM nextval(arrived);
	FOR i IN 1..1000 LOOP
		EXECUTE format('SELECT last_value FROM %s', arrived) INTO seen;
		IF seen >= n THEN
			RETURN;
		END IF;
		PERFORM pg_sleep(0.05);
	END LOOP;
	RAISE EXCEPTION 'a step ran with % of the % steps', seen, n;
END
$f$;
BEGIN;
SELECT saga.begin('par-1');
SELECT saga.add_step('par-1', 'loop', $$SELECT meet('par_arrived', 3)$$, after => '{}');
SELECT saga.add_step('par-1', 'loop', $$SELECT meet('par_arrived', 3)$$, after => '{}');
SELECT saga.add_step('par-1', 'loop', $$SELECT meet('par_arrived', 3)$$, after => '{}');
SELECT saga.submit('par-1');
COMMIT;
SELECT saga.wait('par-1');
SELECT max(started_at) < min(finished_at) AS overlapped FROM saga.steps WHERE gid = 'par-1';

-- Waits until a pg_saga call waits for advisory lock `key` (a step blocked
-- by a lock this session holds); raises after 60 s.  Only the step asks for
-- that lock.  (Its connection is not told apart by application_name: the
-- server started by pg_regress inherits PGAPPNAME=pg_regress, which libpq
-- puts before pg_saga's fallback_application_name.)
CREATE FUNCTION wait_step_blocked(key int) RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
	FOR i IN 1..1200 LOOP
		PERFORM 1 FROM pg_locks l
			WHERE l.locktype = 'advisory' AND NOT l.granted AND l.objid = key;
		IF FOUND THEN
			RETURN;
		END IF;
		PERFORM pg_sleep(0.05);
	END LOOP;
	RAISE EXCEPTION 'no step blocked on advisory lock % after 60 s', key;
END
$f$;

-- A deadline that passes rolls the saga back: step 2 waits on a lock this
-- session holds until the deadline cancels it.
SELECT pg_advisory_lock(424210);
BEGIN;
SELECT saga.begin('late-1', timeout => '3 seconds');
SELECT saga.add_step('late-1', 'loop',
	action => $$UPDATE account SET balance = balance - 1 WHERE id = 1$$,
	compensation => $$UPDATE account SET balance = balance + 1 WHERE id = 1$$);
SELECT saga.add_step('late-1', 'loop', action => $$SELECT pg_advisory_xact_lock(424210)$$);
SELECT saga.submit('late-1');
COMMIT;
SELECT wait_step_blocked(424210);
SELECT saga.wait('late-1');
SELECT pg_advisory_unlock(424210);
SELECT * FROM account ORDER BY id;
SELECT step, status FROM saga.steps WHERE gid = 'late-1' ORDER BY step;
SELECT last_error FROM saga.transactions WHERE gid = 'late-1';

-- saga.abort of a running saga, its step 2 blocked on a lock this
-- session holds.
SELECT pg_advisory_lock(424211);
BEGIN;
SELECT saga.begin('abort-1');
SELECT saga.add_step('abort-1', 'loop',
	action => $$UPDATE account SET balance = balance - 2 WHERE id = 1$$,
	compensation => $$UPDATE account SET balance = balance + 2 WHERE id = 1$$);
SELECT saga.add_step('abort-1', 'loop', action => $$SELECT pg_advisory_xact_lock(424211)$$);
SELECT saga.submit('abort-1');
COMMIT;
SELECT wait_step_blocked(424211);
SELECT saga.abort('abort-1', 'operator said so');
SELECT saga.wait('abort-1');
SELECT pg_advisory_unlock(424211);
SELECT * FROM account ORDER BY id;
SELECT step, status FROM saga.steps WHERE gid = 'abort-1' ORDER BY step;
SELECT last_error FROM saga.transactions WHERE gid = 'abort-1';

-- A saga built and never submitted is not run; rolling back the
-- submitting transaction leaves nothing.
BEGIN;
SELECT saga.begin('rolled-back');
SELECT saga.add_step('rolled-back', 'loop', 'SELECT 1');
SELECT saga.submit('rolled-back');
ROLLBACK;
SELECT try($$SELECT saga.status('rolled-back')$$);

-- stats and purge
SELECT status, sagas FROM saga.stats ORDER BY status;
SELECT saga.purge('1 hour');
SELECT saga.purge('0 seconds') > 0 AS purged;
SELECT count(*) AS left_final FROM saga.transactions WHERE status IN ('succeeded', 'aborted', 'failed');

-- The xa recovery sweep's list of targets (catalog_xa_targets in
-- src/catalog.c, every saga.recovery_interval) reads the xa sagas alone,
-- through gtx_xa_idx, however many finished sagas of other modes are kept.
CREATE FUNCTION plan_uses(query text, index_name text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
	line text;
BEGIN
	FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
		IF position(index_name IN line) > 0 THEN
			RETURN true;
		END IF;
	END LOOP;
	RETURN false;
END
$$;
BEGIN;
INSERT INTO saga.gtx (gid, mode, status, owner, created_at, submitted_at, finished_at)
SELECT 'kept-' || g, 'saga', 'succeeded', current_user::regrole, now() - interval '1 hour',
	   now() - interval '1 hour', now() - interval '1 hour'
  FROM generate_series(1, 20000) g;
INSERT INTO saga.gtx_step (gtx_id, step, name, target, action, status)
SELECT id, s, 'step' || s, 'loop', 'SELECT 1', 'succeeded'
  FROM saga.gtx, generate_series(1, 2) s WHERE gid LIKE 'kept-%';
ANALYZE saga.gtx;
ANALYZE saga.gtx_step;
SELECT plan_uses($$SELECT DISTINCT s.target, g.owner FROM saga.gtx_step s
				   JOIN saga.gtx g ON g.id = s.gtx_id WHERE g.mode = 'xa'
				   AND (g.finished_at IS NULL OR g.finished_at > pg_catalog.now() - interval '1 day')$$,
				 'gtx_xa_idx') AS sweep_reads_xa_sagas_alone;
ROLLBACK;
DROP FUNCTION plan_uses(text, text);
