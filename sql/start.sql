-- saga.start(): a whole saga in one statement.  The same checks and
-- SQLSTATEs as begin/add_step/submit, the same rows written, and the same
-- transactional behaviour: it runs once its transaction commits.

-- a saga that moves money between two accounts of the loopback target
CREATE TABLE start_account (id int PRIMARY KEY, balance numeric NOT NULL CHECK (balance >= 0));
INSERT INTO start_account VALUES (1, 100), (2, 100);
SELECT saga.start(ARRAY[
	saga.step('loop', $$UPDATE start_account SET balance = balance - 5 WHERE id = 1$$,
			  $$UPDATE start_account SET balance = balance + 5 WHERE id = 1$$, expect_rows => 1),
	saga.step('loop', $$UPDATE start_account SET balance = balance + 5 WHERE id = 2$$,
			  $$UPDATE start_account SET balance = balance - 5 WHERE id = 2$$, expect_rows => 1,
			  name => 'credit')],
	gid => 'st1', payload => '{"order": 7}');
SELECT saga.wait('st1', '60 seconds');
SELECT id, balance FROM start_account ORDER BY id;
SELECT gid, mode, status, payload, steps, steps_done FROM saga.transactions WHERE gid = 'st1';
SELECT step, name, target, status, attempts FROM saga.steps WHERE gid = 'st1' ORDER BY step;
SELECT s.step, s.after_steps, s.expect_rows, s.compensation IS NOT NULL AS has_compensation
  FROM saga.gtx_step s JOIN saga.gtx g ON g.id = s.gtx_id WHERE g.gid = 'st1' ORDER BY s.step;
SELECT event FROM saga.history WHERE gid = 'st1' AND step IS NULL ORDER BY at;

-- the rows are those of the step-by-step API for the same saga
BEGIN;
SELECT saga.begin('st-ref', mode => 'tcc', timeout => '1 hour');
SELECT saga.add_step('st-ref', 'loop', 'SELECT 1', 'SELECT 2', 'SELECT 3', name => 'a');
SELECT saga.add_step('st-ref', 'loop', 'SELECT 4', 'SELECT 5', 'SELECT 6', after => '{}',
					 max_attempts => 3, timeout => '10 seconds');
SELECT saga.add_step('st-ref', 'loop', 'SELECT 7', 'SELECT 8', 'SELECT 9', after => '{a,step2}');
SELECT saga.start(ARRAY[
	saga.step('loop', 'SELECT 1', 'SELECT 2', 'SELECT 3', name => 'a'),
	saga.step('loop', 'SELECT 4', 'SELECT 5', 'SELECT 6', after => '{}',
			  max_attempts => 3, timeout => '10 seconds'),
	saga.step('loop', 'SELECT 7', 'SELECT 8', 'SELECT 9', after => '{a,step2}')],
	gid => 'st-same', mode => 'tcc', timeout => '1 hour');
SELECT count(*) AS differing_steps FROM (
	(SELECT step, name, target, action, compensation, confirm, after_steps, expect_rows,
			max_attempts, timeout, status
	   FROM saga.gtx_step WHERE gtx_id = (SELECT id FROM saga.gtx WHERE gid = 'st-ref')
	 EXCEPT
	 SELECT step, name, target, action, compensation, confirm, after_steps, expect_rows,
			max_attempts, timeout, status
	   FROM saga.gtx_step WHERE gtx_id = (SELECT id FROM saga.gtx WHERE gid = 'st-same'))
	UNION ALL
	(SELECT step, name, target, action, compensation, confirm, after_steps, expect_rows,
			max_attempts, timeout, status
	   FROM saga.gtx_step WHERE gtx_id = (SELECT id FROM saga.gtx WHERE gid = 'st-same')
	 EXCEPT
	 SELECT step, name, target, action, compensation, confirm, after_steps, expect_rows,
			max_attempts, timeout, status
	   FROM saga.gtx_step WHERE gtx_id = (SELECT id FROM saga.gtx WHERE gid = 'st-ref'))) d;
SELECT gid, status, deadline IS NULL AS no_deadline_before_commit
  FROM saga.gtx WHERE gid = 'st-same';
-- not visible to the worker before commit; rolled back, it never existed
ROLLBACK;
SELECT count(*) AS after_rollback FROM saga.gtx WHERE gid IN ('st-ref', 'st-same');

-- the deadline counts from the submitting commit, as for submit()
BEGIN;
SELECT saga.start(ARRAY[saga.step('loop', 'SELECT 1')], gid => 'st-deadline', timeout => '1 hour');
SELECT pg_sleep(0.2);
COMMIT;
SELECT deadline = submitted_at + interval '1 hour' AS deadline_from_commit,
	   submitted_at - created_at >= interval '0.2 seconds' AS stamped_at_commit
  FROM saga.transactions WHERE gid = 'st-deadline';
SELECT saga.wait('st-deadline', '60 seconds');

-- a generated gid, and sagas started from a query
SELECT saga.start(ARRAY[saga.step('loop', 'SELECT 1')]) ~ '^[0-9a-f-]{36}$' AS uuid_gid;
SELECT count(saga.start(ARRAY[saga.step('loop', 'SELECT ' || g)], gid => 'st-many-' || g))
  FROM generate_series(1, 5) g;
