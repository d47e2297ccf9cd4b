/*
 * pg_saga--1.5--1.6.sql: HTTP targets (steps that call services), and the
 * lean path (a running saga's ordinary progress in the worker's memory, its
 * ordinary history derived).
 *
 * Applied by ALTER EXTENSION pg_saga UPDATE, and by CREATE EXTENSION pg_saga
 * after the earlier scripts.
 *
 * HTTP targets.  No table changes: a step on an HTTP target (a server of the
 * pg_saga wrapper with the option url) keeps its requests where a step on a
 * database keeps its SQL, in saga.gtx_step's action, compensation and
 * confirm (and saga.step's fields), as the JSON text of the request value
 * saga.http() makes; the kind of the step's target says which of the two it
 * is.  So requests are dumped, restored and kept by later updates like any
 * step text, and every saga of an earlier version runs on unchanged.
 *
 * The lean path.  The library of 1.6 also serves databases
 * still on earlier versions: until this update its worker writes every
 * change and every event, as before; from its next turn after it, it keeps
 * the ordinary progress of the forward phase (the saga started, a step
 * started, a step succeeded with no rows to answer) in shared memory, and
 * writes a saga's rows only when something must be durable (a decision, a
 * failure, a retry's attempt count, the final status).  Sagas running
 * across the update keep everything they stored.
 *
 * What the tables do not say yet, saga._progress() shows: the views below
 * read it and show the newer of the two, as pg_stat_activity shows what
 * backends do.  After a crash the worker calls the steps of unfinished
 * sagas again, and the barrier answers each repeat with its kept result.
 *
 * saga.history keeps one row per state change.  The ordinary events of a
 * saga or msg saga (submitted, a step's action started and succeeded, the
 * final status) are derived from the timestamps of the saga and its steps
 * (saga._events) as long as nothing else was stored of it; a saga that
 * retries, fails, compensates or is aborted stores its whole history, as
 * before.  Submissions store no "submitted" event any more.
 *
 * Participants.  Nothing here: the participant objects are not the
 * extension's, and come from pg_saga_participant.sql, which
 * saga.setup_participant() installs.  That of 1.6 adds
 * saga_participant.version() ('1.6'), which the worker reads once per
 * connection to know which participant functions it may call.  A
 * participant set up by an earlier pg_saga has none, and the worker finds
 * out what it lacks as before, from a missing function's error (42883),
 * until saga.setup_participant() runs there again.
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

-- ---- the lean path ----

-- What the worker keeps in shared memory: one row per saga (step 0: its
-- status and how many of its steps are done) and per step, of the sagas
-- the caller may see.
CREATE FUNCTION saga._progress()
RETURNS TABLE (saga_id bigint, step int, status text, attempts int,
			   next_attempt_at timestamptz, started_at timestamptz,
			   finished_at timestamptz, result_empty boolean, steps_done int)
	AS 'MODULE_PATHNAME', 'saga_progress' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION saga._progress() IS
	'internal: the progress of running sagas that the worker keeps in shared memory';

-- The steps as the worker sees them: their rows, with what memory says newer.
CREATE VIEW saga._steps WITH (security_invoker = true) AS
SELECT s.gtx_id, s.step, s.name, s.target,
	   coalesce(p.status, s.status) AS status,
	   coalesce(p.attempts, s.attempts) AS attempts,
	   CASE WHEN p.saga_id IS NULL THEN s.next_attempt_at ELSE p.next_attempt_at END AS next_attempt_at,
	   s.last_error, s.last_sqlstate,
	   coalesce(p.started_at, s.started_at) AS started_at,
	   CASE WHEN p.saga_id IS NULL THEN s.finished_at ELSE p.finished_at END AS finished_at,
	   coalesce(s.result, CASE WHEN p.result_empty THEN '[]'::jsonb END) AS result,
	   s.confirm_result
  FROM saga.gtx_step s
  LEFT JOIN saga._progress() p ON p.saga_id = s.gtx_id AND p.step = s.step;
COMMENT ON VIEW saga._steps IS 'internal: saga.gtx_step with the progress the worker keeps in memory';

-- The sagas' statuses, likewise, and the steps they have done where the
-- worker knows it (NULL: count them in saga.gtx_step).  Joined once, not
-- per saga: a listing of every saga costs what the two tables cost.
CREATE VIEW saga._sagas WITH (security_invoker = true) AS
SELECT g.*, coalesce(p.status, g.status) AS live_status, p.steps_done AS live_steps_done
  FROM saga.gtx g
  LEFT JOIN saga._progress() p ON p.saga_id = g.id AND p.step = 0;
COMMENT ON VIEW saga._sagas IS 'internal: saga.gtx with the status the worker keeps in memory (live_status)';

GRANT SELECT ON saga._steps, saga._sagas TO PUBLIC;

CREATE OR REPLACE VIEW saga.steps WITH (security_invoker = true) AS
SELECT g.gid, s.step, s.name, s.target, s.status, s.attempts, s.next_attempt_at,
	   s.last_error, s.last_sqlstate, s.started_at, s.finished_at,
	   s.result, s.confirm_result
  FROM saga._steps s JOIN saga.gtx g ON g.id = s.gtx_id;

CREATE OR REPLACE VIEW saga.transactions WITH (security_invoker = true) AS
SELECT g.gid, g.mode, g.live_status AS status,
	   pg_catalog.pg_get_userbyid(g.owner)::text AS owner,
	   g.payload, g.created_at, g.submitted_at, g.finished_at, g.deadline,
	   (SELECT count(*) FROM saga.gtx_step s WHERE s.gtx_id = g.id)::int AS steps,
	   coalesce(g.live_steps_done,
				(SELECT count(*) FROM saga.gtx_step s WHERE s.gtx_id = g.id
				   AND s.status IN ('succeeded', 'confirmed', 'compensated', 'skipped')))::int
		   AS steps_done,
	   g.last_error, g.saga_key,
	   (SELECT a.args FROM saga.gtx_args a WHERE a.gtx_id = g.id) AS args,
	   g.definition, g.definition_version
  FROM saga._sagas g;

/*
 * Every event of every saga: those stored, and those derived from the
 * timestamps.  id is the stored event's (NULL for a derived one).  A saga
 * submitted before 1.6 has its "submitted" stored; one whose worker stored
 * events of its own (anything but a submission or an abort request) has its
 * whole history stored.  Each saga's events are found from its row
 * (LATERAL), so a filter on gid or id reads that saga's alone.
 */
