-- submit, wait, status, abort and purge on sagas that never reach a
-- participant: everything here happens inside one transaction that is
-- rolled back, so the worker never sees these sagas.  The errors these
-- functions raise are checked once, by pg_regress (sql/api_errors.sql,
-- sql/bad_input.sql, sql/building.sql, sql/lifecycle.sql).
BEGIN;
SELECT plan(19);

DO $$
BEGIN
	EXECUTE format('CREATE SERVER pgtap_life_target FOREIGN DATA WRAPPER pg_saga OPTIONS (host %L, port %L, dbname %L)',
				   '127.0.0.1', current_setting('port'), 'pgtap_no_such_db');
END
$$;
CREATE USER MAPPING FOR CURRENT_USER SERVER pgtap_life_target;

-- submit
SELECT is(saga.begin('pgtap-life-empty'), 'pgtap-life-empty', 'an empty saga');
SELECT is(saga.status('pgtap-life-empty'), 'building', 'the empty saga is still building');

SELECT is(saga.begin('pgtap-life-1', timeout => '1 hour'), 'pgtap-life-1', 'a saga to submit');
SELECT is(saga.add_step('pgtap-life-1', 'pgtap_life_target', 'SELECT 1'), 1, 'with one step');
SELECT lives_ok($$SELECT saga.submit('pgtap-life-1')$$, 'submit of a built saga works');
SELECT is(saga.status('pgtap-life-1'), 'pending', 'a submitted saga is pending');

-- wait
SELECT is(saga.wait('pgtap-life-empty', '10 ms'), 'building',
	'wait returns the status when the timeout passes first');
SELECT ok(EXISTS (SELECT 1 FROM saga.history WHERE gid = 'pgtap-life-1' AND event = 'submitted'),
	'saga.history records the submit');

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
SELECT is((SELECT count(*) FROM saga.transactions WHERE gid IN ('pgtap-life-1', 'pgtap-life-empty')),
	2::bigint, 'purge leaves sagas that are not final');

SELECT * FROM finish();
ROLLBACK;
