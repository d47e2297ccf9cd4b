-- saga.add_step in mode saga: numbering, names, after, targets, user
-- mappings.  add_step does not connect, so the targets point at a database
-- that need not exist.  The errors it raises are checked once, by
-- pg_regress (sql/api_errors.sql, sql/bad_input.sql, sql/setup.sql).
BEGIN;
SELECT plan(13);

DO $$
BEGIN
	EXECUTE format('CREATE SERVER pgtap_step_target FOREIGN DATA WRAPPER pg_saga OPTIONS (host %L, port %L, dbname %L)',
				   '127.0.0.1', current_setting('port'), 'pgtap_no_such_db');
	EXECUTE format('CREATE SERVER pgtap_step_public FOREIGN DATA WRAPPER pg_saga OPTIONS (host %L, port %L, dbname %L)',
				   '127.0.0.1', current_setting('port'), 'pgtap_no_such_db');
END
$$;
CREATE USER MAPPING FOR CURRENT_USER SERVER pgtap_step_target;
CREATE USER MAPPING FOR PUBLIC SERVER pgtap_step_public OPTIONS (user 'nobody', password 'secret');

SELECT is(saga.begin('pgtap-step'), 'pgtap-step', 'a saga to build');

-- Numbering and names.
SELECT is(saga.add_step('pgtap-step', 'pgtap_step_target', 'SELECT 1'), 1, 'the first step is number 1');
SELECT is(saga.add_step('pgtap-step', 'pgtap_step_target', 'SELECT 2', 'SELECT -2'), 2,
	'the second step is number 2');
SELECT is(saga.add_step('pgtap-step', 'pgtap_step_target', 'SELECT 3', name => 'third', after => '{}'), 3,
	'a named step with after => {} is number 3');
SELECT is(saga.add_step('pgtap-step', 'pgtap_step_target', 'SELECT 4',
						after => ARRAY['step1', 'third']), 4,
	'a step after two named steps is number 4');
SELECT results_eq(
	$$SELECT step, name, target, status, attempts FROM saga.steps WHERE gid = 'pgtap-step' ORDER BY step$$,
	$$VALUES (1, 'step1'::text, 'pgtap_step_target'::text, 'pending'::text, 0),
			 (2, 'step2', 'pgtap_step_target', 'pending', 0),
			 (3, 'third', 'pgtap_step_target', 'pending', 0),
			 (4, 'step4', 'pgtap_step_target', 'pending', 0)$$,
	'saga.steps lists the steps with default names step<n>, all pending');
SELECT is((SELECT steps FROM saga.transactions WHERE gid = 'pgtap-step'), 4,
	'saga.transactions counts the steps');
SELECT is(
	ARRAY(SELECT s.after_steps::text FROM saga.gtx_step s JOIN saga.gtx g ON g.id = s.gtx_id
		  WHERE g.gid = 'pgtap-step' ORDER BY s.step),
	ARRAY['{}', '{1}', '{}', '{1,3}'],
	'after NULL means the step before, {} means none, names map to step numbers');

-- Per-step overrides.
SELECT is(saga.add_step('pgtap-step', 'pgtap_step_target', 'SELECT 5', 'SELECT -5',
						expect_rows => 1, max_attempts => 3, timeout => '10 seconds'), 5,
	'the next step is number 5, with all overrides given');

-- Other ways to reach a target.
SELECT is(saga.add_step('pgtap-step', 'pgtap_step_public', 'SELECT 6'), 6,
	'a mapping FOR PUBLIC serves as the owner''s mapping');
CREATE EXTENSION IF NOT EXISTS postgres_fdw;
DO $$
BEGIN
	EXECUTE format('CREATE SERVER pgtap_step_pgfdw FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host %L, port %L, dbname %L)',
				   '127.0.0.1', current_setting('port'), 'pgtap_no_such_db');
END
$$;
CREATE USER MAPPING FOR CURRENT_USER SERVER pgtap_step_pgfdw;
SELECT is(saga.add_step('pgtap-step', 'pgtap_step_pgfdw', 'SELECT 7'), 7,
	'a postgres_fdw server is accepted as a target');
CREATE EXTENSION IF NOT EXISTS dblink;
DO $$
BEGIN
	EXECUTE format('CREATE SERVER pgtap_step_dblink FOREIGN DATA WRAPPER dblink_fdw OPTIONS (host %L, port %L, dbname %L)',
				   '127.0.0.1', current_setting('port'), 'pgtap_no_such_db');
END
$$;
CREATE USER MAPPING FOR CURRENT_USER SERVER pgtap_step_dblink;
SELECT is(saga.add_step('pgtap-step', 'pgtap_step_dblink', 'SELECT 8'), 8,
	'a dblink_fdw server is accepted as a target');

SELECT is((SELECT count(*) FROM saga.steps WHERE gid = 'pgtap-step'), 8::bigint,
	'the saga has 8 steps');

SELECT * FROM finish();
ROLLBACK;