CREATE VIEW saga._events WITH (security_invoker = true) AS
SELECT g.id AS gtx_id, g.gid, x.id, x.step, x.at, x.event, x.detail
  FROM saga.gtx g
  CROSS JOIN LATERAL (
	SELECT e.id, e.step, e.at, e.event, e.detail
	  FROM saga.gtx_event e
	 WHERE e.gtx_id = g.id
	UNION ALL
	SELECT NULL::bigint, NULL::int, g.submitted_at, 'submitted', NULL::text
	 WHERE g.submitted_at IS NOT NULL
	   AND NOT EXISTS (SELECT FROM saga.gtx_event e WHERE e.gtx_id = g.id AND e.event = 'submitted')
	UNION ALL
	SELECT NULL::bigint, d.step, d.at, d.event, d.detail
	  FROM (
		SELECT s.step, s.started_at AS at, 'action_started' AS event,
			   'attempt 1 on ' || s.target AS detail
		  FROM saga._steps s
		 WHERE s.gtx_id = g.id AND s.started_at IS NOT NULL
		UNION ALL
		SELECT s.step, s.finished_at, 'action_succeeded',
			   'applied' || CASE WHEN s.result IS NOT NULL AND s.result <> '[]'::jsonb
								 THEN ', result of ' || pg_catalog.octet_length(s.result::text) || ' bytes'
								 ELSE '' END
		  FROM saga._steps s
		 WHERE s.gtx_id = g.id AND s.status = 'succeeded' AND s.finished_at IS NOT NULL
		UNION ALL
		SELECT NULL::int, g.finished_at, g.status, coalesce(g.last_error, '')
		 WHERE g.finished_at IS NOT NULL AND g.status IN ('succeeded', 'aborted', 'failed')
	  ) d
	 WHERE g.mode IN ('saga', 'msg') AND g.submitted_at IS NOT NULL
	   AND NOT EXISTS (SELECT FROM saga.gtx_event e WHERE e.gtx_id = g.id
						  AND e.event NOT IN ('submitted', 'abort_requested'))
  ) x;
COMMENT ON VIEW saga._events IS
	'internal: the events of every saga, stored or derived from its timestamps (id is NULL when derived)';
GRANT SELECT ON saga._events TO PUBLIC;

CREATE OR REPLACE VIEW saga.history WITH (security_invoker = true) AS
SELECT e.gid, e.step, e.at, e.event, e.detail
  FROM saga._events e;

