-- saga.explain and saga.diagram: the timeline of one saga as text and as a
-- Mermaid sequence diagram.  Durations vary from run to run, so the outputs
-- below pass through masked(), which turns every duration into "T".
CREATE FUNCTION masked(t text) RETURNS text LANGUAGE sql AS $$
	SELECT regexp_replace(
			   regexp_replace(t, '^ *\+[0-9.]+ [a-z]+( [0-9]+ [a-z]+)?', '+T'),
			   '[0-9]+(\.[0-9]+)? (ms|s|min|h)\M( [0-9]+ (s|min)\M)?', 'T', 'g')
$$;

CREATE TABLE pic_stock (item text PRIMARY KEY, qty int NOT NULL CHECK (qty >= 0));
INSERT INTO pic_stock VALUES ('apple', 10), ('pear', 0);

-- A saga that succeeds.
BEGIN;
SELECT saga.begin('pic-ok');
SELECT saga.add_step('pic-ok', 'loop',
	action => $$UPDATE pic_stock SET qty = qty - 1 WHERE item = 'apple'$$,
	compensation => $$UPDATE pic_stock SET qty = qty + 1 WHERE item = 'apple'$$,
	name => 'take', expect_rows => 1);
SELECT saga.add_step('pic-ok', 'loop', $$SELECT 1$$);
SELECT saga.submit('pic-ok');
COMMIT;
SELECT saga.wait('pic-ok');
SELECT masked(line) AS explain FROM saga.explain('pic-ok') AS line;
SELECT masked(saga.diagram('pic-ok')) AS diagram;

-- A saga that fails and is compensated.
BEGIN;
SELECT saga.begin('pic-undo');
SELECT saga.add_step('pic-undo', 'loop',
	action => $$UPDATE pic_stock SET qty = qty - 1 WHERE item = 'apple'$$,
	compensation => $$UPDATE pic_stock SET qty = qty + 1 WHERE item = 'apple'$$,
	name => 'take_apple', expect_rows => 1);
SELECT saga.add_step('pic-undo', 'loop',
	action => $$UPDATE pic_stock SET qty = qty - 1 WHERE item = 'pear'$$,
	compensation => $$UPDATE pic_stock SET qty = qty + 1 WHERE item = 'pear'$$,
	name => 'take_pear', expect_rows => 1);
SELECT saga.submit('pic-undo');
COMMIT;
SELECT saga.wait('pic-undo');
SELECT masked(line) AS explain FROM saga.explain('pic-undo') AS line;
SELECT masked(saga.diagram('pic-undo')) AS diagram;

-- Retries: the action fails twice with a serialization failure (40001, a
-- transient error), then succeeds.
-- (a sequence counts the calls: a failed call rolls back everything else)
CREATE SEQUENCE pic_calls;
CREATE FUNCTION pic_flaky() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	calls bigint := nextval('pic_calls');
BEGIN
	IF calls <= 2 THEN
		RAISE EXCEPTION 'could not serialize access (call %)', calls USING ERRCODE = '40001';
	END IF;
	RETURN calls;
END
$$;
BEGIN;
SELECT saga.begin('pic-retry');
SELECT saga.add_step('pic-retry', 'loop', $$SELECT pic_flaky()$$, name => 'flaky');
SELECT saga.submit('pic-retry');
COMMIT;
SELECT saga.wait('pic-retry');
SELECT masked(line) AS explain FROM saga.explain('pic-retry') AS line;
SELECT masked(saga.diagram('pic-retry')) AS diagram;

-- Text that Mermaid would read as markup is escaped: ';' and '#' as entity
-- codes, '<' and '>' too, line breaks become spaces.
BEGIN;
SELECT saga.begin('pic-escape');
SELECT saga.add_step('pic-escape', 'loop',
	$$DO $x$ BEGIN RAISE EXCEPTION E'no; #1 <b>bold</b>\nsecond line'; END $x$ $$);
SELECT saga.submit('pic-escape');
COMMIT;
SELECT saga.wait('pic-escape');
SELECT masked(saga.diagram('pic-escape')) AS diagram;

-- A saga being built has no events yet; a discarded one has one.
SELECT saga.begin('pic-building');
SELECT saga.add_step('pic-building', 'loop', $$SELECT 1$$);
SELECT masked(line) AS explain FROM saga.explain('pic-building') AS line;
SELECT masked(saga.diagram('pic-building')) AS diagram;
SELECT saga.abort('pic-building');
SELECT masked(line) AS explain FROM saga.explain('pic-building') AS line;

-- Errors: NULL, unknown gid.
SELECT try($$SELECT saga.diagram(NULL)$$);
SELECT try($$SELECT * FROM saga.explain(NULL)$$);
SELECT try($$SELECT saga.diagram('pic-nope')$$);
SELECT try($$SELECT * FROM saga.explain('pic-nope')$$);

-- Both read as the caller: another role's saga does not exist for them,
-- while pg_monitor members see every saga.
CREATE ROLE regress_saga_pic_other;
CREATE ROLE regress_saga_pic_monitor IN ROLE pg_monitor;
SET ROLE regress_saga_pic_other;
SELECT try($$SELECT saga.diagram('pic-ok')$$);
SELECT try($$SELECT * FROM saga.explain('pic-ok')$$);
RESET ROLE;
SET ROLE regress_saga_pic_monitor;
SELECT count(*) > 1 AS monitor_sees FROM saga.explain('pic-ok');
SELECT saga.diagram('pic-ok') LIKE 'sequenceDiagram%' AS monitor_draws;
RESET ROLE;

-- How the functions are declared.
SELECT p.oid::regprocedure AS function, p.provolatile AS volatility, p.prosecdef AS security_definer,
	   p.proconfig AS settings
  FROM pg_proc p
 WHERE p.oid IN ('saga.diagram(text)'::regprocedure, 'saga.explain(text)'::regprocedure)
 ORDER BY 1;

-- Monitoring roles may read every view.
SELECT v AS view, has_table_privilege('pg_monitor', v, 'SELECT') AS pg_monitor_reads
  FROM unnest(ARRAY['saga.transactions', 'saga.steps', 'saga.history', 'saga.stats']) AS v;

-- saga.stats: the columns of 1.0 first, then the new ones.
SELECT attname, format_type(atttypid, atttypmod) AS type
  FROM pg_attribute WHERE attrelid = 'saga.stats'::regclass AND attnum > 0 ORDER BY attnum;
-- (other tests leave sagas of their own: only lower bounds are stable)
SELECT status, sagas >= 2 AS two_or_more, retries_last_5min >= 2 AS retried,
	   steps_waiting_retry, oldest_age IS NULL AS all_final
  FROM saga.stats WHERE status IN ('succeeded', 'aborted') ORDER BY status;

DELETE FROM saga.gtx WHERE gid LIKE 'pic-%';
DROP ROLE regress_saga_pic_other, regress_saga_pic_monitor;
DROP FUNCTION pic_flaky();
DROP SEQUENCE pic_calls;
DROP TABLE pic_stock;
DROP FUNCTION masked(text);
