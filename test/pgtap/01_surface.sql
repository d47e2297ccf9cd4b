-- The objects the extension installs: functions with the SPEC's signatures,
-- the views and their columns, the role saga_admin, the wrapper pg_saga.
BEGIN;
SELECT plan(61);

-- Functions: name, argument list with names and defaults, result type.
SELECT has_function('saga', 'begin', ARRAY['text', 'text', 'interval', 'jsonb', 'text[]'],
	'saga.begin(text, text, interval, jsonb, text[]) exists');
SELECT is(pg_get_function_arguments('saga.begin(text, text, interval, jsonb, text[])'::regprocedure),
	$$gid text DEFAULT NULL::text, mode text DEFAULT 'saga'::text, timeout interval DEFAULT NULL::interval, payload jsonb DEFAULT NULL::jsonb, args text[] DEFAULT NULL::text[]$$,
	'saga.begin has the documented arguments and defaults');
SELECT function_returns('saga', 'begin', ARRAY['text', 'text', 'interval', 'jsonb', 'text[]'], 'text',
	'saga.begin returns text');

SELECT has_function('saga', 'add_step',
	ARRAY['text', 'text', 'text', 'text', 'text', 'text', 'text[]', 'bigint', 'integer', 'interval'],
	'saga.add_step(...) exists');
SELECT is(pg_get_function_arguments('saga.add_step(text, text, text, text, text, text, text[], bigint, integer, interval)'::regprocedure),
	'gid text, target text, action text, compensation text DEFAULT NULL::text, confirm text DEFAULT NULL::text, name text DEFAULT NULL::text, after text[] DEFAULT NULL::text[], expect_rows bigint DEFAULT NULL::bigint, max_attempts integer DEFAULT NULL::integer, timeout interval DEFAULT NULL::interval',
	'saga.add_step has the documented arguments and defaults');
SELECT function_returns('saga', 'add_step',
	ARRAY['text', 'text', 'text', 'text', 'text', 'text', 'text[]', 'bigint', 'integer', 'interval'],
	'integer', 'saga.add_step returns integer');

SELECT has_function('saga', 'submit', ARRAY['text'], 'saga.submit(text) exists');
SELECT is(pg_get_function_arguments('saga.submit(text)'::regprocedure), 'gid text',
	'saga.submit has the documented arguments');
SELECT function_returns('saga', 'submit', ARRAY['text'], 'void', 'saga.submit returns void');

SELECT has_function('saga', 'wait', ARRAY['text', 'interval'], 'saga.wait(text, interval) exists');
SELECT is(pg_get_function_arguments('saga.wait(text, interval)'::regprocedure),
	$$gid text, timeout interval DEFAULT '00:00:30'::interval$$,
	'saga.wait has the documented arguments and defaults');
SELECT function_returns('saga', 'wait', ARRAY['text', 'interval'], 'text', 'saga.wait returns text');

SELECT has_function('saga', 'status', ARRAY['text'], 'saga.status(text) exists');
SELECT is(pg_get_function_arguments('saga.status(text)'::regprocedure), 'gid text',
	'saga.status has the documented arguments');
SELECT function_returns('saga', 'status', ARRAY['text'], 'text', 'saga.status returns text');

SELECT has_function('saga', 'abort', ARRAY['text', 'text'], 'saga.abort(text, text) exists');
SELECT is(pg_get_function_arguments('saga.abort(text, text)'::regprocedure),
	'gid text, reason text DEFAULT NULL::text',
	'saga.abort has the documented arguments and defaults');
SELECT function_returns('saga', 'abort', ARRAY['text', 'text'], 'void', 'saga.abort returns void');

SELECT has_function('saga', 'retry', ARRAY['text'], 'saga.retry(text) exists');
SELECT is(pg_get_function_arguments('saga.retry(text)'::regprocedure), 'gid text',
	'saga.retry has the documented arguments');
SELECT function_returns('saga', 'retry', ARRAY['text'], 'void', 'saga.retry returns void');

SELECT has_function('saga', 'purge', ARRAY['interval'], 'saga.purge(interval) exists');
SELECT is(pg_get_function_arguments('saga.purge(interval)'::regprocedure),
	$$older_than interval DEFAULT '7 days'::interval$$,
	'saga.purge has the documented arguments and defaults');
SELECT function_returns('saga', 'purge', ARRAY['interval'], 'bigint', 'saga.purge returns bigint');

SELECT has_function('saga', 'result', ARRAY['text'], 'saga.result(text) exists');
SELECT is(pg_get_function_arguments('saga.result(text)'::regprocedure), 'gid text',
	'saga.result has the documented arguments');
SELECT function_returns('saga', 'result', ARRAY['text'], 'jsonb', 'saga.result returns jsonb');

