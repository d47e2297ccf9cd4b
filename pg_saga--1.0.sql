/* pg_saga--1.0.sql: the coordinator's catalog, views and SQL functions. */

\echo Use "CREATE EXTENSION pg_saga" to load this file. \quit

/*
 * Role whose members see and act on every saga.  Created only when missing:
 * roles are cluster-wide and may already exist from another database.
 */
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'saga_admin') THEN
		CREATE ROLE saga_admin NOLOGIN;
	END IF;
END
$$;

/*
 * Identity of this coordinator on the participants' barrier tables.  A random
 * id made once per database and dumped with it, so it survives failover and
 * pg_dump/pg_restore, and two databases never share barrier rows.
 */
CREATE TABLE saga.coordinator (
	id			text NOT NULL DEFAULT pg_catalog.gen_random_uuid()::text,
	singleton	boolean NOT NULL DEFAULT true PRIMARY KEY CHECK (singleton)
);
INSERT INTO saga.coordinator DEFAULT VALUES;

-- Global transactions.  "phase" tells where a failed saga resumes.
CREATE TABLE saga.gtx (
	id				bigserial PRIMARY KEY,
	gid				text NOT NULL UNIQUE,
	mode			text NOT NULL CHECK (mode IN ('saga', 'tcc', 'xa', 'msg')),
	status			text NOT NULL DEFAULT 'building'
					CHECK (status IN ('building', 'pending', 'running', 'committing',
									  'compensating', 'succeeded', 'aborted', 'failed')),
	phase			text NOT NULL DEFAULT 'forward'
					CHECK (phase IN ('forward', 'commit', 'rollback')),
	owner			oid NOT NULL,
	payload			jsonb,
	timeout			interval,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	submitted_at	timestamptz,
	finished_at		timestamptz,
	deadline		timestamptz,
	abort_requested	boolean NOT NULL DEFAULT false,
	abort_reason	text,
	last_error		text
);
-- The worker reads only live sagas: this index keeps that cheap however
-- much history the table holds.
CREATE INDEX gtx_live_idx ON saga.gtx (id)
	WHERE status IN ('pending', 'running', 'committing', 'compensating');
