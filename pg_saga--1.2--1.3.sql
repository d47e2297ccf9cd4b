/*
 * pg_saga--1.2--1.3.sql: a whole saga in one statement.
 *
 * Applied by ALTER EXTENSION pg_saga UPDATE, and by CREATE EXTENSION pg_saga
 * after the earlier scripts.  Needs the library of 1.3 (for saga_start); the
 * library also serves databases still on earlier versions.
 *
 * saga.begin(), one saga.add_step() per step and saga.submit() cost a client
 * a dozen statements and as many round trips.  saga.step() makes a step a
 * value, and saga.start() takes them all and writes the saga, its steps and
 * its submitted event in one statement, with the same checks.
 */

\echo Use "ALTER EXTENSION pg_saga UPDATE TO '1.3'" to load this file. \quit

-- The fields in the order of saga.step()'s arguments; saga_start reads them so.
CREATE TYPE saga.step AS (
	target			text,
	action			text,
	compensation	text,
	confirm			text,
	name			text,
	after			text[],
	expect_rows		bigint,
	max_attempts	int,
	timeout			interval
);
COMMENT ON TYPE saga.step IS 'a step of saga.start(), as saga.step() makes it';

CREATE FUNCTION saga.step(target text, action text,
						  compensation text DEFAULT NULL, confirm text DEFAULT NULL,
						  name text DEFAULT NULL, after text[] DEFAULT NULL,
						  expect_rows bigint DEFAULT NULL, max_attempts int DEFAULT NULL,
						  timeout interval DEFAULT NULL)
	RETURNS saga.step LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
	AS $$ SELECT ROW(target, action, compensation, confirm, name, after,
					 expect_rows, max_attempts, timeout)::saga.step $$;
COMMENT ON FUNCTION saga.step(text, text, text, text, text, text[], bigint, int, interval) IS
	'a step as a value, with the arguments of saga.add_step(); checked by saga.start()';

CREATE FUNCTION saga.start(steps saga.step[], gid text DEFAULT NULL, mode text DEFAULT 'saga',
						   timeout interval DEFAULT NULL, payload jsonb DEFAULT NULL)
	RETURNS text AS 'MODULE_PATHNAME', 'saga_start' LANGUAGE C CALLED ON NULL INPUT VOLATILE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION saga.start(saga.step[], text, text, interval, jsonb) IS
	'begins, fills and submits a saga in one statement and returns its gid';

/*
 * saga.start() inserts a saga as pending: its deadline is stamped at the
 * submitting commit as for saga.submit(), by the same deferred function.
 */
CREATE CONSTRAINT TRIGGER gtx_stamp_start
	AFTER INSERT ON saga.gtx
	DEFERRABLE INITIALLY DEFERRED
	FOR EACH ROW
	WHEN (NEW.status = 'pending' AND NEW.timeout IS NOT NULL)
	EXECUTE FUNCTION saga._stamp_submit();