SELECT count(*) AS started FROM saga.gtx WHERE gid LIKE 'st-many-%' AND status <> 'building';

-- errors: the SQLSTATEs of begin, add_step and submit; nothing is written
SELECT try($$SELECT saga.start(NULL::saga.step[])$$);
SELECT try($$SELECT saga.start('{}'::saga.step[], gid => 'st-e')$$);
SELECT try($$SELECT saga.start(ARRAY[NULL::saga.step])$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step('loop', 'SELECT 1')], gid => '')$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step('loop', 'SELECT 1')], gid => repeat('x', 129))$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step('loop', 'SELECT 1')], mode => 'nope')$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step('loop', 'SELECT 1')], mode => NULL)$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step('loop', 'SELECT 1')], timeout => '-1 second')$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step('loop', 'SELECT 1')], mode => 'msg', timeout => '1 minute')$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step('loop', 'SELECT 1')], gid => 'st1')$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step(NULL, 'SELECT 1')])$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step('loop', NULL)])$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step('nosuch', 'SELECT 1')])$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step('loop', '  ')])$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step('loop', 'SELECT 1', confirm => 'SELECT 1')])$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step('loop', 'SELECT 1')], mode => 'tcc')$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step('loop', 'SELECT 1', 'SELECT 2')], mode => 'xa')$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step('loop', 'SELECT 1', expect_rows => -1)])$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step('loop', 'SELECT 1', max_attempts => 0)])$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step('loop', 'SELECT 1', timeout => '0')])$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step('loop', 'SELECT 1', timeout => '30 days')])$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step('loop', 'SELECT 1', name => repeat('n', 64))])$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step('loop', 'SELECT 1', after => '{nosuch}')])$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step('loop', 'SELECT 1', name => 'me', after => '{me}')])$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step('loop', 'SELECT 1', after => '{NULL}')])$$);
-- a step can come only after one before it in the array
SELECT try($$SELECT saga.start(ARRAY[saga.step('loop', 'SELECT 1', after => '{later}'),
									 saga.step('loop', 'SELECT 2', name => 'later')])$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step('loop', 'SELECT 1', name => 'x'),
									 saga.step('loop', 'SELECT 2', name => 'x')], gid => 'st-e')$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step('loop', 'SELECT 1'),
									 saga.step('loop', 'SELECT 2', name => 'step1')], gid => 'st-e')$$);
SELECT count(*) AS left_behind FROM saga.gtx WHERE gid = 'st-e' OR gid LIKE repeat('x', 129);
-- saga.step() itself checks nothing: it is only a value
SELECT saga.step('nosuch', '', max_attempts => -1);
-- each argument is its field, as the SQL function of 1.3 to 1.7 made the row
SELECT s, s IS NOT DISTINCT FROM ROW('t', 'a', 'c', 'k', 'n', '{m}', 1, 2, '3 s')::saga.step AS same
  FROM saga.step('t', 'a', 'c', 'k', 'n', '{m}', 1, 2, '3 s') AS s;
SELECT s, s IS NOT DISTINCT FROM ROW('t', 'a', NULL, NULL, NULL, NULL, NULL, NULL, NULL)::saga.step AS same
  FROM saga.step('t', 'a') AS s;
SELECT s, s IS NOT DISTINCT FROM ROW('h', saga.http('post', '/p', '{"x": 1}')::text,
									 saga.http('delete', '/p')::text, NULL, 'pay', NULL, 1, NULL,
									 NULL)::saga.step AS same
  FROM saga.step('h', saga.http('post', '/p', '{"x": 1}'), saga.http('delete', '/p'),
				 name => 'pay', expect_rows => 1) AS s;

-- a step that fails rolls the saga back, as with the step-by-step API
SELECT saga.start(ARRAY[
	saga.step('loop', $$UPDATE start_account SET balance = balance - 50 WHERE id = 2$$,
			  $$UPDATE start_account SET balance = balance + 50 WHERE id = 2$$, expect_rows => 1),
	saga.step('loop', $$UPDATE start_account SET balance = balance - 500 WHERE id = 1$$,
			  $$UPDATE start_account SET balance = balance + 500 WHERE id = 1$$, expect_rows => 1)],
	gid => 'st-fail');
SELECT saga.wait('st-fail', '60 seconds');
SELECT step, status, last_sqlstate FROM saga.steps WHERE gid = 'st-fail' ORDER BY step;
SELECT id, balance FROM start_account ORDER BY id;

-- a remote error keeps its DETAIL and HINT (and any CONTEXT of the step's own)
CREATE FUNCTION start_refuse() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'refused by the bank' USING DETAIL = 'The account is frozen.',
		HINT = 'Unfreeze it first.', ERRCODE = 'P0001';
END
$$;
SELECT saga.start(ARRAY[saga.step('loop', 'SELECT start_refuse()')], gid => 'st-detail');
SELECT saga.wait('st-detail', '60 seconds');
SELECT last_sqlstate, last_error FROM saga.steps WHERE gid = 'st-detail';
