-- Mode at: the API's rules and SQLSTATEs, and the participant objects on
-- the loopback target (this database is its own participant).

-- mode rules: an at step takes no compensation or confirm (22023)
SELECT try($$SELECT saga.begin('at-e1', mode => 'at')$$);
SELECT try($$SELECT saga.add_step('at-e1', 'loop', 'SELECT 1', 'SELECT 2')$$);
SELECT try($$SELECT saga.add_step('at-e1', 'loop', 'SELECT 1', confirm => 'SELECT 2')$$);
SELECT try($$SELECT saga.add_step('at-e1', 'loop', ' ')$$);
SELECT try($$SELECT saga.add_step('at-e1', 'loop', 'SELECT 1', name => 'ok')$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step('loop', 'SELECT 1', 'SELECT 2')], mode => 'at')$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step('loop', 'SELECT 1', confirm => 'SELECT 2')], mode => 'at')$$);
SELECT try($$SELECT saga.begin('at-e2', mode => 'AT')$$);
-- an at saga takes a timeout (it can be rolled back)
SELECT try($$SELECT saga.begin('at-e3', mode => 'at', timeout => '1 minute')$$);
SELECT gid, mode, status FROM saga.transactions WHERE gid LIKE 'at-e%' ORDER BY gid;
SELECT saga.abort('at-e1');
SELECT saga.abort('at-e3');

-- setup_participant: the one-argument call still works; at_tables enables
CREATE TABLE at_account (id int PRIMARY KEY, owner text, balance numeric NOT NULL CHECK (balance >= 0));
INSERT INTO at_account VALUES (1, 'ann', 100), (2, NULL, 100);
CREATE TABLE at_nokey (id int, note text);
CREATE TABLE at_plain (id int PRIMARY KEY);
SELECT saga.setup_participant('loop');
SELECT saga.setup_participant('loop', at_tables => '{at_account}');
SELECT saga.setup_participant('loop', at_tables => NULL);
SELECT tgname, pg_get_triggerdef(oid) ~ 'at_capture\(''id''\)' AS keyed
  FROM pg_trigger WHERE tgrelid = 'at_account'::regclass ORDER BY tgname;
-- a table without a primary key, an unknown table, a NULL: refused, nothing done
SELECT try($$SELECT saga.setup_participant('loop', at_tables => '{at_plain, at_nokey}')$$);
SELECT try($$SELECT saga.setup_participant('loop', at_tables => '{no_such_table}')$$);
-- the participant's error keeps its detail, hint and context
DO $$
DECLARE
	code text;
	msg text;
	detail text;
	hint text;
	context text;
BEGIN
	PERFORM saga.setup_participant('loop', at_tables => '{at_nokey}');
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
		detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT, context = PG_EXCEPTION_CONTEXT;
	RAISE NOTICE '%: %', code, msg;
	RAISE NOTICE 'detail: %', detail;
	RAISE NOTICE 'hint: %', hint;
	RAISE NOTICE 'context names the participant function: %',
		context LIKE '%PL/pgSQL function saga_participant.at_enable(regclass) line % at RAISE%';
END
$$;
SELECT try($$SELECT saga.setup_participant('loop', at_tables => '{at_plain, NULL}')$$);
SELECT count(*) AS at_plain_triggers FROM pg_trigger WHERE tgrelid = 'at_plain'::regclass;
-- by hand on the participant, for a DBA
SELECT try($$SELECT saga_participant.at_enable('at_nokey')$$);
SELECT try($$SELECT saga_participant.at_enable('saga.transactions')$$);
SELECT saga_participant.at_enable('at_plain');
SELECT saga_participant.at_enable('at_plain');	-- idempotent
SELECT count(*) AS at_plain_triggers FROM pg_trigger WHERE tgrelid = 'at_plain'::regclass;

-- outside at steps the trigger records nothing
UPDATE at_account SET balance = balance WHERE id = 1;
SELECT count(*) AS undo_rows FROM saga_participant.at_undo;

-- an at saga that succeeds: nothing left in the undo and lock tables
SELECT saga.start(ARRAY[
	saga.step('loop', $$UPDATE at_account SET balance = balance - 10 WHERE id = 1$$, expect_rows => 1),
	saga.step('loop', $$UPDATE at_account SET balance = balance + 10, owner = 'bob' WHERE id = 2$$, expect_rows => 1)],
	gid => 'at-ok', mode => 'at');
SELECT saga.wait('at-ok', '60 seconds');
SELECT step, status, last_error FROM saga.steps WHERE gid = 'at-ok' ORDER BY step;
SELECT * FROM at_account ORDER BY id;
SELECT (SELECT count(*) FROM saga_participant.at_undo) AS undo_rows,
	   (SELECT count(*) FROM saga_participant.at_lock) AS lock_rows;
SELECT step, event FROM saga.history WHERE gid = 'at-ok' AND event LIKE 'forget%' ORDER BY at;

-- an at saga whose second step fails: the first step's rows come back
SELECT saga.start(ARRAY[
	saga.step('loop', $$INSERT INTO at_account VALUES (3, 'cy', 5); DELETE FROM at_account WHERE id = 2;
						UPDATE at_account SET balance = 0, owner = NULL WHERE id = 1$$),
	saga.step('loop', $$UPDATE at_account SET balance = balance - 1000 WHERE id = 1$$)],
	gid => 'at-back', mode => 'at');
SELECT saga.wait('at-back', '60 seconds');
SELECT step, status, last_sqlstate FROM saga.steps WHERE gid = 'at-back' ORDER BY step;
SELECT * FROM at_account ORDER BY id;
SELECT (SELECT count(*) FROM saga_participant.at_undo) AS undo_rows,
	   (SELECT count(*) FROM saga_participant.at_lock) AS lock_rows;

-- an at step that changes a table not enabled: a business failure naming it
CREATE TABLE at_other (id int PRIMARY KEY, v int);
SELECT saga.start(ARRAY[
	saga.step('loop', $$UPDATE at_account SET balance = 1 WHERE id = 1; INSERT INTO at_other VALUES (1, 1)$$)],
	gid => 'at-other', mode => 'at');
SELECT saga.wait('at-other', '60 seconds');
SELECT step, status, last_sqlstate, last_error FROM saga.steps WHERE gid = 'at-other';
SELECT (SELECT count(*) FROM at_other) AS at_other_rows,
	   (SELECT balance FROM at_account WHERE id = 1) AS balance_1,
	   (SELECT count(*) FROM saga_participant.at_undo) AS undo_rows;
-- and one without a primary key
SELECT saga.start(ARRAY[saga.step('loop', $$INSERT INTO at_nokey VALUES (1, 'x')$$)],
	gid => 'at-nokey', mode => 'at');
SELECT saga.wait('at-nokey', '60 seconds');
SELECT step, status, last_sqlstate, last_error FROM saga.steps WHERE gid = 'at-nokey';
SELECT count(*) AS at_nokey_rows FROM at_nokey;
-- TRUNCATE of an enabled table in an at step
SELECT saga.start(ARRAY[saga.step('loop', $$TRUNCATE at_plain$$)], gid => 'at-truncate', mode => 'at');
SELECT saga.wait('at-truncate', '60 seconds');
SELECT step, status, last_sqlstate, last_error FROM saga.steps WHERE gid = 'at-truncate';

-- the participant's tables are private to their role
SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class
 WHERE oid IN ('saga_participant.at_undo'::regclass, 'saga_participant.at_lock'::regclass)
 ORDER BY relname;
