-- saga_participant.run_steps(), called by hand as the worker calls it: the
-- steps of a batch in one statement, each one's fate its own, a repeat
-- answered from the barrier, every effect applied once.
CREATE TABLE bc_account (id int PRIMARY KEY, balance int NOT NULL CHECK (balance >= 0));
INSERT INTO bc_account VALUES (1, 100), (2, 100);
CREATE TABLE bc_seen (gid text, step text);
-- gids, ops, sqls and expect_rows of the steps, all step 1 of coordinator 'bc'
CREATE FUNCTION bc_run(gids text[], ops text[], sqls text[], expect text[])
RETURNS TABLE (i int, reply text, error_sqlstate text, error_message text, cut boolean)
LANGUAGE sql AS $$
	SELECT r.i, r.reply, r.error_sqlstate, r.error_message, r.cut
	  FROM saga_participant.run_steps(
			array_fill('bc'::text, ARRAY[cardinality(gids)]), gids,
			array_fill('1'::text, ARRAY[cardinality(gids)]), ops, sqls, expect,
			array_fill(NULL::text, ARRAY[cardinality(gids)]), array_fill(NULL::text, ARRAY[cardinality(gids)]),
			array_fill('65536'::text, ARRAY[cardinality(gids)]), array_fill(NULL::text, ARRAY[cardinality(gids)]),
			array_fill(NULL::text, ARRAY[cardinality(gids)]), array_fill(NULL::text, ARRAY[cardinality(gids)]),
			array_fill(NULL::text, ARRAY[cardinality(gids)]), array_fill('0'::text, ARRAY[cardinality(gids)])) r
$$;

-- four new actions: one finds no row, one breaks a check; those two alone roll back
SELECT * FROM bc_run('{a,b,c,d}', '{action,action,action,action}',
	ARRAY['UPDATE bc_account SET balance = balance - 10 WHERE id = 1',
		  'UPDATE bc_account SET balance = balance + 10 WHERE id = 3',
		  'UPDATE bc_account SET balance = balance - 1000 WHERE id = 2',
		  'UPDATE bc_account SET balance = balance + 10 WHERE id = 2'], '{1,1,1,1}');
SELECT * FROM bc_account ORDER BY id;
SELECT gid, step, op, origin FROM saga_participant.barrier WHERE coordinator = 'bc' ORDER BY gid, op;

-- again: a and d are repeats, answered from the barrier and not applied;
-- b's compensation comes first, and claims its action's place
SELECT * FROM bc_run('{a,d,b}', '{action,action,compensation}',
	ARRAY['UPDATE bc_account SET balance = balance - 10 WHERE id = 1',
		  'UPDATE bc_account SET balance = balance + 10 WHERE id = 2',
		  'UPDATE bc_account SET balance = balance - 10 WHERE id = 3'], '{1,1,1}');
-- so b's action, arriving late, is hanging and does nothing
SELECT * FROM bc_run('{b}', '{action}', ARRAY['UPDATE bc_account SET balance = balance + 10 WHERE id = 2'], '{1}');
SELECT * FROM bc_account ORDER BY id;
SELECT gid, step, op, origin FROM saga_participant.barrier WHERE coordinator = 'bc' ORDER BY gid, op;

-- each step sees its own saga.gid and saga.step, none of an earlier step's
SELECT * FROM bc_run('{e,f}', '{action,action}',
	ARRAY[$$INSERT INTO bc_seen SELECT current_setting('saga.gid'), current_setting('saga.step')$$,
		  $$INSERT INTO bc_seen SELECT current_setting('saga.gid'), current_setting('saga.step')$$],
	'{NULL,1}');
SELECT * FROM bc_seen ORDER BY gid;

-- bad input fails the step it is in, with its SQLSTATE, and leaves no
-- barrier record: a NULL gid, a NULL statement, SQL that does not parse;
-- sqls shorter than gids leave the last step without one
SELECT * FROM bc_run(ARRAY[NULL, 'h', 'i', 'j', 'k'], '{action,action,action,action,action}',
	ARRAY['UPDATE bc_account SET balance = balance + 1 WHERE id = 1', NULL, 'UPDATE nonsense',
		  'UPDATE bc_account SET balance = balance + 1 WHERE id = 2'], '{1,1,1,1,1}');
SELECT * FROM bc_account ORDER BY id;
SELECT gid FROM saga_participant.barrier WHERE coordinator = 'bc' AND gid IN ('h', 'i', 'j', 'k') ORDER BY gid;

DELETE FROM saga_participant.barrier WHERE coordinator = 'bc';
DROP FUNCTION bc_run(text[], text[], text[], text[]);
DROP TABLE bc_account, bc_seen;
