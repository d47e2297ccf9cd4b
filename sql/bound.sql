-- Bound values: a saga's args are $1 .. $n in its steps, bound on the
-- participant as parameters of prepared statements, never spliced.

CREATE TABLE bound_account (id int PRIMARY KEY, balance numeric NOT NULL CHECK (balance >= 0));
INSERT INTO bound_account VALUES (1, 100), (2, 100);
CREATE TABLE bound_note (id serial PRIMARY KEY, body text, n int);

-- a transfer with bound amounts and ids
SELECT saga.start(ARRAY[
	saga.step('loop', $$UPDATE bound_account SET balance = balance - $1 WHERE id = $2$$,
			  $$UPDATE bound_account SET balance = balance + $1 WHERE id = $2$$, expect_rows => 1),
	saga.step('loop', $$UPDATE bound_account SET balance = balance + $1 WHERE id = $3$$,
			  $$UPDATE bound_account SET balance = balance - $1 WHERE id = $3$$, expect_rows => 1)],
	gid => 'bv1', args => ARRAY['12.5', '1', '2']);
SELECT saga.wait('bv1', '60 seconds');
SELECT id, balance FROM bound_account ORDER BY id;
SELECT gid, status, args FROM saga.transactions WHERE gid = 'bv1';

-- a value with a quote, a semicolon, $$ and a newline arrives as it is;
-- $3 in a literal and a comment is no reference; several statements
SELECT saga.start(ARRAY[
	saga.step('loop', E'INSERT INTO bound_note (body, n) VALUES ($1, $2); -- not $3\n'
					  'UPDATE bound_note SET n = n + $2 WHERE body = $1 AND ''$3'' = ''$3''',
			  expect_rows => 1)],
	gid => 'bv2', args => ARRAY[E'it''s; DROP TABLE bound_account; $$x$$\nnext', '20']);
SELECT saga.wait('bv2', '60 seconds');
SELECT body = E'it''s; DROP TABLE bound_account; $$x$$\nnext' AS same, n FROM bound_note;
SELECT count(*) AS accounts FROM bound_account;

-- the result of a bound SELECT
SELECT saga.start(ARRAY[
	saga.step('loop', 'SELECT id, balance FROM bound_account WHERE id = $1', name => 'read')],
	gid => 'bv3', args => '{2}');
SELECT saga.wait('bv3', '60 seconds');
SELECT saga.result('bv3');

-- a value the participant cannot take: a business failure, compensated
SELECT saga.start(ARRAY[
	saga.step('loop', $$UPDATE bound_account SET balance = balance - 1 WHERE id = $2$$,
			  $$UPDATE bound_account SET balance = balance + 1 WHERE id = $2$$),
	saga.step('loop', $$UPDATE bound_account SET balance = balance + $1 WHERE id = $2$$,
			  $$SELECT 1$$)],
	gid => 'bv4', args => ARRAY['lots', '1']);
SELECT saga.wait('bv4', '60 seconds');
SELECT step, status, attempts, last_sqlstate, split_part(last_error, E'\n', 1) AS error
  FROM saga.steps WHERE gid = 'bv4' ORDER BY step;
SELECT id, balance FROM bound_account ORDER BY id;

-- a value the saga lacks: refused, nothing written
SELECT count(*) AS sagas_before FROM saga.gtx \gset
SELECT saga.start(ARRAY[saga.step('loop', 'SELECT $3')], args => '{a,b}');
SELECT saga.start(ARRAY[saga.step('loop', 'SELECT 1', 'SELECT $1::int')]);
SELECT saga.start(ARRAY[saga.step('loop', 'SELECT $1')], args => '{}');
SELECT saga.start(ARRAY[saga.step('loop', 'SELECT $0')], args => '{a}');
SELECT count(*) = :sagas_before AS nothing_written FROM saga.gtx;
-- no reference: $n in a literal, a comment, a dollar quote
SELECT saga.start(ARRAY[saga.step('loop', $q$SELECT '$1' AS a /* $2 */, $x$ $3 $x$ AS b -- $4$q$)], gid => 'bv5');
SELECT saga.wait('bv5', '60 seconds');
SELECT saga.result('bv5');
-- what cannot be bound
SELECT saga.start(ARRAY[saga.step('loop', 'CREATE TABLE bound_x AS SELECT $1::int AS a')], args => '{1}');
SELECT saga.start(ARRAY[saga.step('loop', 'SELECT $1 INTO bound_y')], args => '{1}');
SELECT saga.start(ARRAY[saga.step('loop', 'SELECT $1 FROM')], args => '{1}');
SELECT saga.start(ARRAY[saga.step('loop', 'SELECT $1')], args => '{{1},{2}}');
SELECT saga.start(ARRAY[saga.step('loop', 'SELECT $1')], mode => 'xa', args => '{1}');
SELECT saga.start(ARRAY[saga.step('loop', 'SELECT $1')], mode => 'at', args => '{1}');
SELECT count(*) = :sagas_before + 1 AS nothing_written FROM saga.gtx;

-- begin and add_step: the same checks
SELECT saga.begin('bv6', args => ARRAY['3']);
SELECT saga.add_step('bv6', 'loop', 'SELECT $2');
SELECT saga.add_step('bv6', 'loop', 'UPDATE bound_account SET balance = balance + $1 WHERE id = 2',
					 'UPDATE bound_account SET balance = balance - $1 WHERE id = 2', expect_rows => 1);
SELECT saga.submit('bv6');
SELECT saga.wait('bv6', '60 seconds');
SELECT id, balance FROM bound_account ORDER BY id;

-- the values are their owner's: not pg_monitor's, not another role's
CREATE ROLE regress_bound_other;
CREATE ROLE regress_bound_watch IN ROLE pg_monitor;
CREATE ROLE regress_bound_admin IN ROLE saga_admin;
SET ROLE regress_bound_watch;
SELECT gid, status, args FROM saga.transactions WHERE gid = 'bv1';
SELECT count(*) AS rows_seen FROM saga.gtx_args;
SET ROLE regress_bound_other;
SELECT count(*) AS sagas_seen FROM saga.transactions WHERE gid = 'bv1';
SELECT count(*) AS rows_seen FROM saga.gtx_args;
SET ROLE regress_bound_admin;
SELECT gid, args FROM saga.transactions WHERE gid = 'bv1';
RESET ROLE;
DROP ROLE regress_bound_other, regress_bound_watch, regress_bound_admin;
