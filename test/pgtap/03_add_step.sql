-- saga.add_step in mode saga: numbering, names, after, targets, user
-- mappings and the errors it raises.  add_step does not connect, so the
-- targets point at a database that need not exist.
BEGIN;
SELECT plan(33);

DO $$
BEGIN
	EXECUTE format('CREATE SERVER pgtap_step_target FOREIGN DATA WRAPPER pg_saga OPTIONS (host %L, port %L, dbname %L)',
				   '127.0.0.1', current_setting('port'), 'pgtap_no_such_db');
	EXECUTE format('CREATE SERVER pgtap_step_nomap FOREIGN DATA WRAPPER pg_saga OPTIONS (host %L, port %L, dbname %L)',
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

-- Names are unique in the saga.
SELECT throws_ok($$SELECT saga.add_step('pgtap-step', 'pgtap_step_target', 'SELECT 5', name => 'third')$$,
	'23505', 'step name "third" is already used in saga "pgtap-step"', 'a duplicate step name raises unique_violation');
SELECT throws_ok($$SELECT saga.add_step('pgtap-step', 'pgtap_step_target', 'SELECT 5', name => 'step2')$$,
	'23505', 'step name "step2" is already used in saga "pgtap-step"', 'a name taken by a default name raises unique_violation');
SELECT throws_ok($$SELECT saga.add_step('pgtap-step', 'pgtap_step_target', 'SELECT 5', name => '')$$,
	'22023', 'step name must be 1 to 63 characters long', 'an empty step name raises invalid_parameter_value');

-- after.
SELECT throws_ok($$SELECT saga.add_step('pgtap-step', 'pgtap_step_target', 'SELECT 5', after => '{nope}')$$,
	'22023', 'step "nope" named in after does not exist in saga "pgtap-step"', 'after naming an unknown step raises invalid_parameter_value');
SELECT throws_ok($$SELECT saga.add_step('pgtap-step', 'pgtap_step_target', 'SELECT 5', name => 'me', after => '{me}')$$,
	'22023', 'step "me" cannot come after itself', 'a step after itself raises invalid_parameter_value');
SELECT throws_ok($$SELECT saga.add_step('pgtap-step', 'pgtap_step_target', 'SELECT 5', after => '{step1,NULL}')$$,
	'22004', 'after must not contain nulls', 'a NULL in after raises null_value_not_allowed');

-- NULLs and empty values.
SELECT throws_ok($$SELECT saga.add_step(NULL, 'pgtap_step_target', 'SELECT 1')$$, '22004',
	'gid must not be null',
	'a NULL gid raises null_value_not_allowed');
SELECT throws_ok($$SELECT saga.add_step('pgtap-step', NULL, 'SELECT 1')$$, '22004',
	'target must not be null',
	'a NULL target raises null_value_not_allowed');
SELECT throws_ok($$SELECT saga.add_step('pgtap-step', 'pgtap_step_target', NULL)$$, '22004',
	'action must not be null',
	'a NULL action raises null_value_not_allowed');
SELECT throws_ok($$SELECT saga.add_step('pgtap-step', 'pgtap_step_target', '')$$, '22023',
	'action must not be empty',
	'an empty action raises invalid_parameter_value');

-- Mode saga takes no confirm.
SELECT throws_ok($$SELECT saga.add_step('pgtap-step', 'pgtap_step_target', 'SELECT 1', 'SELECT 2', 'SELECT 3')$$,
	'22023', 'saga steps take no confirm', 'a saga step with a confirm raises invalid_parameter_value');

-- Unknown gid, target, user mapping.
SELECT throws_ok($$SELECT saga.add_step('pgtap-no-such-saga', 'pgtap_step_target', 'SELECT 1')$$,
	'42704', 'saga "pgtap-no-such-saga" does not exist', 'an unknown gid raises undefined_object');
SELECT throws_ok($$SELECT saga.add_step('pgtap-step', 'pgtap_no_such_server', 'SELECT 1')$$,
	'42704', 'target "pgtap_no_such_server" does not exist', 'an unknown target raises undefined_object');
SELECT throws_ok($$SELECT saga.add_step('pgtap-step', 'pgtap_step_nomap', 'SELECT 1')$$,
	'42704', format('user mapping not found for user "%s", server "pgtap_step_nomap"', current_user), 'a target without a user mapping raises undefined_object');

-- Per-step overrides.
SELECT throws_ok($$SELECT saga.add_step('pgtap-step', 'pgtap_step_target', 'SELECT 1', timeout => '-1 second')$$,
	'22023', 'timeout must be positive', 'a negative step timeout raises invalid_parameter_value');
SELECT throws_ok($$SELECT saga.add_step('pgtap-step', 'pgtap_step_target', 'SELECT 1', max_attempts => 0)$$,
	'22023', 'max_attempts must be at least 1', 'max_attempts below 1 raises invalid_parameter_value');
SELECT throws_ok($$SELECT saga.add_step('pgtap-step', 'pgtap_step_target', 'SELECT 1', expect_rows => -1)$$,
	'22023', 'expect_rows must not be negative', 'a negative expect_rows raises invalid_parameter_value');

-- A failed call changes nothing: no step was added and numbering goes on.
SELECT is((SELECT count(*) FROM saga.steps WHERE gid = 'pgtap-step'), 4::bigint,
	'failed add_step calls added no step');
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

-- The wrapper's validator takes libpq options only.
SELECT throws_ok($$CREATE SERVER pgtap_step_bad FOREIGN DATA WRAPPER pg_saga OPTIONS (hostess 'x')$$,
	'HV00D', 'invalid option "hostess"', 'a server option that is not a libpq option is rejected');
SELECT throws_ok($$CREATE USER MAPPING FOR CURRENT_USER SERVER pgtap_step_nomap OPTIONS (host 'x')$$,
	'HV00D', 'invalid option "host"', 'a user mapping takes only user and password');

SELECT is((SELECT count(*) FROM saga.steps WHERE gid = 'pgtap-step'), 8::bigint,
	'the saga has 8 steps');

SELECT * FROM finish();
ROLLBACK;