SELECT has_function('saga', 'setup_participant', ARRAY['text', 'text[]'],
	'saga.setup_participant(text, text[]) exists');
SELECT is(pg_get_function_arguments('saga.setup_participant(text, text[])'::regprocedure),
	'target text, at_tables text[] DEFAULT NULL::text[]',
	'saga.setup_participant has the documented arguments and defaults');
SELECT function_returns('saga', 'setup_participant', ARRAY['text', 'text[]'], 'void',
	'saga.setup_participant returns void');

-- Each function pins its search_path and has a comment.  A procedure that
-- commits (saga.run) cannot have a SET clause: its body names everything
-- with its schema instead, and it must be the only procedure.  saga.step()
-- (C since 1.8) looks no name up: it only forms a row of its arguments,
-- and a SET clause would put a GUC nest level around every call.
SELECT is(
	ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
		  WHERE p.pronamespace = 'saga'::regnamespace AND p.proname NOT LIKE '\_%'
			AND p.prorettype <> 'trigger'::regtype AND p.proname <> 'fdw_validator'
			AND NOT (p.prokind = 'p' AND p.proname = 'run')
			AND NOT (p.proname = 'step' AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'c'))
			AND NOT ('search_path=pg_catalog, pg_temp' = ANY (coalesce(p.proconfig, '{}')))
		  ORDER BY 1),
	'{}'::text[],
	'every function of the SQL surface runs with search_path = pg_catalog, pg_temp');
SELECT is(
	ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
		  WHERE p.pronamespace = 'saga'::regnamespace AND p.proname NOT LIKE '\_%'
			AND p.prorettype <> 'trigger'::regtype AND p.proname <> 'fdw_validator'
			AND obj_description(p.oid, 'pg_proc') IS NULL
		  ORDER BY 1),
	'{}'::text[],
	'every function of the SQL surface has a comment');

-- Every role may call the functions and read the views, and write no table.
CREATE ROLE pgtap_surface_nobody NOLOGIN;
SELECT is(
	ARRAY(SELECT f FROM unnest(ARRAY[
			'saga.begin(text, text, interval, jsonb, text[])',
			'saga.add_step(text, text, text, text, text, text, text[], bigint, integer, interval)',
			'saga.submit(text)', 'saga.wait(text, interval)', 'saga.status(text)',
			'saga.abort(text, text)', 'saga.retry(text)', 'saga.purge(interval)',
			'saga.setup_participant(text, text[])', 'saga.result(text)']) AS f
		  WHERE NOT has_function_privilege('pgtap_surface_nobody', f, 'EXECUTE')),
	'{}'::text[],
	'a plain role may execute every function');
SELECT is(
	ARRAY(SELECT v FROM unnest(ARRAY['saga.transactions', 'saga.steps', 'saga.history', 'saga.stats']) AS v
		  WHERE NOT has_table_privilege('pgtap_surface_nobody', v, 'SELECT')),
	'{}'::text[],
	'a plain role may read every view');
SELECT is(
	ARRAY(SELECT c.oid::regclass::text FROM pg_class c
		  WHERE c.relnamespace = 'saga'::regnamespace AND c.relkind IN ('r', 'v', 'S')
			AND (has_table_privilege('pgtap_surface_nobody', c.oid, 'INSERT')
				 OR has_table_privilege('pgtap_surface_nobody', c.oid, 'UPDATE')
				 OR has_table_privilege('pgtap_surface_nobody', c.oid, 'DELETE'))
		  ORDER BY 1),
	'{}'::text[],
	'a plain role may write no table or view of schema saga');

-- Views and their columns.
SELECT has_view('saga', 'transactions', 'view saga.transactions exists');
SELECT columns_are('saga', 'transactions', ARRAY[
	'gid', 'mode', 'status', 'owner', 'payload', 'created_at', 'submitted_at',
	'finished_at', 'deadline', 'steps', 'steps_done', 'last_error', 'saga_key', 'args',
	'definition', 'definition_version'],
	'saga.transactions has the documented columns');
SELECT col_type_is('saga', 'transactions', 'payload', 'jsonb', 'saga.transactions.payload is jsonb');
SELECT col_type_is('saga', 'transactions', 'owner', 'text', 'saga.transactions.owner is text');
SELECT col_type_is('saga', 'transactions', 'saga_key', 'bigint', 'saga.transactions.saga_key is bigint');

SELECT has_view('saga', 'steps', 'view saga.steps exists');
SELECT columns_are('saga', 'steps', ARRAY[
	'gid', 'step', 'name', 'target', 'status', 'attempts', 'next_attempt_at',
	'last_error', 'last_sqlstate', 'started_at', 'finished_at', 'result', 'confirm_result'],
	'saga.steps has the documented columns');
SELECT col_type_is('saga', 'steps', 'result', 'jsonb', 'saga.steps.result is jsonb');

