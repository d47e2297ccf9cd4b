-- Every misuse of the SQL surface gets a clear error with the SPEC's SQLSTATE,
-- and a failed call leaves nothing behind.

-- saga.begin
SELECT try($$SELECT saga.begin(gid => '')$$);
SELECT try($$SELECT saga.begin(gid => repeat('x', 129))$$);
SELECT length(saga.begin(gid => repeat('x', 128))) AS len128;
SELECT length(saga.begin(gid => repeat('é', 128))) AS multibyte_len128;
SELECT try($$SELECT saga.begin(gid => 'e1', mode => 'nope')$$);
SELECT try($$SELECT saga.begin(gid => 'e1', mode => NULL)$$);
SELECT try($$SELECT saga.begin(gid => 'e1', timeout => '-1 second')$$);
SELECT try($$SELECT saga.begin(gid => 'e1', mode => 'msg', timeout => '1 minute')$$);
SELECT saga.begin('e1');
SELECT try($$SELECT saga.begin('e1')$$);
SELECT saga.begin() ~ '^[0-9a-f-]{36}$' AS uuid_gid;
SELECT saga.begin('p1', payload => '{"order": 42}');
SELECT gid, mode, status, payload FROM saga.transactions WHERE gid = 'p1';

-- saga.add_step
SELECT try($$SELECT saga.add_step(NULL, 'loop', 'SELECT 1')$$);
SELECT try($$SELECT saga.add_step('e1', NULL, 'SELECT 1')$$);
SELECT try($$SELECT saga.add_step('e1', 'loop', NULL)$$);
SELECT try($$SELECT saga.add_step('nosuch', 'loop', 'SELECT 1')$$);
SELECT try($$SELECT saga.add_step('e1', 'nosuch', 'SELECT 1')$$);
SELECT try($$SELECT saga.add_step('e1', 'loop', '   ')$$);
SELECT try($$SELECT saga.add_step('e1', 'loop', 'SELECT 1', confirm => 'SELECT 1')$$);
SELECT try($$SELECT saga.add_step('e1', 'loop', 'SELECT 1', expect_rows => -1)$$);
SELECT try($$SELECT saga.add_step('e1', 'loop', 'SELECT 1', max_attempts => 0)$$);
SELECT try($$SELECT saga.add_step('e1', 'loop', 'SELECT 1', timeout => '0')$$);
SELECT try($$SELECT saga.add_step('e1', 'loop', 'SELECT 1', after => '{nosuch}')$$);
SELECT try($$SELECT saga.add_step('e1', 'loop', 'SELECT 1', name => 'me', after => '{me}')$$);
SELECT try($$SELECT saga.add_step('e1', 'loop', 'SELECT 1', after => '{NULL}')$$);
SELECT saga.add_step('e1', 'loop', 'SELECT 1');
SELECT saga.add_step('e1', 'loop', 'SELECT 2', name => 'second');
SELECT try($$SELECT saga.add_step('e1', 'loop', 'SELECT 3', name => 'second')$$);
SELECT saga.add_step('e1', 'loop', 'SELECT 3', after => '{}');
SELECT saga.add_step('e1', 'loop', 'SELECT 4', after => '{step1,second}');
SELECT s.step, s.name, s.after_steps
  FROM saga.gtx_step s JOIN saga.gtx g ON g.id = s.gtx_id WHERE g.gid = 'e1' ORDER BY s.step;

-- mode rules
SELECT saga.begin('t1', mode => 'tcc');
SELECT try($$SELECT saga.add_step('t1', 'loop', 'SELECT 1', compensation => 'SELECT 1')$$);
SELECT saga.begin('m1', mode => 'msg');
SELECT try($$SELECT saga.add_step('m1', 'loop', 'SELECT 1', compensation => 'SELECT 1')$$);
SELECT saga.begin('x1', mode => 'xa');
SELECT try($$SELECT saga.add_step('x1', 'loop', 'SELECT 1', compensation => 'SELECT 1')$$);
SELECT try($$SELECT saga.add_step('x1', 'loop', 'SELECT 1', confirm => 'SELECT 1')$$);

-- saga.submit
SELECT saga.begin('empty');
SELECT try($$SELECT saga.submit('empty')$$);
SELECT try($$SELECT saga.submit('nosuch')$$);
SELECT try($$SELECT saga.submit(NULL)$$);

-- saga.status, saga.wait, saga.abort, saga.retry, saga.purge
SELECT try($$SELECT saga.status('nosuch')$$);
SELECT saga.status('e1');
SELECT try($$SELECT saga.wait('nosuch')$$);
SELECT try($$SELECT saga.wait('e1', NULL)$$);
SELECT try($$SELECT saga.wait('e1', '-1 second')$$);
SELECT saga.wait('e1', '0 seconds');
SELECT try($$SELECT saga.retry('e1')$$);
SELECT try($$SELECT saga.abort('nosuch')$$);
SELECT try($$SELECT saga.purge(NULL)$$);
SELECT try($$SELECT saga.purge('-1 day')$$);

-- aborting a saga being built discards it; then it is past its decision
SELECT saga.abort('e1', 'changed my mind');
SELECT saga.status('e1');
SELECT try($$SELECT saga.abort('e1')$$);
SELECT try($$SELECT saga.add_step('e1', 'loop', 'SELECT 1')$$);
SELECT try($$SELECT saga.submit('e1')$$);
SELECT try($$SELECT saga.retry('e1')$$);
SELECT last_error FROM saga.transactions WHERE gid = 'e1';
SELECT step, status FROM saga.steps WHERE gid = 'e1' ORDER BY step;

-- nothing half-built: the failed calls above left no steps or sagas
SELECT count(*) AS steps_of_m1 FROM saga.steps WHERE gid = 'm1';
SELECT count(*) AS steps_of_x1 FROM saga.steps WHERE gid = 'x1';
SELECT gid FROM saga.transactions WHERE gid IN ('', 'nosuch', repeat('x', 129)) ORDER BY gid;

-- A saga built in one statement: each call sees the steps added before it.
SELECT saga.begin('one-statement');
SELECT saga.add_step('one-statement', 'loop', 'SELECT ' || g) FROM generate_series(1, 3) g;
SELECT step, name, after_steps FROM saga.gtx_step s JOIN saga.gtx g ON g.id = s.gtx_id
 WHERE g.gid = 'one-statement' ORDER BY step;
SELECT saga.begin('s1'), saga.add_step('s1', 'loop', 'SELECT 1'), saga.status('s1');
