-- Definitions: steps stored once under a name, started by name with values.
CREATE TABLE def_account (id int PRIMARY KEY, balance numeric NOT NULL CHECK (balance >= 0));
INSERT INTO def_account VALUES (1, 100), (2, 100);

SELECT saga.define('def_transfer', ARRAY[
	saga.step('loop', $$UPDATE def_account SET balance = balance - $1 WHERE id = $2$$,
			  $$UPDATE def_account SET balance = balance + $1 WHERE id = $2$$, expect_rows => 1),
	saga.step('loop', $$UPDATE def_account SET balance = balance + $1 WHERE id = $3$$,
			  $$UPDATE def_account SET balance = balance - $1 WHERE id = $3$$, expect_rows => 1)]);
SELECT name, version, mode, timeout, cardinality(steps) AS steps FROM saga.definitions;
SELECT saga.start('def_transfer', ARRAY['10', '1', '2'], gid => 'def1');
SELECT saga.wait('def1', '60 seconds');
SELECT id, balance FROM def_account ORDER BY id;
SELECT gid, status, args, definition, definition_version FROM saga.transactions WHERE gid = 'def1';

-- a redefinition is version 2; the next start takes it
SELECT saga.define('def_transfer', ARRAY[
	saga.step('loop', $$UPDATE def_account SET balance = balance - $1 WHERE id = $2$$,
			  $$UPDATE def_account SET balance = balance + $1 WHERE id = $2$$, expect_rows => 1)],
	timeout => '1 hour');
SELECT saga.start('def_transfer', ARRAY['1', '2', '1'], gid => 'def2');
SELECT saga.wait('def2', '60 seconds');
SELECT gid, definition_version, steps, deadline IS NOT NULL AS has_deadline
  FROM saga.transactions WHERE gid IN ('def1', 'def2') ORDER BY gid;

-- errors, nothing written
SELECT count(*) AS sagas_before FROM saga.gtx \gset
SELECT saga.start('def_nope', ARRAY['1']);
SELECT saga.start('def_transfer', ARRAY['1']);
SELECT saga.start('def_transfer');
SELECT saga.start('def_transfer', ARRAY['1', '2', '1'], gid => 'def1');
SELECT count(*) = :sagas_before AS nothing_written FROM saga.gtx;
SELECT saga.define('def_bad', ARRAY[saga.step('loop', 'SELECT 1', confirm => 'SELECT 2')]);
SELECT saga.define('def_bad', ARRAY[saga.step('loop', 'SELECT 1')], mode => 'nope');
SELECT saga.define('def_bad', ARRAY[]::saga.step[]);
SELECT saga.define('def_bad', ARRAY[saga.step('loop', 'SELECT 1')], mode => 'msg', timeout => '1 minute');
SELECT saga.define('def_bad', ARRAY[saga.step('loop', 'CREATE TABLE x AS SELECT $1')]);
-- targets and mappings are the starter's, checked at start
SELECT saga.define('def_far', ARRAY[saga.step('nowhere', 'SELECT 1')]);
SELECT saga.start('def_far');

-- owner rule
CREATE ROLE regress_def_other;
SET ROLE regress_def_other;
SELECT name, version, owner FROM saga.definitions WHERE name = 'def_transfer' ORDER BY version;
SELECT saga.define('def_transfer', ARRAY[saga.step('loop', 'SELECT 1')]);
SELECT saga.drop_definition('def_transfer');
SELECT saga.start('def_transfer', ARRAY['1', '1', '2']);
RESET ROLE;
DROP ROLE regress_def_other;

SELECT saga.drop_definition('def_far');
SELECT saga.drop_definition('def_far');
SELECT saga.drop_definition('def_transfer');
SELECT count(*) AS definitions FROM saga.definitions;
SELECT gid, status, definition, definition_version FROM saga.transactions WHERE gid IN ('def1', 'def2') ORDER BY gid;
