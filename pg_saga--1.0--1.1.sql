/*
 * pg_saga--1.0--1.1.sql: pictures of a saga, a richer saga.stats for
 * monitoring, grants to pg_monitor, and a restorable coordinator id.
 *
 * Applied by ALTER EXTENSION pg_saga UPDATE, and by CREATE EXTENSION pg_saga
 * right after pg_saga--1.0.sql (there is no separate 1.1 install script).
 * SQL only: the library is the same for 1.0 and 1.1.
 */

\echo Use "ALTER EXTENSION pg_saga UPDATE TO '1.1'" to load this file. \quit

/*
 * pg_dump carries saga.coordinator as extension configuration data, but
 * CREATE EXTENSION has already made a fresh row when pg_restore loads it,
 * and the table holds a single row.  A row loaded into the table replaces
 * the one there, so a restored database keeps its coordinator id (and with
 * it the barrier records on the participants) instead of failing the load.
 */
CREATE FUNCTION saga._coordinator_replace() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	DELETE FROM saga.coordinator;
	RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION saga._coordinator_replace() FROM PUBLIC;

CREATE TRIGGER coordinator_replace
	BEFORE INSERT ON saga.coordinator
	FOR EACH ROW EXECUTE FUNCTION saga._coordinator_replace();

-- saga.stats counts recent retries from this index, not from all history.
CREATE INDEX gtx_event_retry_idx ON saga.gtx_event (at) WHERE event = 'retry_scheduled';

/*
 * What an operator graphs, one row per status present.  The columns of 1.0
 * come first, unchanged; the ones after them are new in 1.1.
 */
CREATE OR REPLACE VIEW saga.stats WITH (security_invoker = true) AS
WITH retries AS (
	SELECT e.gtx_id, pg_catalog.count(*) AS n
	  FROM saga.gtx_event e
	 WHERE e.event = 'retry_scheduled'
	   AND e.at > pg_catalog.now() - interval '5 minutes'
	 GROUP BY e.gtx_id
), waiting AS (
	SELECT s.gtx_id, pg_catalog.count(*) AS n
	  FROM saga.gtx_step s
	 WHERE s.next_attempt_at IS NOT NULL
	   AND s.gtx_id IN (SELECT l.id FROM saga.gtx l
						 WHERE l.status IN ('pending', 'running', 'committing', 'compensating'))
	 GROUP BY s.gtx_id
)
SELECT g.status,
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
	   -- new in 1.1
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
  FROM saga.gtx g
  LEFT JOIN retries r ON r.gtx_id = g.id
  LEFT JOIN waiting w ON w.gtx_id = g.id
 GROUP BY g.status;

COMMENT ON VIEW saga.transactions IS 'one row per global transaction (saga) the caller may see';
COMMENT ON VIEW saga.steps IS 'one row per step of the sagas the caller may see';
COMMENT ON VIEW saga.history IS 'one row per state change of the sagas the caller may see';
COMMENT ON VIEW saga.stats IS
	'per status: how many sagas, recent throughput and latency, retries, age of the oldest unfinished one';

COMMENT ON COLUMN saga.stats.status IS 'status of the sagas counted on this row';
COMMENT ON COLUMN saga.stats.sagas IS 'sagas in this status';
COMMENT ON COLUMN saga.stats.finished_last_minute IS 'of those, finished in the last minute';
COMMENT ON COLUMN saga.stats.per_second_last_5min IS 'of those, finished per second over the last 5 minutes';
COMMENT ON COLUMN saga.stats.latency_p50_last_5min IS 'median time from submit to finish, sagas finished in the last 5 minutes';
COMMENT ON COLUMN saga.stats.latency_p99_last_5min IS '99th percentile of submit to finish, sagas finished in the last 5 minutes';
COMMENT ON COLUMN saga.stats.oldest_submitted IS 'submission time of the oldest saga in this status that is not final';
COMMENT ON COLUMN saga.stats.finished_last_5min IS 'of those, finished in the last 5 minutes';
COMMENT ON COLUMN saga.stats.finished_last_hour IS 'of those, finished in the last hour';
COMMENT ON COLUMN saga.stats.per_second_last_hour IS 'of those, finished per second over the last hour';
COMMENT ON COLUMN saga.stats.latency_p50_last_hour IS 'median time from submit to finish, sagas finished in the last hour';
COMMENT ON COLUMN saga.stats.latency_p99_last_hour IS '99th percentile of submit to finish, sagas finished in the last hour';
COMMENT ON COLUMN saga.stats.latency_max_last_5min IS 'longest time from submit to finish, sagas finished in the last 5 minutes';
COMMENT ON COLUMN saga.stats.retries_last_5min IS 'retries scheduled in the last 5 minutes for sagas now in this status';
COMMENT ON COLUMN saga.stats.steps_waiting_retry IS 'steps of unfinished sagas waiting for their next attempt';
COMMENT ON COLUMN saga.stats.oldest_age IS 'age of the oldest saga in this status that is not final (from submit; from creation while building)';

