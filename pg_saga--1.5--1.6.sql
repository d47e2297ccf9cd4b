/*
 * pg_saga--1.5--1.6.sql: HTTP targets, steps that call services.
 *
 * Applied by ALTER EXTENSION pg_saga UPDATE, and by CREATE EXTENSION pg_saga
 * after the earlier scripts.  No table changes: a step on an HTTP target
 * (a server of the pg_saga wrapper with the option url) keeps its requests
 * where a step on a database keeps its SQL, in saga.gtx_step's action,
 * compensation and confirm (and saga.step's fields), as the JSON text of
 * the request value saga.http() makes; the kind of the step's target says
 * which of the two it is.  So requests are dumped, restored and kept by
 * later updates like any step text, and every saga of an earlier version
 * runs on unchanged.
 */

\echo Use "ALTER EXTENSION pg_saga UPDATE TO '1.6'" to load this file. \quit

-- A request: what saga.http() returns, and saga.step()/saga.add_step() take.
CREATE DOMAIN saga.request AS jsonb
	CHECK (pg_catalog.jsonb_typeof(VALUE) = 'object' AND VALUE ? 'method' AND VALUE ? 'path');
COMMENT ON DOMAIN saga.request IS
	'a request of a step on an HTTP target, as saga.http() makes it';

CREATE FUNCTION saga.http(method text, path text, body jsonb DEFAULT NULL,
						  headers jsonb DEFAULT NULL)
	RETURNS saga.request AS 'MODULE_PATHNAME', 'saga_http'
	LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION saga.http(text, text, jsonb, jsonb) IS
	'a request (method, path under the target''s base URL, JSON body, headers) for a step on an HTTP target';

-- saga.step() and saga.add_step() with requests where SQL text goes.
CREATE FUNCTION saga.step(target text, action saga.request,
						  compensation saga.request DEFAULT NULL, confirm saga.request DEFAULT NULL,
						  name text DEFAULT NULL, after text[] DEFAULT NULL,
						  expect_rows bigint DEFAULT NULL, max_attempts int DEFAULT NULL,
						  timeout interval DEFAULT NULL)
	RETURNS saga.step LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
	AS $$ SELECT ROW(target, action::text, compensation::text, confirm::text, name, after,
					 expect_rows, max_attempts, timeout)::saga.step $$;
COMMENT ON FUNCTION saga.step(text, saga.request, saga.request, saga.request, text, text[], bigint, int, interval) IS
	'a step on an HTTP target as a value, its action, compensation and confirm requests; checked by saga.start()';

CREATE FUNCTION saga.add_step(gid text, target text, action saga.request,
							  compensation saga.request DEFAULT NULL, confirm saga.request DEFAULT NULL,
							  name text DEFAULT NULL, after text[] DEFAULT NULL,
							  expect_rows bigint DEFAULT NULL, max_attempts int DEFAULT NULL,
							  timeout interval DEFAULT NULL)
	RETURNS int LANGUAGE sql VOLATILE
	SET search_path = pg_catalog, pg_temp
	AS $$ SELECT saga.add_step(gid, target, action::text, compensation::text, confirm::text,
							   name, after, expect_rows, max_attempts, timeout) $$;
COMMENT ON FUNCTION saga.add_step(text, text, saga.request, saga.request, saga.request, text, text[], bigint, int, interval) IS
	'adds a step on an HTTP target (its requests) to a saga that is being built and returns its number';

GRANT EXECUTE ON FUNCTION saga.http(text, text, jsonb, jsonb),
	saga.step(text, saga.request, saga.request, saga.request, text, text[], bigint, int, interval),
	saga.add_step(text, text, saga.request, saga.request, saga.request, text, text[], bigint, int, interval)
	TO PUBLIC;
