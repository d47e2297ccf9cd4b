/*
 * pg_saga--1.1--1.2.sql: cheaper writes to the saga tables.
 *
 * Applied by ALTER EXTENSION pg_saga UPDATE, and by CREATE EXTENSION pg_saga
 * after the 1.0 script and the 1.0--1.1 update.  Needs the library of 1.2
 * (for saga._valid_name); the library also serves databases still on 1.0
 * or 1.1.
 *
 * Every saga costs its worker a few UPDATEs of saga.gtx and saga.gtx_step
 * and a few INSERTs into saga.gtx_event.  The profile of the 1.1 worker
 * (bench/profile.sh) showed three costs in them that carry no information:
 *   - the CHECK constraints on the status columns, IN lists that every
 *     statement parses again from their stored form;
 *   - the foreign keys of gtx_step and gtx_event, a lookup and a row lock
 *     on saga.gtx for every step and event written;
 *   - the partial index of live sagas, whose predicate names status, so no
 *     status change of a saga could be a HOT update.
 * The update keeps what each of them guaranteed, more cheaply.
 */

\echo Use "ALTER EXTENSION pg_saga UPDATE TO '1.2'" to load this file. \quit

-- Status columns accept the names pg_saga knows, checked by one C call.
CREATE FUNCTION saga._valid_name(kind text, name text) RETURNS boolean
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'saga_valid_name';

ALTER TABLE saga.gtx
	DROP CONSTRAINT gtx_mode_check,
	DROP CONSTRAINT gtx_status_check,
	DROP CONSTRAINT gtx_phase_check,
	ADD CONSTRAINT gtx_mode_check CHECK (saga._valid_name('mode', mode)),
	ADD CONSTRAINT gtx_status_check CHECK (saga._valid_name('status', status)),
	ADD CONSTRAINT gtx_phase_check CHECK (saga._valid_name('phase', phase));
ALTER TABLE saga.gtx_step
	DROP CONSTRAINT gtx_step_status_check,
	ADD CONSTRAINT gtx_step_status_check CHECK (saga._valid_name('step status', status));

/*
 * Steps and events belong to their saga.  Only pg_saga's own functions and
 * worker write these tables, always for a saga they hold, so what the
 * foreign keys still did was cascade deletes (saga.purge(), or a DBA's
 * DELETE or TRUNCATE of saga.gtx); triggers do that now, once per
 * statement, as the tables' owner, as the foreign keys' cascades did.
 */
ALTER TABLE saga.gtx_step DROP CONSTRAINT gtx_step_gtx_id_fkey;
ALTER TABLE saga.gtx_event DROP CONSTRAINT gtx_event_gtx_id_fkey;

CREATE FUNCTION saga._gtx_deleted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	DELETE FROM saga.gtx_step s USING gone WHERE s.gtx_id = gone.id;
	DELETE FROM saga.gtx_event e USING gone WHERE e.gtx_id = gone.id;
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION saga._gtx_deleted() FROM PUBLIC;
CREATE TRIGGER gtx_delete_cascade
	AFTER DELETE ON saga.gtx
	REFERENCING OLD TABLE AS gone
	FOR EACH STATEMENT EXECUTE FUNCTION saga._gtx_deleted();

CREATE FUNCTION saga._gtx_truncated() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	TRUNCATE saga.gtx_step, saga.gtx_event;
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION saga._gtx_truncated() FROM PUBLIC;
CREATE TRIGGER gtx_truncate_cascade
	AFTER TRUNCATE ON saga.gtx
	FOR EACH STATEMENT EXECUTE FUNCTION saga._gtx_truncated();

/*
 * Unfinished sagas, found through an index whose predicate only changes when
 * a saga finishes: its status changes before that can be HOT updates, which
 * touch no index.  Room on each page keeps them on their page.
 */
CREATE INDEX gtx_unfinished_idx ON saga.gtx (id) WHERE finished_at IS NULL;
DROP INDEX saga.gtx_live_idx;
ALTER TABLE saga.gtx SET (fillfactor = 80);
ALTER TABLE saga.gtx_step SET (fillfactor = 80);
