/*
 * pg_saga--1.3--1.4.sql
 *
 * Applied by ALTER EXTENSION pg_saga UPDATE, and by CREATE EXTENSION pg_saga
 * after the earlier scripts.  Needs the library of 1.4; the library also
 * serves databases still on earlier versions.
 */

\echo Use "ALTER EXTENSION pg_saga UPDATE TO '1.4'" to load this file. \quit

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
