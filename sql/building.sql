-- A saga built in one transaction: add_step() and submit() take it from
-- what begin() recorded in this transaction instead of looking it up.  The
-- answers must be those of a saga built over several transactions, also
-- after a subtransaction rolled some of it back.
BEGIN;
SELECT saga.begin('b1');
SELECT saga.add_step('b1', 'loop', 'SELECT 1');
SELECT saga.add_step('b1', 'loop', 'SELECT 2', name => 'second');
-- a taken name is refused (the failed call aborts try()'s subtransaction)
SELECT try($$SELECT saga.add_step('b1', 'loop', 'SELECT 3', name => 'second')$$);
SELECT try($$SELECT saga.add_step('b1', 'loop', 'SELECT 3', name => 'step1')$$);
SELECT saga.add_step('b1', 'loop', 'SELECT 3');
SELECT saga.add_step('b1', 'loop', 'SELECT 4', after => '{step1,second}');

-- a rolled-back savepoint takes its steps along, and their numbers and names
SELECT saga.begin('b2');
SELECT saga.add_step('b2', 'loop', 'SELECT 1');
SAVEPOINT s;
SELECT saga.add_step('b2', 'loop', 'SELECT 2', name => 'later');
ROLLBACK TO s;
SELECT saga.add_step('b2', 'loop', 'SELECT 2', name => 'later');
SELECT saga.add_step('b2', 'loop', 'SELECT 3');

-- a released savepoint keeps them
SELECT saga.begin('b3');
SAVEPOINT s2;
SELECT saga.add_step('b3', 'loop', 'SELECT 1');
RELEASE SAVEPOINT s2;
SELECT saga.add_step('b3', 'loop', 'SELECT 2');
SELECT try($$SELECT saga.add_step('b3', 'loop', 'SELECT 3', name => 'step2')$$);

-- submitted or aborted in this transaction, it takes no more steps
SELECT saga.begin('b4');
SELECT saga.add_step('b4', 'loop', 'SELECT 1');
SELECT saga.submit('b4');
SELECT try($$SELECT saga.add_step('b4', 'loop', 'SELECT 2')$$);
SELECT try($$SELECT saga.submit('b4')$$);
SELECT try($$SELECT saga.retry('b4')$$);
SELECT saga.begin('b5');
SELECT saga.abort('b5');
SELECT try($$SELECT saga.add_step('b5', 'loop', 'SELECT 1')$$);
SELECT try($$SELECT saga.submit('b5')$$);

-- an empty saga cannot be submitted
SELECT saga.begin('b6');
SELECT try($$SELECT saga.submit('b6')$$);

-- another role does not see it, even in the transaction that built it
SELECT saga.begin('b7');
CREATE ROLE regress_saga_carol;
GRANT USAGE ON FOREIGN SERVER loop TO regress_saga_carol;
SET ROLE regress_saga_carol;
SELECT try($$SELECT saga.add_step('b7', 'loop', 'SELECT 1')$$);
SELECT try($$SELECT saga.submit('b7')$$);
RESET ROLE;
SELECT saga.add_step('b7', 'loop', 'SELECT 1');

SELECT g.gid, s.step, s.name, s.after_steps, g.status
  FROM saga.gtx g JOIN saga.gtx_step s ON s.gtx_id = g.id
 WHERE g.gid LIKE 'b_'
 ORDER BY g.gid, s.step;
SELECT gid, status FROM saga.gtx WHERE gid LIKE 'b_' ORDER BY gid;
ROLLBACK;
