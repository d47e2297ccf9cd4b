-- submit, wait, status, abort, retry and purge on sagas that never reach a
-- participant: everything here happens inside one transaction that is
-- rolled back, so the worker never sees these sagas.
BEGIN;
SELECT plan(41);

DO $$
BEGIN
	EXECUTE format('CREATE SERVER pgtap_life_target FOREIGN DATA WRAPPER pg_saga OPTIONS (host %L, port %L, dbname %L)',
				   '127.0.0.1', current_setting('port'), 'pgtap_no_such_db');
END
$$;
CREATE USER MAPPING FOR CURRENT_USER SERVER pgtap_life_target;

-- submit
SELECT is(saga.begin('pgtap-life-empty'), 'pgtap-life-empty', 'an empty saga');
SELECT throws_ok($$SELECT saga.submit('pgtap-life-empty')$$, '55000',
	'saga "pgtap-life-empty" has no steps',
	'submitting an empty saga raises object_not_in_prerequisite_state');
SELECT is(saga.status('pgtap-life-empty'), 'building', 'the empty saga is still building');

SELECT is(saga.begin('pgtap-life-1', timeout => '1 hour'), 'pgtap-life-1', 'a saga to submit');
SELECT is(saga.add_step('pgtap-life-1', 'pgtap_life_target', 'SELECT 1'), 1, 'with one step');
SELECT lives_ok($$SELECT saga.submit('pgtap-life-1')$$, 'submit of a built saga works');
SELECT is(saga.status('pgtap-life-1'), 'pending', 'a submitted saga is pending');
SELECT throws_ok($$SELECT saga.submit('pgtap-life-1')$$, '55000',
	'saga "pgtap-life-1" is pending',
	'submitting twice raises object_not_in_prerequisite_state');
SELECT throws_ok($$SELECT saga.add_step('pgtap-life-1', 'pgtap_life_target', 'SELECT 2')$$, '55000',
	'saga "pgtap-life-1" is pending',
	'add_step after submit raises object_not_in_prerequisite_state');
SELECT is((SELECT steps FROM saga.transactions WHERE gid = 'pgtap-life-1'), 1,
	'the refused add_step added nothing');
SELECT throws_ok($$SELECT saga.submit('pgtap-no-such-saga')$$, '42704',
	'saga "pgtap-no-such-saga" does not exist',
	'submit of an unknown gid raises undefined_object');
SELECT throws_ok($$SELECT saga.submit(NULL)$$, '22004',
	'gid must not be null',
	'submit(NULL) raises null_value_not_allowed');

-- wait
SELECT throws_ok($$SELECT saga.wait('pgtap-life-1')$$, '25000',
	'saga "pgtap-life-1" was submitted in this transaction',
	'wait in the transaction that submitted the saga raises invalid_transaction_state');
SELECT throws_ok($$SELECT saga.wait('pgtap-no-such-saga', '10 ms')$$, '42704',
	'saga "pgtap-no-such-saga" does not exist',
	'wait on an unknown gid raises undefined_object');
SELECT throws_ok($$SELECT saga.wait(NULL)$$, '22004',
	'gid must not be null',
	'wait(NULL) raises null_value_not_allowed');

SELECT throws_ok($$SELECT saga.wait('pgtap-life-empty', '-1 second')$$, '22023',
	'timeout must not be negative', 'wait with a negative timeout raises invalid_parameter_value');
SELECT throws_ok($$SELECT saga.wait('pgtap-life-empty', NULL)$$, '22004',
	'timeout must not be null', 'wait with a NULL timeout raises null_value_not_allowed');
SELECT is(saga.wait('pgtap-life-empty', '10 ms'), 'building',
	'wait returns the status when the timeout passes first');
SELECT ok(EXISTS (SELECT 1 FROM saga.history WHERE gid = 'pgtap-life-1' AND event = 'submitted'),
	'saga.history records the submit');

-- status
SELECT throws_ok($$SELECT saga.status('pgtap-no-such-saga')$$, '42704',
	'saga "pgtap-no-such-saga" does not exist',
	'status of an unknown gid raises undefined_object');
