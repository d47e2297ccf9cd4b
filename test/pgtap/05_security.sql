-- Who sees and acts on which saga: row-level security, saga_admin,
-- pg_monitor.  The roles are created inside the test transaction and vanish
-- with it.  The errors (the password rule, USAGE on targets, another role's
-- saga, writes to the tables) are checked once, by pg_regress
-- (sql/security.sql).
BEGIN;
SELECT plan(27);

CREATE ROLE pgtap_sec_alice NOLOGIN;
CREATE ROLE pgtap_sec_bob NOLOGIN;
CREATE ROLE pgtap_sec_admin NOLOGIN IN ROLE saga_admin;
CREATE ROLE pgtap_sec_mon NOLOGIN IN ROLE pg_monitor;

DO $$
BEGIN
	EXECUTE format('CREATE SERVER pgtap_sec_target FOREIGN DATA WRAPPER pg_saga OPTIONS (host %L, port %L, dbname %L)',
				   '127.0.0.1', current_setting('port'), 'pgtap_no_such_db');
END
$$;
GRANT USAGE ON FOREIGN SERVER pgtap_sec_target
	TO pgtap_sec_alice, pgtap_sec_bob, pgtap_sec_admin, pgtap_sec_mon;
CREATE USER MAPPING FOR pgtap_sec_alice SERVER pgtap_sec_target OPTIONS (user 'alice', password 'a-secret');
CREATE USER MAPPING FOR pgtap_sec_bob SERVER pgtap_sec_target OPTIONS (user 'bob', password 'b-secret');
CREATE USER MAPPING FOR pgtap_sec_admin SERVER pgtap_sec_target OPTIONS (user 'admin', password 'c-secret');
CREATE USER MAPPING FOR pgtap_sec_mon SERVER pgtap_sec_target OPTIONS (user 'mon', password 'd-secret');

-- Alice builds two sagas.
SET ROLE pgtap_sec_alice;
SELECT is(saga.begin('pgtap-sec-alice-1'), 'pgtap-sec-alice-1', 'alice begins a saga');
SELECT is(saga.add_step('pgtap-sec-alice-1', 'pgtap_sec_target', 'SELECT 1'), 1,
	'alice adds a step through her mapping with a password');
SELECT is(saga.begin('pgtap-sec-alice-2'), 'pgtap-sec-alice-2', 'alice begins a second saga');
SELECT is(saga.add_step('pgtap-sec-alice-2', 'pgtap_sec_target', 'SELECT 1'), 1, 'with a step');
SELECT is((SELECT owner FROM saga.transactions WHERE gid = 'pgtap-sec-alice-1'), 'pgtap_sec_alice',
	'the owner is alice');

-- The functions act with the extension owner's rights: a role's own
-- operators on its search_path must not run with those rights.
RESET ROLE;
CREATE SCHEMA pgtap_sec_evil AUTHORIZATION pgtap_sec_alice;
SET ROLE pgtap_sec_alice;
CREATE FUNCTION pgtap_sec_evil.texteq(a text, b text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	IF current_user <> 'pgtap_sec_alice' THEN
		RAISE EXCEPTION 'operator of pgtap_sec_alice ran as %', current_user;
	END IF;
	RETURN a OPERATOR(pg_catalog.=) b;
END
$$;
CREATE OPERATOR pgtap_sec_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = pgtap_sec_evil.texteq);
SET search_path = pgtap_sec_evil, pg_catalog, public;
SELECT lives_ok($$SELECT saga.status('pgtap-sec-alice-1')$$,
	'saga.status does not use operators from the caller''s search_path');
SELECT lives_ok($$SELECT saga.add_step('pgtap-sec-alice-2', 'pgtap_sec_target', 'SELECT 2', name => 'evil')$$,
	'saga.add_step does not use operators from the caller''s search_path');
RESET search_path;
RESET ROLE;

