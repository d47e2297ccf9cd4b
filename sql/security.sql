-- Who sees and acts on which saga; the password rule; direct writes refused.
CREATE ROLE regress_saga_alice LOGIN;
CREATE ROLE regress_saga_bob LOGIN;
CREATE ROLE regress_saga_boss LOGIN IN ROLE saga_admin;
CREATE ROLE regress_saga_watcher LOGIN IN ROLE pg_monitor;
GRANT USAGE ON FOREIGN SERVER loop TO regress_saga_alice, regress_saga_boss;

-- A non-superuser's mapping must carry a password.
CREATE USER MAPPING FOR regress_saga_alice SERVER loop OPTIONS (user 'regress_saga_alice');
SET ROLE regress_saga_alice;
SELECT saga.begin('alice-1');
SELECT try($$SELECT saga.add_step('alice-1', 'loop', 'SELECT 1')$$);
RESET ROLE;
-- Nor may a mapping FOR PUBLIC without a password serve her.
CREATE SERVER regress_saga_pub FOREIGN DATA WRAPPER pg_saga OPTIONS (host '127.0.0.1', dbname 'none');
CREATE USER MAPPING FOR PUBLIC SERVER regress_saga_pub OPTIONS (user 'anyone');
GRANT USAGE ON FOREIGN SERVER regress_saga_pub TO regress_saga_alice;
SET ROLE regress_saga_alice;
SELECT try($$SELECT saga.add_step('alice-1', 'regress_saga_pub', 'SELECT 1')$$);
RESET ROLE;
DROP SERVER regress_saga_pub CASCADE;
ALTER USER MAPPING FOR regress_saga_alice SERVER loop OPTIONS (ADD password 'secret');
SET ROLE regress_saga_alice;
SELECT saga.add_step('alice-1', 'loop', 'SELECT 1');
SELECT gid, owner, status FROM saga.transactions ORDER BY gid;
-- The target here trusts loopback connections without asking for the
-- password, which a non-superuser may not rely on: the step is refused.
BEGIN;
SELECT saga.begin('alice-trust');
SELECT saga.add_step('alice-trust', 'loop', 'SELECT 1');
SELECT saga.submit('alice-trust');
COMMIT;
SELECT saga.wait('alice-trust');
SELECT step, status, last_sqlstate, last_error FROM saga.steps WHERE gid = 'alice-trust';
-- no direct writes
SELECT try($$UPDATE saga.gtx SET status = 'succeeded'$$);
SELECT try($$INSERT INTO saga.gtx (gid, mode, owner) VALUES ('forged', 'saga', 10)$$);
SELECT try($$DELETE FROM saga.gtx_event$$);
RESET ROLE;

-- Bob sees nothing of Alice's and cannot act on it.
SET ROLE regress_saga_bob;
SELECT count(*) AS visible FROM saga.transactions;
SELECT count(*) AS visible FROM saga.steps;
SELECT count(*) AS visible FROM saga.history;
SELECT count(*) AS visible FROM saga.gtx;
SELECT try($$SELECT saga.status('alice-1')$$);
SELECT try($$SELECT saga.abort('alice-1')$$);
SELECT try($$SELECT saga.add_step('alice-1', 'loop', 'SELECT 1')$$);
SELECT try($$SELECT saga.submit('alice-1')$$);
SELECT try($$SELECT saga.retry('alice-1')$$);
SELECT try($$SELECT saga.wait('alice-1', '0 seconds')$$);
SELECT saga.purge('0 seconds');
-- Bob has no USAGE on the server, nor a mapping
SELECT saga.begin('bob-1');
SELECT try($$SELECT saga.add_step('bob-1', 'loop', 'SELECT 1')$$);
RESET ROLE;
GRANT USAGE ON FOREIGN SERVER loop TO regress_saga_bob;
SET ROLE regress_saga_bob;
SELECT try($$SELECT saga.add_step('bob-1', 'loop', 'SELECT 1')$$);
RESET ROLE;

-- pg_monitor members read every saga and act on none.
SET ROLE regress_saga_watcher;
SELECT gid FROM saga.transactions WHERE gid IN ('alice-1', 'bob-1') ORDER BY gid;
SELECT saga.status('alice-1');
SELECT try($$SELECT saga.abort('alice-1')$$);
SELECT try($$SELECT saga.add_step('alice-1', 'loop', 'SELECT 1')$$);
RESET ROLE;

-- saga_admin members see and act on every saga.
SET ROLE regress_saga_boss;
SELECT gid FROM saga.transactions WHERE gid IN ('alice-1', 'bob-1') ORDER BY gid;
SELECT saga.abort('alice-1');
SELECT saga.status('alice-1');
RESET ROLE;

-- No view shows a password.
SELECT count(*) AS leaks
  FROM (SELECT row_to_json(t)::text AS r FROM saga.transactions t
		UNION ALL SELECT row_to_json(s)::text FROM saga.steps s
		UNION ALL SELECT row_to_json(h)::text FROM saga.history h) x
 WHERE r LIKE '%secret%';

-- The internal helpers are not for users.
SET ROLE regress_saga_bob;
SELECT try($$SELECT saga._start_worker()$$);
RESET ROLE;

DELETE FROM saga.gtx WHERE gid IN ('alice-1', 'bob-1', 'alice-trust');
DROP USER MAPPING FOR regress_saga_alice SERVER loop;
REVOKE USAGE ON FOREIGN SERVER loop FROM regress_saga_alice, regress_saga_bob, regress_saga_boss;
DROP ROLE regress_saga_alice, regress_saga_bob, regress_saga_boss, regress_saga_watcher;