SELECT throws_ok($$SELECT saga.status(NULL)$$, '22004',
	'gid must not be null',
	'status(NULL) raises null_value_not_allowed');

-- abort
SELECT is(saga.begin('pgtap-life-abort'), 'pgtap-life-abort', 'a saga to abort while building');
SELECT is(saga.add_step('pgtap-life-abort', 'pgtap_life_target', 'SELECT 1'), 1, 'with one step');
SELECT lives_ok($$SELECT saga.abort('pgtap-life-abort', 'changed my mind')$$,
	'abort of a building saga works');
SELECT is(saga.status('pgtap-life-abort'), 'aborted', 'an aborted building saga is aborted');
SELECT isnt((SELECT finished_at FROM saga.transactions WHERE gid = 'pgtap-life-abort'), NULL,
	'and finished');
SELECT is(
	ARRAY(SELECT status FROM saga.steps WHERE gid = 'pgtap-life-abort'
		  AND status NOT IN ('pending', 'skipped')),
	'{}'::text[],
	'none of its steps ran');
SELECT throws_ok($$SELECT saga.abort('pgtap-life-abort')$$, '55000',
	'saga "pgtap-life-abort" is aborted',
	'abort of an aborted saga raises object_not_in_prerequisite_state');
SELECT throws_ok($$SELECT saga.add_step('pgtap-life-abort', 'pgtap_life_target', 'SELECT 2')$$, '55000',
	'saga "pgtap-life-abort" is aborted',
	'add_step on an aborted saga raises object_not_in_prerequisite_state');
SELECT throws_ok($$SELECT saga.abort('pgtap-no-such-saga')$$, '42704',
	'saga "pgtap-no-such-saga" does not exist',
	'abort of an unknown gid raises undefined_object');

-- retry
SELECT throws_ok($$SELECT saga.retry('pgtap-life-empty')$$, '55000',
	'saga "pgtap-life-empty" is building',
	'retry of a building saga raises object_not_in_prerequisite_state');
SELECT throws_ok($$SELECT saga.retry('pgtap-life-1')$$, '55000',
	'saga "pgtap-life-1" is pending',
	'retry of a pending saga raises object_not_in_prerequisite_state');
SELECT throws_ok($$SELECT saga.retry('pgtap-life-abort')$$, '55000',
	'saga "pgtap-life-abort" is aborted',
	'retry of an aborted saga raises object_not_in_prerequisite_state');
SELECT throws_ok($$SELECT saga.retry('pgtap-no-such-saga')$$, '42704',
	'saga "pgtap-no-such-saga" does not exist',
	'retry of an unknown gid raises undefined_object');

-- purge: only final sagas that finished before now() - older_than.
-- Backdating finished_at needs a superuser, which these tests run as.
UPDATE saga.gtx SET finished_at = now() - interval '8 days' WHERE gid = 'pgtap-life-abort';
SELECT cmp_ok(saga.purge(), '>=', 1::bigint, 'purge() returns how many sagas it deleted');
SELECT throws_ok($$SELECT saga.status('pgtap-life-abort')$$, '42704',
	'saga "pgtap-life-abort" does not exist',
	'the purged saga is gone');
SELECT is((SELECT count(*) FROM saga.steps WHERE gid = 'pgtap-life-abort')
		  + (SELECT count(*) FROM saga.history WHERE gid = 'pgtap-life-abort'),
	0::bigint, 'and so are its steps and history');
SELECT is(saga.purge(), 0::bigint, 'a second purge finds nothing');
SELECT throws_ok($$SELECT saga.purge(NULL)$$, '22004',
	'older_than must not be null',
	'purge(NULL) raises null_value_not_allowed');
SELECT is((SELECT count(*) FROM saga.transactions WHERE gid IN ('pgtap-life-1', 'pgtap-life-empty')),
	2::bigint, 'purge leaves sagas that are not final');

SELECT throws_ok($$SELECT saga.purge('-1 day')$$, '22023',
	'older_than must not be negative', 'purge with a negative interval raises invalid_parameter_value');

SELECT * FROM finish();
ROLLBACK;
