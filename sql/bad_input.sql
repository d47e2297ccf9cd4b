-- Misuse of the SQL surface beyond api_errors: each call fails with the
-- SQLSTATE and message that docs/errors.md lists, and changes nothing.

-- saga.begin
SELECT try($$SELECT saga.begin(gid => 'bad-1', timeout => '0 seconds')$$);
SELECT try($$SELECT saga.begin(gid => 'bad-1', mode => 'SAGA')$$);
SELECT try($$SELECT saga.begin(gid => 'bad-1', mode => '')$$);
SELECT try($$SELECT saga.begin(gid => 'bad-1', payload => 'not json')$$);
SELECT try($$SELECT saga.begin(gid => 'bad-1', timeout => 'soon')$$);
SELECT count(*) AS leftovers FROM saga.gtx WHERE gid = 'bad-1';

-- saga.add_step
SELECT saga.begin('bad-2');
SELECT try($$SELECT saga.add_step('bad-2', 'loop', 'SELECT 1', name => repeat('n', 64))$$);
SELECT try($$SELECT saga.add_step('bad-2', 'loop', 'SELECT 1', name => '  ')$$);
SELECT try($$SELECT saga.add_step('bad-2', 'loop', 'SELECT 1', name => '')$$);
SELECT try($$SELECT saga.add_step('bad-2', 'loop', 'SELECT 1', timeout => '25 days')$$);
SELECT try($$SELECT saga.add_step('bad-2', 'loop', 'SELECT 1', timeout => '-1 second')$$);
SELECT try($$SELECT saga.add_step('bad-2', 'loop', 'SELECT 1', max_attempts => -3)$$);
SELECT try($$SELECT saga.add_step('bad-2', 'loop', 'SELECT 1', after => '{step1}')$$);
CREATE FOREIGN DATA WRAPPER bad_input_fdw;
CREATE SERVER bad_input_other FOREIGN DATA WRAPPER bad_input_fdw;
SELECT try($$SELECT saga.add_step('bad-2', 'bad_input_other', 'SELECT 1')$$);
CREATE SERVER bad_input_nomap FOREIGN DATA WRAPPER pg_saga OPTIONS (host '127.0.0.1', dbname 'none');
SELECT try($$SELECT saga.add_step('bad-2', 'bad_input_nomap', 'SELECT 1')$$);
SELECT saga.begin('bad-2t', mode => 'tcc');
SELECT try($$SELECT saga.add_step('bad-2t', 'loop', 'SELECT 1', confirm => 'SELECT 1')$$);
SELECT try($$SELECT saga.add_step('bad-2t', 'loop', '', compensation => 'SELECT 1', confirm => 'SELECT 1')$$);
SELECT gid, steps FROM saga.transactions WHERE gid IN ('bad-2', 'bad-2t') ORDER BY gid;

-- calls on a saga past its decision
SELECT saga.add_step('bad-2', 'loop', 'SELECT 1');
SELECT saga.submit('bad-2');
SELECT saga.wait('bad-2');
SELECT try($$SELECT saga.submit('bad-2')$$);
SELECT try($$SELECT saga.add_step('bad-2', 'loop', 'SELECT 2')$$);
SELECT try($$SELECT saga.abort('bad-2')$$);
SELECT try($$SELECT saga.retry('bad-2')$$);
SELECT gid, status, steps FROM saga.transactions WHERE gid = 'bad-2';

-- saga.wait in a transaction whose snapshot would never see the end
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT try($$SELECT saga.wait('bad-2', '0 seconds')$$);
COMMIT;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT try($$SELECT saga.wait('bad-2', '0 seconds')$$);
COMMIT;

-- a NULL gid, and unknown gids, everywhere
SELECT try($$SELECT saga.status(NULL)$$) AS status,
	   try($$SELECT saga.wait(NULL)$$) AS wait,
	   try($$SELECT saga.abort(NULL)$$) AS abort,
	   try($$SELECT saga.retry(NULL)$$) AS retry;
SELECT try($$SELECT saga.retry('nosuch')$$);

-- saga.setup_participant
SELECT try($$SELECT saga.setup_participant(NULL)$$);
SELECT try($$SELECT saga.setup_participant('nosuch')$$);
SELECT try($$SELECT saga.setup_participant('bad_input_other')$$);
SELECT try($$SELECT saga.setup_participant('bad_input_nomap')$$);
-- nothing listens on port 1
CREATE SERVER bad_input_closed FOREIGN DATA WRAPPER pg_saga OPTIONS (host '127.0.0.1', port '1', dbname 'none');
CREATE USER MAPPING FOR CURRENT_USER SERVER bad_input_closed OPTIONS (user 'postgres');
SELECT try($$SELECT saga.setup_participant('bad_input_closed')$$);
DROP SERVER bad_input_closed CASCADE;

-- options a target, a mapping or the wrapper does not take
SELECT try($$CREATE SERVER bad_input_s2 FOREIGN DATA WRAPPER pg_saga OPTIONS (user 'x')$$);
SELECT try($$CREATE SERVER bad_input_s2 FOREIGN DATA WRAPPER pg_saga OPTIONS (replication 'database')$$);
SELECT try($$CREATE SERVER bad_input_s2 FOREIGN DATA WRAPPER pg_saga OPTIONS (client_encoding 'LATIN1')$$);
SELECT try($$CREATE USER MAPPING FOR CURRENT_USER SERVER bad_input_nomap OPTIONS (dbname 'x')$$);
SELECT try($$ALTER FOREIGN DATA WRAPPER pg_saga OPTIONS (host 'x')$$);

DROP SERVER bad_input_nomap;
DROP SERVER bad_input_other;
DROP FOREIGN DATA WRAPPER bad_input_fdw;
DELETE FROM saga.gtx WHERE gid IN ('bad-2', 'bad-2t');
