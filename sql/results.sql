-- Step results: the rows an action's last statement returns are kept with
-- the step, and later steps (and compensations) read them from
-- current_setting('saga.results'), passed as a value.

CREATE TABLE res_order (id serial PRIMARY KEY, item text NOT NULL);
CREATE TABLE res_payment (order_id int NOT NULL, amount int NOT NULL);
CREATE TABLE res_seen (gid text, step int, results jsonb);
INSERT INTO res_order (item) VALUES ('kept'), ('kept too');

-- step 1 inserts an order and returns its id, step 2 pays for that id, step 3
-- records what it saw; every step writes what it read in saga.results
SELECT saga.start(ARRAY[
	saga.step('loop', $$INSERT INTO res_seen VALUES (current_setting('saga.gid'), 1, current_setting('saga.results')::jsonb);
						 INSERT INTO res_order (item) VALUES ('book') RETURNING id, item$$,
			  $$DELETE FROM res_order WHERE id = (current_setting('saga.results')::jsonb #>> '{order,0,id}')::int$$,
			  name => 'order'),
	saga.step('loop', $$INSERT INTO res_payment VALUES ((current_setting('saga.results')::jsonb #>> '{order,0,id}')::int, 30)$$,
			  $$DELETE FROM res_payment WHERE order_id = (current_setting('saga.results')::jsonb #>> '{order,0,id}')::int$$,
			  name => 'pay'),
	saga.step('loop', $$INSERT INTO res_seen VALUES (current_setting('saga.gid'), 3, current_setting('saga.results')::jsonb)
						 RETURNING step$$, name => 'note')],
	gid => 'res-1');
SELECT saga.wait('res-1', '60 seconds');
SELECT step, name, status, result FROM saga.steps WHERE gid = 'res-1' ORDER BY step;
SELECT saga.result('res-1');
SELECT step, results FROM res_seen WHERE gid = 'res-1' ORDER BY step;
SELECT o.item, p.amount FROM res_payment p JOIN res_order o ON o.id = p.order_id;

-- the same saga, but its last step fails: step 1's compensation deletes
-- exactly the order it made, and no other
SELECT saga.start(ARRAY[
	saga.step('loop', $$INSERT INTO res_order (item) VALUES ('pen') RETURNING id$$,
			  $$DELETE FROM res_order WHERE id = (current_setting('saga.results')::jsonb #>> '{order,0,id}')::int$$,
			  name => 'order'),
	saga.step('loop', $$INSERT INTO res_payment VALUES ((current_setting('saga.results')::jsonb #>> '{order,0,id}')::int, 5)$$,
			  $$DELETE FROM res_payment WHERE order_id = (current_setting('saga.results')::jsonb #>> '{order,0,id}')::int$$,
			  name => 'pay'),
	saga.step('loop', $$SELECT 1/0$$, name => 'fail')],
	gid => 'res-2');
SELECT saga.wait('res-2', '60 seconds');
SELECT step, name, status, result, last_sqlstate FROM saga.steps WHERE gid = 'res-2' ORDER BY step;
SELECT item FROM res_order ORDER BY id;
SELECT count(*) AS payments FROM res_payment;

-- what the steps see: their dependencies' results, directly or not; steps
-- with no dependency see {}; a statement that returns no rows gives [];
-- the history shows a result's size, not its content
SELECT saga.start(ARRAY[
	saga.step('loop', $$SELECT 'a' AS v$$, name => 'a', after => '{}'),
	saga.step('loop', $$SELECT 'b' AS v$$, name => 'b', after => '{}'),
	saga.step('loop', $$INSERT INTO res_seen VALUES (current_setting('saga.gid'), 3, current_setting('saga.results')::jsonb)$$,
			  name => 'c', after => '{a}'),
	saga.step('loop', $$INSERT INTO res_seen VALUES (current_setting('saga.gid'), 4, current_setting('saga.results')::jsonb)$$,
			  name => 'd', after => '{c}'),
	saga.step('loop', $$INSERT INTO res_seen VALUES (current_setting('saga.gid'), 5, current_setting('saga.results')::jsonb)$$,
			  name => 'e', after => '{}')],
	gid => 'res-deps');
SELECT saga.wait('res-deps', '60 seconds');
SELECT step, results FROM res_seen WHERE gid = 'res-deps' ORDER BY step;
SELECT saga.result('res-deps');
SELECT step, detail FROM saga.history WHERE gid = 'res-deps' AND event = 'action_succeeded' ORDER BY step;

-- values with quotes, backslashes, dollar quotes and unicode arrive intact;
-- results of several rows keep their order, NULLs included
SELECT saga.start(ARRAY[
	saga.step('loop', $q$SELECT * FROM (VALUES (1, E'it''s "quoted" \\ $$ $x$ \u00e9\u4e2d'), (2, NULL)) AS t (n, s) ORDER BY n$q$,
			  name => 'odd'),
	saga.step('loop', $$INSERT INTO res_seen VALUES (current_setting('saga.gid'), 2, current_setting('saga.results')::jsonb)$$)],
	gid => 'res-odd');
SELECT saga.wait('res-odd', '60 seconds');
SELECT result FROM saga.steps WHERE gid = 'res-odd' AND step = 1;
SELECT results = jsonb_build_object('odd', (SELECT result FROM saga.steps WHERE gid = 'res-odd' AND step = 1)) AS intact
  FROM res_seen WHERE gid = 'res-odd';
SELECT results #>> '{odd,0,s}' AS s FROM res_seen WHERE gid = 'res-odd';

-- a result over saga.max_result_size fails the action for a business reason
-- (54000): its remote transaction rolled back, the saga aborted
SELECT saga.start(ARRAY[
	saga.step('loop', $$INSERT INTO res_order (item) VALUES (repeat('x', 70000)) RETURNING item$$, name => 'big')],
	gid => 'res-big');
SELECT saga.wait('res-big', '60 seconds');
SELECT status, last_sqlstate, last_error, result FROM saga.steps WHERE gid = 'res-big';
SELECT count(*) AS big_orders FROM res_order WHERE length(item) = 70000;

-- tcc: a confirm reads its try's result, and its own result is kept too
CREATE TABLE res_hold (id serial PRIMARY KEY, state text NOT NULL);
SELECT saga.start(ARRAY[
	saga.step('loop', $$INSERT INTO res_hold (state) VALUES ('held') RETURNING id$$,
			  compensation => $$UPDATE res_hold SET state = 'released' WHERE id = (current_setting('saga.results')::jsonb #>> '{hold,0,id}')::int$$,
			  confirm => $$UPDATE res_hold SET state = 'taken' WHERE id = (current_setting('saga.results')::jsonb #>> '{hold,0,id}')::int RETURNING state$$,
			  name => 'hold')],
	gid => 'res-tcc', mode => 'tcc');
SELECT saga.wait('res-tcc', '60 seconds');
SELECT state FROM res_hold;
SELECT status, result, confirm_result FROM saga.steps WHERE gid = 'res-tcc';

-- saga.result() on an unknown gid, on NULL, and on a saga still building
SELECT saga.result('no-such-saga');
SELECT saga.result(NULL);
BEGIN;
SELECT saga.begin('res-building');
SELECT saga.result('res-building');
ROLLBACK;

DROP TABLE res_order, res_payment, res_seen, res_hold;