/*
 * Monitoring roles read every view: none shows a password or a connection
 * string (row-level security already lets pg_monitor see every saga).
 */
GRANT SELECT ON saga.transactions, saga.steps, saga.history, saga.stats TO pg_monitor;

/*
 * The timeline of one saga, read as the caller (row-level security applies):
 * one row per event in the order it happened, with the step it concerns, how
 * long after the first event it came, and for a reply how long the call took.
 * Shared by saga.explain and saga.diagram.
 */
CREATE FUNCTION saga._timeline(gid text)
RETURNS TABLE (seq int, elapsed interval, step int, step_name text, target text,
			   event text, kind text, label text, detail text, attempt int, took interval)
LANGUAGE plpgsql STABLE SECURITY INVOKER PARALLEL SAFE
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
	WITH ev AS (
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
		  FROM saga.gtx_event e
		 WHERE e.gtx_id = saga_id
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
COMMENT ON FUNCTION saga._timeline(text) IS
	'internal: the events of one saga with their steps and timings, for saga.explain and saga.diagram';

-- A duration for people: 840 ms, 2.35 s, 3 min 20 s, 2 h 5 min.
CREATE FUNCTION saga._duration(d interval) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
SET search_path = pg_catalog, pg_temp AS $$
	SELECT CASE
		WHEN s < 1 THEN round(s * 1000)::text || ' ms'
		WHEN s < 60 THEN round(s, 2)::text || ' s'
		WHEN s < 3600 THEN floor(s / 60)::text || ' min ' || floor(s)::int % 60 || ' s'
		ELSE floor(s / 3600)::text || ' h ' || floor(s / 60)::int % 60 || ' min'
	END
	  FROM (SELECT extract(epoch FROM d) AS s) x
$$;
COMMENT ON FUNCTION saga._duration(interval) IS 'internal: a duration as saga.explain and saga.diagram show it';

-- "step 2", or "step 2 (debit)" when the step has a name of its own.
CREATE FUNCTION saga._step_label(step_no int, step_name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT 'step ' || step_no ||
		   CASE WHEN step_name IS NULL OR step_name = 'step' || step_no THEN ''
				ELSE ' (' || step_name || ')' END
$$;
COMMENT ON FUNCTION saga._step_label(int, text) IS 'internal: how saga.explain and saga.diagram name a step';

CREATE FUNCTION saga.explain(gid text) RETURNS SETOF text
LANGUAGE plpgsql STABLE SECURITY INVOKER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	g record;
	t record;
	what text;
BEGIN
	IF explain.gid IS NULL THEN
		RAISE EXCEPTION 'gid must not be null' USING ERRCODE = '22004';
	END IF;
	SELECT x.mode, x.status, x.steps, x.steps_done INTO g
	  FROM saga.transactions x WHERE x.gid = explain.gid;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'saga "%" does not exist', explain.gid USING ERRCODE = '42704';
	END IF;
	RETURN NEXT format('%s (%s mode): %s, %s of %s steps done',
					   explain.gid, g.mode, g.status, g.steps_done, g.steps);
	FOR t IN SELECT * FROM saga._timeline(explain.gid) LOOP
		what := CASE
			WHEN t.step IS NOT NULL
			THEN saga._step_label(t.step, t.step_name) || format(' on %s: ', t.target)
			ELSE ''
		END || t.label;
		IF t.kind = 'call' THEN
			what := what || ' started' ||
				CASE WHEN t.attempt > 1 THEN format(' (attempt %s)', t.attempt) ELSE '' END;
		ELSIF t.kind = 'final' THEN
			what := what || ' after ' || saga._duration(t.took) ||
				coalesce(': ' || t.detail, '');
		ELSE
			what := what || coalesce(': ' || t.detail, '') ||
				coalesce(' (' || saga._duration(t.took) || ')', '');
		END IF;
		RETURN NEXT format('%10s  %s', '+' || saga._duration(t.elapsed), what);
	END LOOP;
END
$$;
COMMENT ON FUNCTION saga.explain(text) IS
	'the timeline of one saga as text, one line per event: steps, retries, compensations, timings';

CREATE FUNCTION saga.diagram(gid text) RETURNS text
LANGUAGE plpgsql STABLE SECURITY INVOKER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	g record;
	t record;
	p record;
	lines text[] := ARRAY['sequenceDiagram'];
	alias jsonb := '{}';
	span text := 'C';
	who text;
	msg text;
	n int := 0;
BEGIN
	IF diagram.gid IS NULL THEN
		RAISE EXCEPTION 'gid must not be null' USING ERRCODE = '22004';
	END IF;
	SELECT x.mode, x.status INTO g FROM saga.transactions x WHERE x.gid = diagram.gid;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'saga "%" does not exist', diagram.gid USING ERRCODE = '42704';
	END IF;

	-- the coordinator, then one participant per target, in step order
	lines := lines || '    participant C as pg_saga'::text;
	FOR p IN SELECT s.target FROM saga.steps s WHERE s.gid = diagram.gid
			  GROUP BY s.target ORDER BY min(s.step) LOOP
		n := n + 1;
		alias := alias || jsonb_build_object(p.target, 'T' || n);
		lines := lines || format('    participant T%s as %s', n, saga._mermaid_text(p.target));
	END LOOP;
	IF n > 0 THEN
		span := 'C,T' || n;
	END IF;
	lines := lines || format('    Note over %s: %s (%s mode)', span,
							 saga._mermaid_text(diagram.gid), g.mode);

	FOR t IN SELECT * FROM saga._timeline(diagram.gid) LOOP
		who := alias ->> t.target;
		-- long error texts would stretch the picture: saga.explain has them whole
		IF length(t.detail) > 100 THEN
			t.detail := left(t.detail, 97) || '...';
		END IF;
		msg := CASE WHEN t.step IS NOT NULL
					THEN saga._step_label(t.step, t.step_name) || ': ' ELSE '' END || t.label;
		IF t.kind = 'call' AND who IS NOT NULL THEN
			lines := lines || format('    C->>%s: %s', who, saga._mermaid_text(
				msg || CASE WHEN t.attempt > 1 THEN format(' (attempt %s)', t.attempt) ELSE '' END));
		ELSIF t.kind IN ('reply', 'error') AND who IS NOT NULL THEN
			lines := lines || format('    %s%sC: %s', who,
				CASE t.kind WHEN 'reply' THEN '-->>' ELSE '--x' END,
				saga._mermaid_text(msg || coalesce(': ' || t.detail, '') ||
								   coalesce(', ' || saga._duration(t.took), '')));
		ELSIF t.kind = 'final' THEN
			lines := lines || format('    Note over %s: %s', span, saga._mermaid_text(
				msg || ' after ' || saga._duration(t.took) || coalesce(': ' || t.detail, '')));
		ELSE
			lines := lines || format('    Note over %s: %s',
				CASE WHEN who IS NOT NULL THEN 'C,' || who ELSE span END,
				saga._mermaid_text(msg || coalesce(': ' || t.detail, '')));
		END IF;
	END LOOP;
	RETURN array_to_string(lines, E'\n');
END
$$;
COMMENT ON FUNCTION saga.diagram(text) IS
	'a Mermaid sequence diagram of one saga as it ran: steps, retries, compensations, timings';

-- Text made safe for one line of a Mermaid diagram.
CREATE FUNCTION saga._mermaid_text(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
SET search_path = pg_catalog, pg_temp AS $$
	-- '#' and ';' go through control characters so that neither escape
	-- is escaped again
	SELECT replace(replace(replace(replace(translate(
			   regexp_replace(t, '[[:space:][:cntrl:]]+', ' ', 'g'),
			   '#;', E'\x01\x02'), E'\x01', '#35;'), E'\x02', '#59;'), '<', '#60;'), '>', '#62;')
$$;
COMMENT ON FUNCTION saga._mermaid_text(text) IS 'internal: text made safe for one line of a Mermaid diagram';

GRANT EXECUTE ON FUNCTION saga.explain(text), saga.diagram(text), saga._timeline(text),
	saga._duration(interval), saga._step_label(int, text), saga._mermaid_text(text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION saga.explain(text), saga.diagram(text) TO pg_monitor;
