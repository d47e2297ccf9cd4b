-- Set-up shared by the regression tests: the extension, a loopback target
-- (this very database acts as the participant) and a helper that turns an
-- error into "SQLSTATE: message" so outputs show both.
CREATE EXTENSION pg_saga;

SELECT extname, extversion, nspname AS schema
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE extname = 'pg_saga';

SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = 'saga_admin';

-- The worker of this database started by itself.
DO $$
BEGIN
	FOR i IN 1..100 LOOP
		PERFORM 1 FROM pg_stat_activity
		 WHERE backend_type = 'pg_saga worker' AND datname = current_database();
		EXIT WHEN FOUND;
		PERFORM pg_sleep(0.1);
		PERFORM pg_stat_clear_snapshot();
	END LOOP;
END
$$;
SELECT count(*) AS workers FROM pg_stat_activity
 WHERE backend_type = 'pg_saga worker' AND datname = current_database();

CREATE FUNCTION try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE sql;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

DO $$
BEGIN
	EXECUTE format('CREATE SERVER loop FOREIGN DATA WRAPPER pg_saga OPTIONS (host %L, port %L, dbname %L)',
				   '127.0.0.1', current_setting('port'), current_database());
END
$$;
CREATE USER MAPPING FOR CURRENT_USER SERVER loop OPTIONS (user 'postgres');

SELECT saga.setup_participant('loop');
SELECT saga.setup_participant('loop');	-- idempotent
SELECT count(*) AS barrier_rows FROM saga_participant.barrier;
-- The participant objects say the version of pg_saga that set them up.
SELECT saga_participant.version() = extversion AS participant_says_its_version
  FROM pg_extension WHERE extname = 'pg_saga';

CREATE TABLE account (id int PRIMARY KEY, balance numeric NOT NULL CHECK (balance >= 0));
INSERT INTO account VALUES (1, 100), (2, 100);
CREATE TABLE ledger (gid text, step int, delta numeric, PRIMARY KEY (gid, step));

-- Options a target may not take.
SELECT try($$CREATE SERVER bad1 FOREIGN DATA WRAPPER pg_saga OPTIONS (password 'x')$$);
SELECT try($$CREATE SERVER bad2 FOREIGN DATA WRAPPER pg_saga OPTIONS (nonsense 'x')$$);
CREATE SERVER other FOREIGN DATA WRAPPER pg_saga OPTIONS (host '127.0.0.1', dbname 'none');
SELECT try($$CREATE USER MAPPING FOR CURRENT_USER SERVER other OPTIONS (host 'x')$$);
SELECT try($$CREATE USER MAPPING FOR CURRENT_USER SERVER other OPTIONS (user 'a', password 'b', sslkey 'c')$$);
DROP SERVER other CASCADE;