-- Bob sees none of Alice's sagas.
SET ROLE pgtap_sec_bob;
SELECT is((SELECT count(*) FROM saga.transactions WHERE gid LIKE 'pgtap-sec-alice-%'), 0::bigint,
	'bob sees none of alice''s sagas in saga.transactions');
SELECT is((SELECT count(*) FROM saga.steps WHERE gid LIKE 'pgtap-sec-alice-%'), 0::bigint,
	'nor in saga.steps');
SELECT is((SELECT count(*) FROM saga.gtx WHERE gid LIKE 'pgtap-sec-alice-%'), 0::bigint,
	'nor in the table saga.gtx');
SELECT is(saga.begin('pgtap-sec-bob-1'), 'pgtap-sec-bob-1', 'bob begins his own saga');
SELECT is(ARRAY(SELECT DISTINCT owner FROM saga.transactions), ARRAY['pgtap_sec_bob'],
	'bob sees his own sagas only');
RESET ROLE;

SELECT is(saga.status('pgtap-sec-alice-1'), 'building', 'alice''s saga is untouched');
SELECT is((SELECT steps FROM saga.transactions WHERE gid = 'pgtap-sec-alice-1'), 1,
	'and still has one step');

-- A member of pg_monitor reads every saga.
SET ROLE pgtap_sec_mon;
SELECT is((SELECT count(*) FROM saga.transactions WHERE gid LIKE 'pgtap-sec-%'), 3::bigint,
	'a pg_monitor member sees every saga');
SELECT is((SELECT count(*) FROM saga.steps WHERE gid LIKE 'pgtap-sec-alice-%'), 3::bigint,
	'and every step');
RESET ROLE;

-- A member of saga_admin sees and acts on every saga.
SET ROLE pgtap_sec_admin;
SELECT is((SELECT count(*) FROM saga.transactions WHERE gid LIKE 'pgtap-sec-%'), 3::bigint,
	'a saga_admin member sees every saga');
SELECT is(saga.status('pgtap-sec-alice-1'), 'building', 'and reads its status');
SELECT lives_ok($$SELECT saga.abort('pgtap-sec-alice-2', 'admin says no')$$,
	'and aborts another role''s saga');
SELECT is(saga.status('pgtap-sec-alice-2'), 'aborted', 'which is then aborted');
SELECT is((SELECT owner FROM saga.transactions WHERE gid = 'pgtap-sec-alice-2'), 'pgtap_sec_alice',
	'and still owned by alice');
RESET ROLE;

-- purge deletes the caller's sagas only, unless the caller is an admin.
UPDATE saga.gtx SET finished_at = now() - interval '8 days' WHERE gid = 'pgtap-sec-alice-2';
SET ROLE pgtap_sec_bob;
SELECT is(saga.purge(), 0::bigint, 'bob''s purge does not delete alice''s old saga');
RESET ROLE;
SELECT is(saga.status('pgtap-sec-alice-2'), 'aborted', 'alice''s old saga is still there');
SET ROLE pgtap_sec_admin;
SELECT is(saga.purge(), 1::bigint, 'a saga_admin member''s purge deletes it');
RESET ROLE;

-- The superuser sees all; no view shows the mappings' passwords.
SELECT is((SELECT count(*) FROM saga.transactions WHERE gid LIKE 'pgtap-sec-%'), 2::bigint,
	'the superuser sees every remaining saga');
SELECT is(
	(SELECT count(*) FROM saga.transactions t
	  WHERE t::text LIKE '%secret%')
	+ (SELECT count(*) FROM saga.steps s WHERE s::text LIKE '%secret%')
	+ (SELECT count(*) FROM saga.history h WHERE h::text LIKE '%secret%'),
	0::bigint, 'no view shows a password');
SELECT is((SELECT rolcanlogin FROM pg_roles WHERE rolname = 'saga_admin'), false,
	'saga_admin cannot log in');

SELECT * FROM finish();
ROLLBACK;
