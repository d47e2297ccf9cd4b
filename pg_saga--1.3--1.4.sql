/*
 * pg_saga--1.3--1.4.sql: step results and AT mode.
 *
 * Applied by ALTER EXTENSION pg_saga UPDATE, and by CREATE EXTENSION pg_saga
 * after the earlier scripts.  Needs the library of 1.4 (for saga_result);
 * the library also serves databases still on earlier versions, and its
 * worker starts keeping results within seconds of this update.
 *
 * The rows an action's (or a tcc confirm's) last statement returns are its
 * result, kept with the step as a jsonb array; later steps read the results
 * of the steps they run after in current_setting('saga.results'), and a
 * compensation reads its own action's too.
 *
 * Mode 'at' rolls a step back from the before-images its participant
 * recorded; see the AT mode section below.
 */

\echo Use "ALTER EXTENSION pg_saga UPDATE TO '1.4'" to load this file. \quit

-- Step results

ALTER TABLE saga.gtx_step
	ADD COLUMN result jsonb,
	ADD COLUMN confirm_result jsonb;

CREATE OR REPLACE VIEW saga.steps WITH (security_invoker = true) AS
SELECT g.gid, s.step, s.name, s.target, s.status, s.attempts, s.next_attempt_at,
	   s.last_error, s.last_sqlstate, s.started_at, s.finished_at,
	   s.result, s.confirm_result
  FROM saga.gtx_step s JOIN saga.gtx g ON g.id = s.gtx_id;
COMMENT ON COLUMN saga.steps.result IS
	'rows returned by the last statement of the action, as a jsonb array ([] for none); NULL until the action finished';
COMMENT ON COLUMN saga.steps.confirm_result IS
	'tcc: the same of the confirm';

CREATE FUNCTION saga.result(gid text) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'saga_result' LANGUAGE C CALLED ON NULL INPUT VOLATILE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION saga.result(text) IS
	'the results of the saga''s steps so far: one key per step whose action finished';
GRANT EXECUTE ON FUNCTION saga.result(text) TO PUBLIC;

-- AT mode
--
-- Mode 'at' needs no new table on the coordinator: the mode is checked by
-- saga._valid_name(), which the 1.4 library extends, and its undo records
-- live on the participants (pg_saga_participant.sql).  setup_participant()
-- takes the tables to enable for it; saga.setup_participant(target) keeps
-- working, at_tables defaulting to none.
DROP FUNCTION saga.setup_participant(text);
CREATE FUNCTION saga.setup_participant(target text, at_tables text[] DEFAULT NULL) RETURNS void
	AS 'MODULE_PATHNAME', 'saga_setup_participant' LANGUAGE C CALLED ON NULL INPUT VOLATILE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION saga.setup_participant(text, text[]) IS
	'creates the barrier objects on a target, and enables at_tables there for mode at; safe to run again';
GRANT EXECUTE ON FUNCTION saga.setup_participant(text, text[]) TO PUBLIC;
