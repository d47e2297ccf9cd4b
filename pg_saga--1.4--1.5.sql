/*
 * pg_saga--1.4--1.5.sql: a key per saga, and barrier records that go with
 * their saga.
 *
 * Applied by ALTER EXTENSION pg_saga UPDATE, and by CREATE EXTENSION pg_saga
 * after the earlier scripts.  The library of 1.5 also serves databases still
 * on earlier versions; its worker reads the saga keys from its next turn
 * after this update.
 *
 * Until 1.4 a participant's barrier records were keyed by the coordinator
 * and the gid.  Once a saga was purged its gid could be used again, and the
 * new saga's calls then met the old saga's records: answered "duplicate",
 * they never ran.  From 1.5 on, every saga gets a key from a sequence
 * (saga.gtx.saga_key, shown as saga.transactions.saga_key), never reused,
 * also across pg_dump and pg_restore, and its calls go to the participants
 * under the barrier identity "<coordinator id>:<saga key>" instead of the
 * coordinator id alone: its records are its own.  Sagas created before the
 * update keep no key (NULL) and keep their records' old identity, so a saga
 * running across the update still finds the records of its calls made
 * before it.
 *
 * Once final sagas are deleted (saga.purge(), or a DBA's DELETE), the
 * worker tells the participants they used to forget their barrier records
 * (saga_participant.forget(), see pg_saga_participant.sql), in batches per
 * target and role, through the queue saga.barrier_forget.
 */

\echo Use "ALTER EXTENSION pg_saga UPDATE TO '1.5'" to load this file. \quit

-- A key per saga.  The column is added without a default first, so that the
-- sagas already there keep none: their calls keep the identity they had.
CREATE SEQUENCE saga.gtx_saga_key_seq;
ALTER TABLE saga.gtx ADD COLUMN saga_key bigint;
ALTER TABLE saga.gtx ALTER COLUMN saga_key SET DEFAULT pg_catalog.nextval('saga.gtx_saga_key_seq');
ALTER SEQUENCE saga.gtx_saga_key_seq OWNED BY saga.gtx.saga_key;
SELECT pg_catalog.pg_extension_config_dump('saga.gtx_saga_key_seq', '');
REVOKE ALL ON SEQUENCE saga.gtx_saga_key_seq FROM PUBLIC;

/*
 * Owners by name.  Until 1.4 a saga's owner was kept as a role OID, and
 * pg_dump wrote it as a number: restored into another cluster, where the
 * same role names have other OIDs, a saga belonged to whichever role had
 * that number there (it could see and act on the saga), or to none.  From
 * 1.5 on every owner column (saga.gtx.owner here; saga.definition.owner and
 * saga.barrier_forget.owner below) is of type regrole: the same four bytes,
 * binary-compatible with oid (the library reads it as an Oid, whichever
 * version the database is at), but pg_dump writes it as the role's name and
 * pg_restore looks that name up.  A restore into a cluster without one of
 * the roles fails, naming it (role "x" does not exist), as it does for the
 * owner of any other object: create the role and restore again.  An owner
 * whose role was dropped is dumped as its number, as before.
 *
 * PostgreSQL changes no column that a view or policy uses: saga.transactions
 * and the policy gtx_visible are dropped and made again around the change
 * (with their grants and comment).  An update where a view of the user's
 * own reads saga.transactions stops here, naming it: drop that view, update,
 * and create it again.
 */
DROP VIEW saga.transactions;
DROP POLICY gtx_visible ON saga.gtx;
ALTER TABLE saga.gtx ALTER COLUMN owner TYPE regrole;
CREATE POLICY gtx_visible ON saga.gtx FOR SELECT USING (saga._visible(owner));

CREATE VIEW saga.transactions WITH (security_invoker = true) AS
SELECT g.gid, g.mode, g.status,
	   pg_catalog.pg_get_userbyid(g.owner)::text AS owner,
	   g.payload, g.created_at, g.submitted_at, g.finished_at, g.deadline,
	   (SELECT count(*) FROM saga.gtx_step s WHERE s.gtx_id = g.id)::int AS steps,
	   (SELECT count(*) FROM saga.gtx_step s WHERE s.gtx_id = g.id
		  AND s.status IN ('succeeded', 'confirmed', 'compensated', 'skipped'))::int AS steps_done,
	   g.last_error, g.saga_key
  FROM saga.gtx g;
GRANT SELECT ON saga.transactions TO PUBLIC, pg_monitor;
COMMENT ON VIEW saga.transactions IS 'one row per global transaction (saga) the caller may see';
COMMENT ON COLUMN saga.transactions.saga_key IS
	'a key unique to this saga for ever, also after a purge and a reuse of its gid; its barrier records on the participants are keyed by it (NULL: created before pg_saga 1.5)';