SELECT has_view('saga', 'history', 'view saga.history exists');
SELECT columns_are('saga', 'history', ARRAY['gid', 'step', 'at', 'event', 'detail'],
	'saga.history has the documented columns');

SELECT has_view('saga', 'stats', 'view saga.stats exists');
SELECT columns_are('saga', 'stats', ARRAY[
	'status', 'sagas', 'finished_last_minute', 'per_second_last_5min',
	'latency_p50_last_5min', 'latency_p99_last_5min', 'oldest_submitted',
	'finished_last_5min', 'finished_last_hour', 'per_second_last_hour',
	'latency_p50_last_hour', 'latency_p99_last_hour', 'latency_max_last_5min',
	'retries_last_5min', 'steps_waiting_retry', 'oldest_age'],
	'saga.stats has its documented columns');

SELECT is(
	ARRAY(SELECT c.relname::text FROM pg_class c
		  WHERE c.relnamespace = 'saga'::regnamespace AND c.relkind = 'v'
			AND NOT ('security_invoker=true' = ANY (coalesce(c.reloptions, '{}')))
		  ORDER BY 1),
	'{}'::text[],
	'every view runs with security_invoker, so row-level security applies');
SELECT is(
	ARRAY(SELECT a.attrelid::regclass || '.' || a.attname FROM pg_attribute a
		  JOIN pg_class c ON c.oid = a.attrelid
		  WHERE c.relnamespace = 'saga'::regnamespace AND c.relkind = 'v'
			AND a.attnum > 0 AND a.attname ~* '(password|secret|conn)'
		  ORDER BY 1),
	'{}'::text[],
	'no view has a column that could hold a password');

-- Row-level security on the catalog.
SELECT ok((SELECT relrowsecurity FROM pg_class WHERE oid = 'saga.gtx'::regclass),
	'saga.gtx has row-level security');
SELECT ok((SELECT relrowsecurity FROM pg_class WHERE oid = 'saga.gtx_step'::regclass),
	'saga.gtx_step has row-level security');
SELECT ok((SELECT relrowsecurity FROM pg_class WHERE oid = 'saga.gtx_event'::regclass),
	'saga.gtx_event has row-level security');

-- The role saga_admin.
SELECT has_role('saga_admin', 'role saga_admin exists');
SELECT is((SELECT rolcanlogin FROM pg_roles WHERE rolname = 'saga_admin'), false,
	'saga_admin is NOLOGIN');
SELECT is((SELECT rolsuper FROM pg_roles WHERE rolname = 'saga_admin'), false,
	'saga_admin is not a superuser');

-- The wrapper for targets.
SELECT ok(EXISTS (SELECT 1 FROM pg_foreign_data_wrapper WHERE fdwname = 'pg_saga'),
	'foreign-data wrapper pg_saga exists');
SELECT is((SELECT fdwhandler FROM pg_foreign_data_wrapper WHERE fdwname = 'pg_saga'), 0::oid,
	'pg_saga is validator-only (no handler)');
SELECT isnt((SELECT fdwvalidator FROM pg_foreign_data_wrapper WHERE fdwname = 'pg_saga'), 0::oid,
	'pg_saga has a validator');

-- The extension's settings are reserved and documented.
SELECT is(
	ARRAY(SELECT s FROM unnest(ARRAY['saga.retry_interval', 'saga.max_retry_interval',
			'saga.max_attempts', 'saga.step_timeout', 'saga.connect_timeout',
			'saga.max_workers', 'saga.max_connections_per_target']) AS s
		  WHERE NOT EXISTS (SELECT 1 FROM pg_settings p WHERE p.name = s)),
	'{}'::text[],
	'every documented setting exists');
SELECT is(
	ARRAY(SELECT name::text FROM pg_settings
		  WHERE name LIKE 'saga.%' AND coalesce(short_desc, '') = '' ORDER BY 1),
	'{}'::text[],
	'every setting has a description');
SELECT is(
	ARRAY(SELECT name || '=' || boot_val || coalesce(unit, '') FROM pg_settings
		  WHERE name LIKE 'saga.%' AND name IN ('saga.retry_interval', 'saga.max_retry_interval',
			'saga.max_attempts', 'saga.step_timeout', 'saga.connect_timeout',
			'saga.max_workers', 'saga.max_connections_per_target')
		  ORDER BY name),
	ARRAY['saga.connect_timeout=10000ms', 'saga.max_attempts=5',
		  'saga.max_connections_per_target=8', 'saga.max_retry_interval=300000ms',
		  'saga.max_workers=8', 'saga.retry_interval=1000ms', 'saga.step_timeout=60000ms'],
	'the settings have their documented defaults');

SELECT * FROM finish();
ROLLBACK;