/* saga.stats: a running saga counts as running, as its worker knows. */
CREATE OR REPLACE VIEW saga.stats WITH (security_invoker = true) AS
WITH retries AS (
	SELECT e.gtx_id, pg_catalog.count(*) AS n
	  FROM saga.gtx_event e
	 WHERE e.event = 'retry_scheduled'
	   AND e.at > pg_catalog.now() - interval '5 minutes'
	 GROUP BY e.gtx_id
), waiting AS (
	-- as the worker knows them: a retried step may have run since its row
	SELECT s.gtx_id, pg_catalog.count(*) AS n
	  FROM saga._steps s
	 WHERE s.next_attempt_at IS NOT NULL
	   AND s.gtx_id IN (SELECT l.id FROM saga.gtx l WHERE l.finished_at IS NULL
						   AND l.status IN ('pending', 'running', 'committing', 'compensating'))
	 GROUP BY s.gtx_id
)
SELECT g.live_status AS status,
	   pg_catalog.count(*) AS sagas,
	   pg_catalog.count(*) FILTER (WHERE g.finished_at > pg_catalog.now() - interval '1 minute')
		   AS finished_last_minute,
	   pg_catalog.round(pg_catalog.count(*) FILTER (WHERE g.finished_at > pg_catalog.now() - interval '5 minutes') / 300.0, 3)
		   AS per_second_last_5min,
	   pg_catalog.percentile_cont(0.5) WITHIN GROUP (ORDER BY g.finished_at - g.submitted_at)
		   FILTER (WHERE g.finished_at > pg_catalog.now() - interval '5 minutes') AS latency_p50_last_5min,
	   pg_catalog.percentile_cont(0.99) WITHIN GROUP (ORDER BY g.finished_at - g.submitted_at)
		   FILTER (WHERE g.finished_at > pg_catalog.now() - interval '5 minutes') AS latency_p99_last_5min,
	   pg_catalog.min(g.submitted_at) FILTER (WHERE g.finished_at IS NULL) AS oldest_submitted,
	   pg_catalog.count(*) FILTER (WHERE g.finished_at > pg_catalog.now() - interval '5 minutes')
		   AS finished_last_5min,
	   pg_catalog.count(*) FILTER (WHERE g.finished_at > pg_catalog.now() - interval '1 hour')
		   AS finished_last_hour,
	   pg_catalog.round(pg_catalog.count(*) FILTER (WHERE g.finished_at > pg_catalog.now() - interval '1 hour') / 3600.0, 3)
		   AS per_second_last_hour,
	   pg_catalog.percentile_cont(0.5) WITHIN GROUP (ORDER BY g.finished_at - g.submitted_at)
		   FILTER (WHERE g.finished_at > pg_catalog.now() - interval '1 hour') AS latency_p50_last_hour,
	   pg_catalog.percentile_cont(0.99) WITHIN GROUP (ORDER BY g.finished_at - g.submitted_at)
		   FILTER (WHERE g.finished_at > pg_catalog.now() - interval '1 hour') AS latency_p99_last_hour,
	   pg_catalog.max(g.finished_at - g.submitted_at)
		   FILTER (WHERE g.finished_at > pg_catalog.now() - interval '5 minutes') AS latency_max_last_5min,
	   coalesce(pg_catalog.sum(r.n), 0)::bigint AS retries_last_5min,
	   coalesce(pg_catalog.sum(w.n), 0)::bigint AS steps_waiting_retry,
	   pg_catalog.now() - pg_catalog.min(coalesce(g.submitted_at, g.created_at))
		   FILTER (WHERE g.finished_at IS NULL) AS oldest_age
  FROM saga._sagas g
  LEFT JOIN retries r ON r.gtx_id = g.id
  LEFT JOIN waiting w ON w.gtx_id = g.id
 GROUP BY g.live_status;

/*
 * saga._timeline (saga.explain, saga.diagram) reads the same events as
 * saga.history, in the order they happened.
 */
CREATE OR REPLACE FUNCTION saga._timeline(gid text)
RETURNS TABLE (seq int, elapsed interval, step int, step_name text, target text,
			   event text, kind text, label text, detail text, attempt int, took interval)