CREATE INDEX gtx_finished_idx ON saga.gtx (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX gtx_owner_idx ON saga.gtx (owner);

CREATE TABLE saga.gtx_step (
	gtx_id			bigint NOT NULL REFERENCES saga.gtx (id) ON DELETE CASCADE,
	step			int NOT NULL,
	name			text NOT NULL,
	target			text NOT NULL,
	action			text NOT NULL,
	compensation	text,
	confirm			text,
	after_steps		int[] NOT NULL DEFAULT '{}',
	expect_rows		bigint,
	max_attempts	int,
	timeout			interval,
	status			text NOT NULL DEFAULT 'pending'
					CHECK (status IN ('pending', 'running', 'prepared', 'succeeded',
									  'confirmed', 'failed', 'compensated', 'skipped')),
	-- an attempt of the action ended without a known outcome: compensate it
	maybe_applied	boolean NOT NULL DEFAULT false,
	attempts		int NOT NULL DEFAULT 0,
	next_attempt_at	timestamptz,
	last_error		text,
	last_sqlstate	text,
	started_at		timestamptz,
	finished_at		timestamptz,
	PRIMARY KEY (gtx_id, step),
	UNIQUE (gtx_id, name)
);

CREATE TABLE saga.gtx_event (
	id		bigserial PRIMARY KEY,
	gtx_id	bigint NOT NULL REFERENCES saga.gtx (id) ON DELETE CASCADE,
	step	int,
	at		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	event	text NOT NULL,
	detail	text
);
CREATE INDEX gtx_event_gtx_idx ON saga.gtx_event (gtx_id);

-- Sagas are data: pg_dump keeps them with the database.
SELECT pg_catalog.pg_extension_config_dump('saga.coordinator', '');
SELECT pg_catalog.pg_extension_config_dump('saga.gtx', '');
SELECT pg_catalog.pg_extension_config_dump('saga.gtx_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('saga.gtx_step', '');
SELECT pg_catalog.pg_extension_config_dump('saga.gtx_event', '');
SELECT pg_catalog.pg_extension_config_dump('saga.gtx_event_id_seq', '');

/*
 * The deadline counts from the submitting commit.  A deferred trigger runs
 * at that commit, so it stamps the moment the saga becomes visible.  Sagas
 * without a timeout need no such precision: saga.submit() stamps them.
 */
CREATE FUNCTION saga._stamp_submit() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	committed_at timestamptz := clock_timestamp();
BEGIN
	UPDATE saga.gtx
	   SET submitted_at = committed_at,
	       deadline = committed_at + timeout
	 WHERE id = NEW.id;
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION saga._stamp_submit() FROM PUBLIC;

CREATE CONSTRAINT TRIGGER gtx_stamp_submit
	AFTER UPDATE OF status ON saga.gtx
	DEFERRABLE INITIALLY DEFERRED
	FOR EACH ROW
	WHEN (OLD.status = 'building' AND NEW.status = 'pending' AND NEW.timeout IS NOT NULL)
	EXECUTE FUNCTION saga._stamp_submit();

/*
 * Row-level security: a role sees its own sagas; saga_admin and pg_monitor
 * see all.  Nobody but the extension's functions writes these tables.
 */
CREATE FUNCTION saga._visible(owner oid) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT owner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
	    OR pg_has_role(current_user, 'saga_admin', 'MEMBER')
	    OR pg_has_role(current_user, 'pg_monitor', 'MEMBER')
$$;

ALTER TABLE saga.gtx ENABLE ROW LEVEL SECURITY;
ALTER TABLE saga.gtx_step ENABLE ROW LEVEL SECURITY;
ALTER TABLE saga.gtx_event ENABLE ROW LEVEL SECURITY;
CREATE POLICY gtx_visible ON saga.gtx FOR SELECT USING (saga._visible(owner));
CREATE POLICY gtx_step_visible ON saga.gtx_step FOR SELECT
	USING (EXISTS (SELECT 1 FROM saga.gtx g WHERE g.id = gtx_id));
CREATE POLICY gtx_event_visible ON saga.gtx_event FOR SELECT
	USING (EXISTS (SELECT 1 FROM saga.gtx g WHERE g.id = gtx_id));

REVOKE ALL ON ALL TABLES IN SCHEMA saga FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA saga FROM PUBLIC;
GRANT USAGE ON SCHEMA saga TO PUBLIC;
GRANT SELECT ON saga.gtx, saga.gtx_step, saga.gtx_event TO PUBLIC;

-- Views: what users and monitoring read.  security_invoker keeps RLS on.
CREATE VIEW saga.transactions WITH (security_invoker = true) AS
SELECT g.gid, g.mode, g.status,
	   pg_catalog.pg_get_userbyid(g.owner)::text AS owner,
	   g.payload, g.created_at, g.submitted_at, g.finished_at, g.deadline,
	   (SELECT count(*) FROM saga.gtx_step s WHERE s.gtx_id = g.id)::int AS steps,
	   (SELECT count(*) FROM saga.gtx_step s WHERE s.gtx_id = g.id
		  AND s.status IN ('succeeded', 'confirmed', 'compensated', 'skipped'))::int AS steps_done,
	   g.last_error
  FROM saga.gtx g;

CREATE VIEW saga.steps WITH (security_invoker = true) AS
SELECT g.gid, s.step, s.name, s.target, s.status, s.attempts, s.next_attempt_at,
	   s.last_error, s.last_sqlstate, s.started_at, s.finished_at
  FROM saga.gtx_step s JOIN saga.gtx g ON g.id = s.gtx_id;

CREATE VIEW saga.history WITH (security_invoker = true) AS
SELECT g.gid, e.step, e.at, e.event, e.detail
  FROM saga.gtx_event e JOIN saga.gtx g ON g.id = e.gtx_id;

CREATE VIEW saga.stats WITH (security_invoker = true) AS
SELECT g.status,
	   count(*) AS sagas,
	   count(*) FILTER (WHERE g.finished_at > now() - interval '1 minute') AS finished_last_minute,
	   round(count(*) FILTER (WHERE g.finished_at > now() - interval '5 minutes') / 300.0, 3)
		   AS per_second_last_5min,
	   percentile_cont(0.5) WITHIN GROUP (ORDER BY g.finished_at - g.submitted_at)
		   FILTER (WHERE g.finished_at > now() - interval '5 minutes') AS latency_p50_last_5min,
	   percentile_cont(0.99) WITHIN GROUP (ORDER BY g.finished_at - g.submitted_at)
		   FILTER (WHERE g.finished_at > now() - interval '5 minutes') AS latency_p99_last_5min,
	   min(g.submitted_at) FILTER (WHERE g.finished_at IS NULL) AS oldest_submitted
  FROM saga.gtx g
 GROUP BY g.status;

GRANT SELECT ON saga.transactions, saga.steps, saga.history, saga.stats TO PUBLIC;

/* Targets: a validator-only foreign-data wrapper whose options are libpq's. */
CREATE FUNCTION saga.fdw_validator(options text[], catalog oid) RETURNS void
	AS 'MODULE_PATHNAME', 'saga_fdw_validator' LANGUAGE C STRICT;
CREATE FOREIGN DATA WRAPPER pg_saga VALIDATOR saga.fdw_validator;
COMMENT ON FOREIGN DATA WRAPPER pg_saga IS 'targets of pg_saga steps: servers whose options are libpq connection options';

/* The SQL surface.  Every function checks its caller's rights itself. */
CREATE FUNCTION saga.begin(gid text DEFAULT NULL, mode text DEFAULT 'saga',
						   timeout interval DEFAULT NULL, payload jsonb DEFAULT NULL)
	RETURNS text AS 'MODULE_PATHNAME', 'saga_begin' LANGUAGE C CALLED ON NULL INPUT VOLATILE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION saga.begin(text, text, interval, jsonb) IS
	'opens a global transaction in status building and returns its gid';

CREATE FUNCTION saga.add_step(gid text, target text, action text,
							  compensation text DEFAULT NULL, confirm text DEFAULT NULL,
							  name text DEFAULT NULL, after text[] DEFAULT NULL,
							  expect_rows bigint DEFAULT NULL, max_attempts int DEFAULT NULL,
							  timeout interval DEFAULT NULL)
	RETURNS int AS 'MODULE_PATHNAME', 'saga_add_step' LANGUAGE C CALLED ON NULL INPUT VOLATILE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION saga.add_step(text, text, text, text, text, text, text[], bigint, int, interval) IS
	'adds a step to a saga that is being built and returns its number';

CREATE FUNCTION saga.submit(gid text) RETURNS void
	AS 'MODULE_PATHNAME', 'saga_submit' LANGUAGE C CALLED ON NULL INPUT VOLATILE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION saga.submit(text) IS
	'hands a saga to the worker when the calling transaction commits';

CREATE FUNCTION saga.wait(gid text, timeout interval DEFAULT '30 seconds') RETURNS text
	AS 'MODULE_PATHNAME', 'saga_wait' LANGUAGE C CALLED ON NULL INPUT VOLATILE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION saga.wait(text, interval) IS
	'waits until the saga is final or the timeout passes and returns its status';

CREATE FUNCTION saga.status(gid text) RETURNS text
	AS 'MODULE_PATHNAME', 'saga_status' LANGUAGE C CALLED ON NULL INPUT VOLATILE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION saga.status(text) IS 'the current status of a saga';

CREATE FUNCTION saga.abort(gid text, reason text DEFAULT NULL) RETURNS void
	AS 'MODULE_PATHNAME', 'saga_abort' LANGUAGE C CALLED ON NULL INPUT VOLATILE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION saga.abort(text, text) IS
	'rolls back a saga that has not reached its decision, or discards one being built';

CREATE FUNCTION saga.retry(gid text) RETURNS void
	AS 'MODULE_PATHNAME', 'saga_retry' LANGUAGE C CALLED ON NULL INPUT VOLATILE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION saga.retry(text) IS 'resumes a failed saga with fresh attempt counters';

CREATE FUNCTION saga.purge(older_than interval DEFAULT '7 days') RETURNS bigint
	AS 'MODULE_PATHNAME', 'saga_purge' LANGUAGE C CALLED ON NULL INPUT VOLATILE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION saga.purge(interval) IS
	'deletes final sagas that finished before now() - older_than; returns how many';

CREATE FUNCTION saga.setup_participant(target text) RETURNS void
	AS 'MODULE_PATHNAME', 'saga_setup_participant' LANGUAGE C CALLED ON NULL INPUT VOLATILE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION saga.setup_participant(text) IS
	'creates the barrier objects on a target; safe to run again';

/* Wakes this database's worker when the creating transaction commits. */
CREATE FUNCTION saga._start_worker() RETURNS void
	AS 'MODULE_PATHNAME', 'saga_start_worker' LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION saga._start_worker() FROM PUBLIC;
SELECT saga._start_worker();

GRANT EXECUTE ON FUNCTION saga.begin(text, text, interval, jsonb), saga.add_step(text, text, text, text, text, text, text[], bigint, int, interval),
	saga.submit(text), saga.wait(text, interval), saga.status(text), saga.abort(text, text),
	saga.retry(text), saga.purge(interval), saga.setup_participant(text) TO PUBLIC;