/*
 * Barrier records to forget: one row per purged saga and target it used,
 * with the role whose records they are (the saga's owner), the barrier
 * identity its calls used, and, for a saga without a key, its gid.  The
 * worker sends them to saga_participant.forget() in batches per target and
 * role once not_before has passed (the saga's end, plus the longest time a
 * call of it may still take to land, plus saga.forget_delay), and deletes
 * them once the participant committed.  A participant that is down keeps
 * its rows until it is back.  Kept by pg_dump like the sagas.
 */
CREATE TABLE saga.barrier_forget (
	id			bigserial PRIMARY KEY,
	target		text NOT NULL,
	owner		regrole NOT NULL,
	barrier		text NOT NULL,
	gid			text,
	not_before	timestamptz NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('saga.barrier_forget', '');
SELECT pg_catalog.pg_extension_config_dump('saga.barrier_forget_id_seq', '');
REVOKE ALL ON saga.barrier_forget FROM PUBLIC;
REVOKE ALL ON SEQUENCE saga.barrier_forget_id_seq FROM PUBLIC;
COMMENT ON TABLE saga.barrier_forget IS
	'barrier records of purged sagas that the worker has yet to delete on their participants';


/*
 * Bound values: a saga may carry a list of values (args), which its steps
 * use as $1 .. $n, bound on the participant as the parameters of prepared
 * statements, never spliced into SQL text (see "Bound values" in
 * src/barrier.c).  They are data of the saga's owner: kept apart from
 * saga.gtx, whose rows pg_monitor may read, in a table whose rows only the
 * owner, saga_admin members and superusers see.  Dumped like the sagas.
 */
CREATE TABLE saga.gtx_args (
	gtx_id		bigint PRIMARY KEY,
	args		text[] NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('saga.gtx_args', '');
COMMENT ON TABLE saga.gtx_args IS 'the values ($1 .. $n) of each saga given args';
ALTER TABLE saga.gtx_args ENABLE ROW LEVEL SECURITY;
CREATE POLICY gtx_args_owner ON saga.gtx_args FOR SELECT
	USING (EXISTS (SELECT 1 FROM saga.gtx g WHERE g.id = gtx_id
				   AND (g.owner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
						OR pg_catalog.pg_has_role(current_user, 'saga_admin', 'MEMBER'))));
REVOKE ALL ON saga.gtx_args FROM PUBLIC;
GRANT SELECT ON saga.gtx_args TO PUBLIC;

CREATE OR REPLACE VIEW saga.transactions WITH (security_invoker = true) AS
SELECT g.gid, g.mode, g.status,
	   pg_catalog.pg_get_userbyid(g.owner)::text AS owner,
	   g.payload, g.created_at, g.submitted_at, g.finished_at, g.deadline,
	   (SELECT count(*) FROM saga.gtx_step s WHERE s.gtx_id = g.id)::int AS steps,
	   (SELECT count(*) FROM saga.gtx_step s WHERE s.gtx_id = g.id
		  AND s.status IN ('succeeded', 'confirmed', 'compensated', 'skipped'))::int AS steps_done,
	   g.last_error, g.saga_key,
	   (SELECT a.args FROM saga.gtx_args a WHERE a.gtx_id = g.id) AS args
  FROM saga.gtx g;
COMMENT ON COLUMN saga.transactions.args IS
	'the saga''s values ($1 .. $n), shown to its owner, saga_admin members and superusers only';

DROP FUNCTION saga.begin(text, text, interval, jsonb);
CREATE FUNCTION saga.begin(gid text DEFAULT NULL, mode text DEFAULT 'saga',
						   timeout interval DEFAULT NULL, payload jsonb DEFAULT NULL,
						   args text[] DEFAULT NULL)
	RETURNS text AS 'MODULE_PATHNAME', 'saga_begin' LANGUAGE C CALLED ON NULL INPUT VOLATILE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION saga.begin(text, text, interval, jsonb, text[]) IS
	'opens a global transaction in status building and returns its gid';
GRANT EXECUTE ON FUNCTION saga.begin(text, text, interval, jsonb, text[]) TO PUBLIC;

DROP FUNCTION saga.start(saga.step[], text, text, interval, jsonb);
CREATE FUNCTION saga.start(steps saga.step[], gid text DEFAULT NULL, mode text DEFAULT 'saga',
						   timeout interval DEFAULT NULL, payload jsonb DEFAULT NULL,
						   args text[] DEFAULT NULL)
	RETURNS text AS 'MODULE_PATHNAME', 'saga_start' LANGUAGE C CALLED ON NULL INPUT VOLATILE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION saga.start(saga.step[], text, text, interval, jsonb, text[]) IS
	'begins, fills and submits a saga in one statement and returns its gid';
GRANT EXECUTE ON FUNCTION saga.start(saga.step[], text, text, interval, jsonb, text[]) TO PUBLIC;

/*
 * The cascade of a DELETE of sagas (1.2) now also queues the forgetting of
 * the barrier records of those that were final, on every target they had a
 * step on.  A saga never submitted called nothing.  TRUNCATE queues nothing:
 * its records stay on the participants (a reused gid is safe all the same,
 * its new saga has a new key).
 * A deleted saga also takes its values (saga.gtx_args) along.
 */
CREATE OR REPLACE FUNCTION saga._gtx_deleted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	step_timeout interval := coalesce(current_setting('saga.step_timeout', true), '1min')::interval;
	delay interval := coalesce(current_setting('saga.forget_delay', true), '10min')::interval;
BEGIN
	INSERT INTO saga.barrier_forget (target, owner, barrier, gid, not_before)
	SELECT s.target, gone.owner,
		   c.id || coalesce(':' || gone.saga_key, ''),
		   CASE WHEN gone.saga_key IS NULL THEN gone.gid END,
		   gone.finished_at + max(coalesce(s.timeout, step_timeout)) + delay
	  FROM gone
	  JOIN saga.gtx_step s ON s.gtx_id = gone.id
	 CROSS JOIN saga.coordinator c
	 WHERE gone.finished_at IS NOT NULL AND gone.submitted_at IS NOT NULL
	 GROUP BY gone.id, gone.owner, gone.saga_key, gone.gid, gone.finished_at, s.target, c.id
	 ORDER BY gone.id, s.target;
	DELETE FROM saga.gtx_step s USING gone WHERE s.gtx_id = gone.id;
	DELETE FROM saga.gtx_event e USING gone WHERE e.gtx_id = gone.id;
	DELETE FROM saga.gtx_args a USING gone WHERE a.gtx_id = gone.id;
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION saga._gtx_deleted() FROM PUBLIC;

CREATE OR REPLACE FUNCTION saga._gtx_truncated() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	TRUNCATE saga.gtx_step, saga.gtx_event, saga.gtx_args;
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION saga._gtx_truncated() FROM PUBLIC;

/*
 * Definitions: a saga's steps stored once under a name, in versions, and
 * started by name with its values.  A definition is code, not a privilege:
 * a saga started from it runs as the role that starts it.  Its owner (or a
 * superuser or saga_admin member) may redefine or drop it.  Dumped with
 * the database; every saga notes the definition and version it started
 * from.
 */
CREATE TABLE saga.definition (
	name		text NOT NULL,
	version		int NOT NULL,
	owner		regrole NOT NULL,
	mode		text NOT NULL,
	timeout		interval,
	steps		saga.step[] NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (name, version)
);
SELECT pg_catalog.pg_extension_config_dump('saga.definition', '');
REVOKE ALL ON saga.definition FROM PUBLIC;
-- code, readable by every role; written by pg_saga's functions only
ALTER TABLE saga.definition ENABLE ROW LEVEL SECURITY;
CREATE POLICY definition_visible ON saga.definition FOR SELECT USING (true);
GRANT SELECT ON saga.definition TO PUBLIC;
COMMENT ON TABLE saga.definition IS 'saga definitions, one row per version';

ALTER TABLE saga.gtx ADD COLUMN definition text, ADD COLUMN definition_version int;

CREATE VIEW saga.definitions WITH (security_invoker = true) AS
SELECT d.name, d.version, pg_catalog.pg_get_userbyid(d.owner)::text AS owner, d.mode,
	   d.timeout, d.steps, d.created_at
  FROM saga.definition d;
GRANT SELECT ON saga.definitions TO PUBLIC;
COMMENT ON VIEW saga.definitions IS 'saga definitions, every version';

CREATE OR REPLACE VIEW saga.transactions WITH (security_invoker = true) AS
SELECT g.gid, g.mode, g.status,
	   pg_catalog.pg_get_userbyid(g.owner)::text AS owner,
	   g.payload, g.created_at, g.submitted_at, g.finished_at, g.deadline,
	   (SELECT count(*) FROM saga.gtx_step s WHERE s.gtx_id = g.id)::int AS steps,
	   (SELECT count(*) FROM saga.gtx_step s WHERE s.gtx_id = g.id
		  AND s.status IN ('succeeded', 'confirmed', 'compensated', 'skipped'))::int AS steps_done,
	   g.last_error, g.saga_key,
	   (SELECT a.args FROM saga.gtx_args a WHERE a.gtx_id = g.id) AS args,
	   g.definition, g.definition_version
  FROM saga.gtx g;

CREATE FUNCTION saga.define(name text, steps saga.step[], mode text DEFAULT 'saga',
							timeout interval DEFAULT NULL)
	RETURNS int AS 'MODULE_PATHNAME', 'saga_define' LANGUAGE C CALLED ON NULL INPUT VOLATILE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION saga.define(text, saga.step[], text, interval) IS
	'stores a saga''s steps under a name and returns the new version';

CREATE FUNCTION saga.start(definition text, args text[] DEFAULT '{}', gid text DEFAULT NULL,
						   timeout interval DEFAULT NULL, payload jsonb DEFAULT NULL)
	RETURNS text AS 'MODULE_PATHNAME', 'saga_start_definition' LANGUAGE C CALLED ON NULL INPUT VOLATILE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION saga.start(text, text[], text, interval, jsonb) IS
	'starts the newest version of a definition with these values and returns the gid';

CREATE FUNCTION saga.drop_definition(name text) RETURNS void
	AS 'MODULE_PATHNAME', 'saga_drop_definition' LANGUAGE C CALLED ON NULL INPUT VOLATILE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION saga.drop_definition(text) IS
	'drops every version of a definition; sagas already started run on';

GRANT EXECUTE ON FUNCTION saga.define(text, saga.step[], text, interval),
	saga.start(text, text[], text, interval, jsonb), saga.drop_definition(text) TO PUBLIC;

/*
 * saga.run: start, commit, wait, in one statement and one round trip, for
 * a caller that wants the outcome.  A procedure, so that it can commit: it
 * commits first of all, which PostgreSQL refuses (2D000) inside a
 * transaction block or any caller that cannot commit, before anything is
 * written; then it starts the saga as saga.start does, commits the
 * submission (which wakes the worker) and waits as saga.wait does.  No SET
 * clause (a procedure with one cannot commit): every name inside is
 * schema-qualified instead.
 */
CREATE PROCEDURE saga.run(steps saga.step[], INOUT gid text DEFAULT NULL, mode text DEFAULT 'saga',
						  timeout interval DEFAULT NULL, payload jsonb DEFAULT NULL,
						  args text[] DEFAULT NULL, wait interval DEFAULT '30 seconds',
						  INOUT status text DEFAULT NULL)
LANGUAGE plpgsql
AS $run_steps$
BEGIN
	-- what saga.wait would refuse only once the saga is committed
	IF run.wait IS NULL THEN
		RAISE EXCEPTION 'wait must not be NULL' USING ERRCODE = '22004';
	ELSIF run.wait < interval '0' THEN
		RAISE EXCEPTION 'wait must not be negative' USING ERRCODE = '22023';
	END IF;
	COMMIT;
	run.gid := saga.start(run.steps, gid => run.gid, mode => run.mode, timeout => run.timeout,
						  payload => run.payload, args => run.args);
	COMMIT;
	run.status := saga.wait(run.gid, run.wait);
END
$run_steps$;
COMMENT ON PROCEDURE saga.run(saga.step[], text, text, interval, jsonb, text[], interval, text) IS
	'starts a saga as saga.start does, commits, and waits as saga.wait does: returns its gid and status';

CREATE PROCEDURE saga.run(definition text, args text[] DEFAULT '{}', INOUT gid text DEFAULT NULL,
						  timeout interval DEFAULT NULL, payload jsonb DEFAULT NULL,
						  wait interval DEFAULT '30 seconds', INOUT status text DEFAULT NULL)
LANGUAGE plpgsql
AS $run_definition$
BEGIN
	-- what saga.wait would refuse only once the saga is committed
	IF run.wait IS NULL THEN
		RAISE EXCEPTION 'wait must not be NULL' USING ERRCODE = '22004';
	ELSIF run.wait < interval '0' THEN
		RAISE EXCEPTION 'wait must not be negative' USING ERRCODE = '22023';
	END IF;
	COMMIT;
	run.gid := saga.start(run.definition, run.args, gid => run.gid, timeout => run.timeout,
						  payload => run.payload);
	COMMIT;
	run.status := saga.wait(run.gid, run.wait);
END
$run_definition$;
COMMENT ON PROCEDURE saga.run(text, text[], text, interval, jsonb, interval, text) IS
	'starts the newest version of a definition, commits, and waits: returns the gid and status';
GRANT EXECUTE ON PROCEDURE saga.run(saga.step[], text, text, interval, jsonb, text[], interval, text),
	saga.run(text, text[], text, interval, jsonb, interval, text) TO PUBLIC;
