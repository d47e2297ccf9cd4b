-- The examples of docs/reference.md, run as they are printed there.
-- Statements the reference does not show (set-up, clean-up, making times
-- stable) are marked "(not in the reference)".  The last query checks that
-- every ```sql block of docs/reference.md appears verbatim in this file.

-- (not in the reference) start from an empty catalog, so that the counts
-- below are the examples' own: earlier tests leave sagas behind.
DELETE FROM saga.gtx WHERE status IN ('building', 'succeeded', 'aborted', 'failed');

-- Running example: the target "loop" is this very database.
CREATE TABLE ref_stock (item text PRIMARY KEY, qty int NOT NULL CHECK (qty >= 0));
INSERT INTO ref_stock VALUES ('apple', 3), ('pear', 0);
CREATE TABLE ref_shipment (gid text, item text);

-- saga.begin
SELECT saga.begin('ref-order-1', payload => '{"order": 1}');
SELECT length(saga.begin()) AS uuid_length;

-- saga.add_step
SELECT saga.add_step('ref-order-1', 'loop',
    action       => $$UPDATE ref_stock SET qty = qty - 1 WHERE item = 'apple'$$,
    compensation => $$UPDATE ref_stock SET qty = qty + 1 WHERE item = 'apple'$$,
    name => 'reserve', expect_rows => 1);
SELECT saga.add_step('ref-order-1', 'loop',
    action => $$INSERT INTO ref_shipment VALUES (current_setting('saga.gid'), 'apple')$$,
    name => 'ship');

-- saga.submit, saga.wait, saga.status
BEGIN;
SELECT saga.submit('ref-order-1');
SELECT saga.status('ref-order-1');
COMMIT;
SELECT saga.wait('ref-order-1');
SELECT saga.status('ref-order-1');
SELECT * FROM ref_shipment;

-- expect_rows
BEGIN;
SELECT saga.begin('ref-order-2');
SELECT saga.add_step('ref-order-2', 'loop',
    action       => $$UPDATE ref_stock SET qty = qty - 1 WHERE item = 'banana'$$,
    compensation => $$UPDATE ref_stock SET qty = qty + 1 WHERE item = 'banana'$$,
    expect_rows => 1);
SELECT saga.submit('ref-order-2');
COMMIT;
SELECT saga.wait('ref-order-2');
SELECT step, status, last_sqlstate, last_error FROM saga.steps WHERE gid = 'ref-order-2';

-- after: concurrent steps
BEGIN;
SELECT saga.begin('ref-fanout');
SELECT saga.add_step('ref-fanout', 'loop', $$SELECT 1$$, name => 'a');
SELECT saga.add_step('ref-fanout', 'loop', $$SELECT 2$$, name => 'b', after => '{}');
SELECT saga.add_step('ref-fanout', 'loop', $$SELECT 3$$, name => 'c', after => '{a,b}');
SELECT saga.submit('ref-fanout');
COMMIT;
SELECT saga.wait('ref-fanout');
SELECT name, status FROM saga.steps WHERE gid = 'ref-fanout' ORDER BY step;

-- saga.abort
SELECT saga.begin('ref-draft');
SELECT saga.add_step('ref-draft', 'loop', $$SELECT 1$$);
SELECT saga.abort('ref-draft', 'changed my mind');
SELECT status, last_error FROM saga.transactions WHERE gid = 'ref-draft';

-- saga.retry
CREATE TABLE ref_lock (id int PRIMARY KEY);
INSERT INTO ref_lock VALUES (1);
BEGIN;
SELECT saga.begin('ref-stuck');
SELECT saga.add_step('ref-stuck', 'loop', $$SELECT 1$$,
    compensation => $$INSERT INTO ref_lock VALUES (1)$$, name => 'lock');
SELECT saga.add_step('ref-stuck', 'loop', $$SELECT 1/0$$, name => 'divide');
SELECT saga.submit('ref-stuck');
COMMIT;
SELECT saga.wait('ref-stuck');
SELECT name, status, last_sqlstate FROM saga.steps WHERE gid = 'ref-stuck' ORDER BY step;
DELETE FROM ref_lock;
SELECT saga.retry('ref-stuck');
SELECT saga.wait('ref-stuck');
SELECT name, status FROM saga.steps WHERE gid = 'ref-stuck' ORDER BY step;

-- saga.purge
SELECT saga.purge('1 hour');

-- saga.setup_participant
SELECT saga.setup_participant('loop');

-- (not in the reference) fixed event times, 7 ms apart, so that the
-- timings below are the same on every run: its history is derived from
-- the timestamps of the saga and its steps.
UPDATE saga.gtx SET submitted_at = finished_at - interval '35 ms'
 WHERE gid = 'ref-order-1';
UPDATE saga.gtx_step s
   SET started_at = g.submitted_at + (s.step * 14 - 7) * interval '1 ms',
	   finished_at = g.submitted_at + (s.step * 14) * interval '1 ms'
  FROM saga.gtx g
 WHERE g.id = s.gtx_id AND g.gid = 'ref-order-1';

-- saga.explain
SELECT * FROM saga.explain('ref-order-1');

-- saga.diagram
\pset format unaligned
\pset tuples_only on
SELECT saga.diagram('ref-order-1');
\pset format aligned
\pset tuples_only off

-- views
SELECT gid, mode, status, payload, steps, steps_done, last_error
  FROM saga.transactions WHERE gid LIKE 'ref-order-%' ORDER BY gid;
SELECT gid, step, name, target, status, attempts, last_sqlstate
  FROM saga.steps WHERE gid = 'ref-order-1' ORDER BY step;
SELECT step, event, detail FROM saga.history WHERE gid = 'ref-order-1' ORDER BY at;
SELECT status, sagas, finished_last_minute, finished_last_hour, retries_last_5min
  FROM saga.stats ORDER BY status;

-- the barrier
SELECT gid, step, op, origin FROM saga_participant.barrier
 WHERE gid IN ('ref-order-1', 'ref-stuck') ORDER BY gid, step, op;

-- settings
SELECT name, boot_val AS default, unit, context
  FROM pg_settings WHERE name LIKE 'saga.%' ORDER BY name;

-- SQLSTATEs
CREATE FUNCTION sqlstate_of(call text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE call;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;
SELECT saga.begin('ref-open');
SELECT sqlstate_of(c) AS sqlstate, c AS call FROM unnest(ARRAY[
    $$SELECT saga.status(NULL)$$,
    $$SELECT saga.begin(mode => 'nope')$$,
    $$SELECT saga.begin('ref-order-1')$$,
    $$SELECT saga.status('no-such-saga')$$,
    $$SELECT saga.add_step('ref-open', 'no-such-target', 'SELECT 1')$$,
    $$SELECT saga.add_step('ref-open', 'loop', ' ')$$,
    $$SELECT saga.submit('ref-open')$$,
    $$SELECT saga.add_step('ref-order-1', 'loop', 'SELECT 1')$$,
    $$SELECT saga.retry('ref-order-1')$$,
    $$SELECT saga.abort('ref-order-1')$$,
    $$SELECT saga.diagram(NULL)$$,
    $$SELECT saga.explain('no-such-saga')$$
]) AS c;
DO $$
BEGIN
    PERFORM saga.status('no-such-saga');
EXCEPTION WHEN undefined_object THEN
    RAISE NOTICE 'no such saga (SQLSTATE %)', SQLSTATE;
END
$$;

-- saga.start
SELECT saga.start(ARRAY[
    saga.step('loop', $$UPDATE ref_stock SET qty = qty - 1 WHERE item = 'apple'$$,
                      $$UPDATE ref_stock SET qty = qty + 1 WHERE item = 'apple'$$,
              name => 'reserve', expect_rows => 1),
    saga.step('loop', $$INSERT INTO ref_shipment VALUES (current_setting('saga.gid'), 'apple')$$,
              name => 'ship')],
    gid => 'ref-start');
SELECT saga.wait('ref-start');

-- saga.result
SELECT saga.start(ARRAY[
    saga.step('loop', $$INSERT INTO ref_shipment VALUES (current_setting('saga.gid'), 'pear') RETURNING item$$,
              $$DELETE FROM ref_shipment WHERE gid = current_setting('saga.gid')
                  AND item = current_setting('saga.results')::jsonb #>> '{ship,0,item}'$$,
              name => 'ship'),
    saga.step('loop', $$SELECT current_setting('saga.results')::jsonb #>> '{ship,0,item}' AS shipped$$,
              name => 'check')],
    gid => 'ref-result');
SELECT saga.wait('ref-result');
SELECT saga.result('ref-result');
SELECT step, name, result FROM saga.steps WHERE gid = 'ref-result' ORDER BY step;

-- saga.http: a request as a value
SELECT saga.http('post', '/charges/{$.order.id}', '{"amount": "$1"}');

-- (not in the reference) every ```sql block of docs/reference.md is in
-- this file, and every result printed right under one (a plain ``` block
-- that follows it at once) is in expected/reference.out, one result (a
-- paragraph) at a time.  Paths are relative to where pg_regress runs.
CREATE TEMP TABLE ref_doc (n serial, line text);
CREATE TEMP TABLE ref_self (n serial, line text);
CREATE TEMP TABLE ref_expected (n serial, line text);
\copy ref_doc (line) FROM 'docs/reference.md' WITH (FORMAT csv, DELIMITER E'\x01', QUOTE E'\x02')
\copy ref_self (line) FROM 'sql/reference.sql' WITH (FORMAT csv, DELIMITER E'\x01', QUOTE E'\x02')
\copy ref_expected (line) FROM 'expected/reference.out' WITH (FORMAT csv, DELIMITER E'\x01', QUOTE E'\x02')
WITH lines AS (
	SELECT n, coalesce(line, '') AS line,
		   max(n) FILTER (WHERE line LIKE '```%') OVER (ORDER BY n) AS fence,
		   count(*) FILTER (WHERE line LIKE '```%') OVER (ORDER BY n) AS fences
	  FROM ref_doc
), blocks AS (
	SELECT l.fence, f.line AS opener, string_agg(l.line, E'\n' ORDER BY l.n) AS body
	  FROM lines l JOIN ref_doc f ON f.n = l.fence
	 WHERE l.fences % 2 = 1 AND l.n > l.fence
	 GROUP BY l.fence, f.line
), examples AS (
	SELECT b.body,
		   (SELECT r.body FROM blocks r
			 WHERE r.opener = '```' AND r.fence = b.fence + array_length(string_to_array(b.body, E'\n'), 1) + 2)
		   AS result
	  FROM blocks b
	 WHERE b.opener = '```sql'
), self AS (
	SELECT string_agg(coalesce(line, ''), E'\n' ORDER BY n) AS body FROM ref_self
), expected AS (
	SELECT string_agg(coalesce(line, ''), E'\n' ORDER BY n) AS body FROM ref_expected
)
SELECT count(*) >= 15 AS many_examples,
	   count(e.result) >= 14 AS many_results,
	   coalesce(string_agg(split_part(e.body, E'\n', 1), E'\n')
				FILTER (WHERE strpos(s.body, e.body) = 0), 'none') AS untested_examples,
	   coalesce(string_agg(split_part(e.body, E'\n', 1), E'\n')
				FILTER (WHERE EXISTS (SELECT 1 FROM regexp_split_to_table(e.result, E'\n\n') AS p
									   WHERE strpos(x.body, p) = 0)), 'none') AS wrong_results
  FROM examples e, self s, expected x;

-- (not in the reference) clean-up
DROP FUNCTION sqlstate_of(text);
DROP TABLE ref_stock, ref_shipment, ref_lock;
DELETE FROM saga.gtx WHERE gid LIKE 'ref-%' OR status = 'building';