LANGUAGE plpgsql STABLE SECURITY INVOKER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	saga_id bigint;
BEGIN
	IF _timeline.gid IS NULL THEN
		RAISE EXCEPTION 'gid must not be null' USING ERRCODE = '22004';
	END IF;
	SELECT g.id INTO saga_id FROM saga.gtx g WHERE g.gid = _timeline.gid;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'saga "%" does not exist', _timeline.gid USING ERRCODE = '42704';
	END IF;
	RETURN QUERY
	WITH stored_or_derived AS (
		SELECT row_number() OVER (ORDER BY e.at, e.id NULLS FIRST,
								  CASE e.event WHEN 'submitted' THEN 0 WHEN 'action_started' THEN 1
											   WHEN 'action_succeeded' THEN 2 ELSE 3 END) AS id,
			   e.step, e.at, e.event, e.detail
		  FROM saga._events e
		 WHERE e.gtx_id = saga_id
	), ev AS (
		SELECT e.id, e.step, e.at, e.event, e.detail,
			   CASE
				   WHEN e.event LIKE '%\_started' THEN 'call'
				   WHEN e.event IN ('action_succeeded', 'action_blocked', 'compensation_done',
									'confirm_done', 'commit_done', 'rollback_done') THEN 'reply'
				   WHEN e.event IN ('action_failed', 'compensation_failed', 'confirm_failed',
									'resolve_failed', 'retry_scheduled') THEN 'error'
				   WHEN e.event IN ('succeeded', 'aborted', 'failed') AND e.step IS NULL THEN 'final'
				   ELSE 'note'
			   END AS kind
		  FROM stored_or_derived e
	), marked AS (
		SELECT ev.*,
			   min(ev.at) OVER () AS first_at,
			   max(ev.id) FILTER (WHERE ev.kind = 'call')
				   OVER (PARTITION BY ev.step ORDER BY ev.id) AS last_call,
			   max(ev.id) FILTER (WHERE ev.kind IN ('reply', 'error'))
				   OVER (PARTITION BY ev.step ORDER BY ev.id
						 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS last_reply
		  FROM ev
	)
	SELECT (row_number() OVER (ORDER BY m.id))::int,
		   m.at - m.first_at,
		   m.step,
		   s.name,
		   s.target,
		   m.event,
		   m.kind,
		   CASE m.event
			   WHEN 'action_started' THEN 'action'
			   WHEN 'compensation_started' THEN 'compensation'
			   WHEN 'confirm_started' THEN 'confirm'
			   WHEN 'commit_started' THEN 'commit prepared'
			   WHEN 'rollback_started' THEN 'rollback prepared'
			   WHEN 'probe_started' THEN 'look for a prepared attempt'
			   WHEN 'compensation_done' THEN 'compensated'
			   WHEN 'confirm_done' THEN 'confirmed'
			   WHEN 'commit_done' THEN 'committed'
			   WHEN 'rollback_done' THEN 'rolled back'
			   WHEN 'resolve_failed' THEN 'commit or rollback failed'
			   WHEN 'retry' THEN 'retry requested'
			   ELSE replace(m.event, '_', ' ')
		   END,
		   nullif(m.detail, ''),
		   CASE WHEN m.kind = 'call' THEN substring(m.detail FROM '^attempt ([0-9]+)')::int END,
		   CASE
			   WHEN m.kind IN ('reply', 'error') AND m.last_call IS NOT NULL
					AND m.last_call > coalesce(m.last_reply, 0)
			   THEN m.at - (SELECT c.at FROM ev c WHERE c.id = m.last_call)
			   WHEN m.kind = 'final' THEN m.at - m.first_at
		   END
	  FROM marked m
	  LEFT JOIN saga.gtx_step s ON s.gtx_id = saga_id AND s.step = m.step
	 ORDER BY m.id;
END
$$;

-- They read saga._progress(), which only the leader of a parallel query can.
ALTER FUNCTION saga.explain(text) PARALLEL RESTRICTED;
ALTER FUNCTION saga.diagram(text) PARALLEL RESTRICTED;

/*
 * The xa recovery sweep (every saga.recovery_interval, and when the worker
 * starts) lists the targets of xa sagas unfinished or finished within a
 * day.  With no index of its own it read every saga the tables keep, in
 * the worker's turn: 0.25-0.3 s a sweep with a million finished sagas kept,
 * and 13 s once it was planned on an empty table that then filled
 * (BENCHMARKS.md, "1,000,000 finished sagas kept").  This index holds the
 * xa sagas alone, so the sweep costs what they are.  Updates of the other
 * sagas stay HOT as before: mode never changes, and finished_at, which
 * changes once, was indexed already.
 */
CREATE INDEX gtx_xa_idx ON saga.gtx (finished_at) WHERE mode = 'xa';
