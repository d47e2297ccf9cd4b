/*
 * pg_saga--1.7--1.8.sql: saga.step() in C.
 *
 * Applied by ALTER EXTENSION pg_saga UPDATE, and by CREATE EXTENSION pg_saga
 * after the earlier scripts.
 *
 * saga.step() was an SQL function with a search_path of its own: it is never
 * inlined, so PostgreSQL parsed, planned and ran its body, under a GUC nest
 * level of its own, at every call (at plan time of the caller's statement,
 * the function being immutable).  That was about a fifth of the CPU of a
 * 2-step saga.start() statement.  Both variants (SQL text, and requests for
 * HTTP targets) now build their row in C, with the same arguments, defaults
 * and result; their comments and grants stay.  Needs the 1.8 library.
 */

\echo Use "ALTER EXTENSION pg_saga UPDATE TO '1.8'" to load this file. \quit

CREATE OR REPLACE FUNCTION saga.step(target text, action text,
									 compensation text DEFAULT NULL, confirm text DEFAULT NULL,
									 name text DEFAULT NULL, after text[] DEFAULT NULL,
									 expect_rows bigint DEFAULT NULL, max_attempts int DEFAULT NULL,
									 timeout interval DEFAULT NULL)
	RETURNS saga.step AS 'MODULE_PATHNAME', 'saga_step_value'
	LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION saga.step(target text, action saga.request,
									 compensation saga.request DEFAULT NULL,
									 confirm saga.request DEFAULT NULL,
									 name text DEFAULT NULL, after text[] DEFAULT NULL,
									 expect_rows bigint DEFAULT NULL, max_attempts int DEFAULT NULL,
									 timeout interval DEFAULT NULL)
	RETURNS saga.step AS 'MODULE_PATHNAME', 'saga_step_request_value'
	LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;
