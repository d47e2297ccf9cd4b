# 052_at_edges.pl: mode at at its edges, the cases a review found wrong.
#
#  - a change made under another role (a SECURITY DEFINER function, SET
#    ROLE) fails the step (0A000) naming both roles; nothing lands, nothing
#    stays reserved;
#  - two steps without a dependency between them change the same row, a
#    third fails: they are restored in the reverse order of their changes
#    (the participant refuses the other one transiently until then), the
#    saga ends aborted and the row is back exactly; after a dirty rollback
#    of one of them the saga stops as failed, and saga.retry() restores
#    both;
#  - an action with other TimeZone, IntervalStyle, extra_float_digits and
#    DateStyle: timestamptz, interval and float8 columns come back exactly,
#    no false dirty rollback, and the action's own SQL sees its settings;
#  - a table whose columns are named t, k, u, row, key, before, after is
#    restored;
#  - a role without rights on a table cannot reserve its rows in at_lock;
#  - TRUNCATE and ALTER TABLE of a table that is not enabled fail the step
#    (0A000), temporary tables excepted;
#  - a change to a table that is not enabled, rolled back inside the action
#    (an exception block), does not fail the step.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;

my ($coord, $part) = standard_setup();

foreach my $db ('bank_a', 'bank_b')
{
	$part->safe_psql(
		$db, q{
CREATE TABLE plain (id int PRIMARY KEY, note text);
INSERT INTO plain VALUES (1, 'keep me');
CREATE TABLE ts (
	id			int PRIMARY KEY,
	happened	timestamptz,
	span		interval,
	ratio		float8,
	day			date,
	note		text
);
INSERT INTO ts VALUES
	(1, '2024-01-01 00:00:00.123456+00', '1 year 2 mons 3 days 04:05:06.789', 1::float8 / 3, '2024-02-29', NULL),
	(2, NULL, NULL, NULL, NULL, NULL);
CREATE TABLE odd (
	t		int,
	k		int,
	u		text,
	"row"	int,
	key		text,
	before	text,
	after	text,
	PRIMARY KEY (t, k)
);
INSERT INTO odd VALUES (1, 1, 'u1', 1, 'key1', 'b1', 'a1'), (1, 2, 'u2', 2, 'key2', 'b2', 'a2'),
	(2, 1, NULL, NULL, NULL, NULL, NULL);
});
	$coord->safe_psql('coord',
		"SELECT saga.setup_participant('$db', at_tables => '{account, ledger, ts, odd}')");
}

sub at_saga
{
	my (%args) = @_;
	return submit_saga($coord, mode => 'at', %args);
}

sub last_error
{
	my ($gid, $step) = @_;
	return $coord->safe_psql('coord',
		"SELECT last_sqlstate || ' ' || last_error FROM saga.steps WHERE gid = '$gid' AND step = $step");
}

# --- changes under another role --------------------------------------------
$part->safe_psql(
	'bank_a', q{
CREATE ROLE api_owner NOLOGIN;
GRANT SELECT, UPDATE ON account TO api_owner;
CREATE FUNCTION api_move(a int, d numeric) RETURNS void LANGUAGE sql SECURITY DEFINER
	AS $$ UPDATE public.account SET balance = balance + d WHERE id = a $$;
ALTER FUNCTION api_move(int, numeric) OWNER TO api_owner;
});
my $gid = at_saga(
	gid => 'at-definer',
	steps => [
		{ target => 'bank_a', action => 'SELECT api_move(1, -30)' },
		{ target => 'bank_b', action => 'SELECT 1/0' }
	]);
is(wait_saga($coord, $gid), 'aborted', 'SECURITY DEFINER: the saga aborts');
is(step_rows($coord, $gid, 'step, status, last_sqlstate'), "1|failed|0A000\n2|skipped|",
	'step 1 failed (0A000), step 2 never ran');
like(last_error($gid, 1),
	qr/^0A000 at step 1 changed table account as role api_owner, not as role \w+, which runs the step\nDETAIL: .*nothing of the step took effect\.\nHINT: .*SECURITY INVOKER/s,
	'the error names the table and both roles, and says what to do');
is(balances($part, 'bank_a')->{1}, 100, 'nothing of the action landed');
is(at_rows($part, 'bank_a'), '0 0', 'no undo records or reservations (of any role) left');

$gid = at_saga(
	gid => 'at-set-role',
	steps => [ { target => 'bank_a', action => 'SET LOCAL ROLE api_owner; UPDATE account SET balance = 1 WHERE id = 1' } ]);
is(wait_saga($coord, $gid), 'aborted', 'SET ROLE: the saga aborts');
like(last_error($gid, 1), qr/^0A000 at step 1 changed table account as role api_owner, not as role \w+, which runs the step/,
	'the same error');
is(balances($part, 'bank_a')->{1}, 100, 'nothing landed');

$gid = at_saga(
	gid => 'at-after-definer',
	steps => [ { target => 'bank_a', action => move_sql(1, -1), expect_rows => 1, max_attempts => 2 } ]);
is(wait_saga($coord, $gid), 'succeeded', 'the row is not left reserved: the next at saga goes through');
is(balances($part, 'bank_a')->{1}, 99, 'and changed it');
is(at_rows($part, 'bank_a'), '0 0', 'no undo or lock rows left');

# --- independent steps on one row -------------------------------------------
foreach my $round (1 .. 4)
{
	$gid = at_saga(
		gid => "at-indep-$round",
		steps => [
			{ target => 'bank_b', name => 'x', after => [],
			  action => 'UPDATE account SET balance = balance + 1 WHERE id = 1' },
			{ target => 'bank_b', name => 'y', after => [],
			  action => 'UPDATE account SET balance = balance + 2 WHERE id = 1' },
			{ target => 'bank_a', name => 'z', after => [ 'x', 'y' ], action => 'SELECT 1/0' }
		]);
	is(wait_saga($coord, $gid), 'aborted', "independent steps, round $round: aborted");
	is(step_rows($coord, $gid), "1|compensated\n2|compensated\n3|failed",
		"round $round: both steps restored, no dirty rollback");
	is(balances($part, 'bank_b')->{1}, 100, "round $round: the row is back exactly");
	is(at_rows($part, 'bank_b'), '0 0', "round $round: no undo or lock rows left");
}
is( $coord->safe_psql('coord',
		"SELECT count(*) FILTER (WHERE event = 'compensation_done') || ' ' ||
				count(*) FILTER (WHERE event = 'compensation_failed')
		   FROM saga.history WHERE gid LIKE 'at-indep-%'"),
	'8 0', 'two restores in each round, none refused as dirty');

# a dirty rollback of one of them stops the saga before the other's restore:
# after the operator reconciled the row, saga.retry() restores both
my $locker = $part->background_psql('bank_a');
$locker->query_safe('SELECT pg_advisory_lock(5252)');
$gid = at_saga(
	gid => 'at-indep-dirty',
	steps => [
		{ target => 'bank_b', name => 'x', after => [],
		  action => 'UPDATE account SET balance = balance + 1 WHERE id = 1' },
		{ target => 'bank_b', name => 'y', after => [],
		  action => 'UPDATE account SET balance = balance + 2 WHERE id = 1' },
		{ target => 'bank_a', name => 'z', after => [ 'x', 'y' ],
		  action => 'SELECT pg_advisory_xact_lock(5252); SELECT 1/0' }
	]);
ok( poll_until(
		$part, 'bank_a',
		"SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND objid = 5252 AND NOT granted"),
	'dirty: step z waits on the lock the test holds');
is(balances($part, 'bank_b')->{1}, 103, 'x and y applied');
$part->safe_psql('bank_b', 'UPDATE account SET balance = 500 WHERE id = 1');
$locker->query_safe('SELECT pg_advisory_unlock(5252)');
is(wait_saga($coord, $gid), 'failed', 'dirty: the saga stops as failed');
is( $coord->safe_psql('coord',
		"SELECT string_agg(status || CASE WHEN status = 'failed' THEN '|' || last_sqlstate ELSE '' END,
						  ' ' ORDER BY status)
		   FROM saga.steps WHERE gid = 'at-indep-dirty' AND step IN (1, 2)"),
	'failed|55000 succeeded', 'the later step refused its restore, the other one was not restored');
is(balances($part, 'bank_b')->{1}, 500, 'the row stays as the other writer left it');
$part->safe_psql('bank_b', 'UPDATE account SET balance = 103 WHERE id = 1');
$coord->safe_psql('coord', "SELECT saga.retry('at-indep-dirty')");
is(wait_saga($coord, $gid), 'aborted', 'after reconciling, saga.retry ends aborted');
is(step_rows($coord, $gid), "1|compensated\n2|compensated\n3|failed", 'both steps restored');
is(balances($part, 'bank_b')->{1}, 100, 'the row is back exactly');
is(at_rows($part, 'bank_b'), '0 0', 'no undo or lock rows left');
$locker->quit;

# --- session settings of the action ------------------------------------------
my $settings = q{SET LOCAL TimeZone = 'Asia/Tokyo'; SET LOCAL IntervalStyle = 'iso_8601';
SET LOCAL extra_float_digits = -3; SET LOCAL DateStyle = 'German, DMY'; };
my $ts_before = table_image($part, 'bank_a', 'ts');
$gid = at_saga(
	gid => 'at-settings',
	steps => [
		{ target => 'bank_a',
		  action => $settings . q{UPDATE ts SET happened = happened + interval '1 hour',
			span = span * 2, ratio = ratio * 3, day = day + 1 WHERE id = 1;
			UPDATE ts SET happened = '2024-06-01 12:00:00+09', span = interval '90 minutes',
			ratio = 0.1::float8 + 0.2::float8, day = '2024-06-01' WHERE id = 2} },
		{ target => 'bank_b', action => 'SELECT 1/0' }
	]);
is(wait_saga($coord, $gid), 'aborted', 'other session settings in the action: aborted, not failed');
is(step_rows($coord, $gid), "1|compensated\n2|failed", 'step 1 restored (no false dirty rollback)');
is(table_image($part, 'bank_a', 'ts'), $ts_before, 'timestamptz, interval, float8, date: back exactly');

$gid = at_saga(
	gid => 'at-settings-seen',
	steps => [
		{ target => 'bank_a',
		  action => $settings . q{UPDATE ts SET ratio = 0.5 WHERE id = 1;
			UPDATE ts SET note = concat_ws(' ', current_setting('TimeZone'), current_setting('IntervalStyle'),
				current_setting('extra_float_digits'), current_setting('DateStyle'),
				interval '90 minutes', 1::float8 / 3) WHERE id = 2} }
	]);
is(wait_saga($coord, $gid), 'succeeded', 'an action with its own settings succeeds');
is($part->safe_psql('bank_a', 'SELECT note FROM ts WHERE id = 2'),
	'Asia/Tokyo iso_8601 -3 German, DMY PT1H30M 0.333333333333',
	'its statements after the recorded change still see its settings');
is(at_rows($part, 'bank_a'), '0 0', 'no undo or lock rows left');

# --- columns named like the restore's aliases --------------------------------
my $odd_before = table_image($part, 'bank_a', 'odd');
$gid = at_saga(
	gid => 'at-odd',
	steps => [
		{ target => 'bank_a',
		  action => q{UPDATE odd SET u = 'changed', "row" = 10, key = 'k', before = NULL, after = 'x' WHERE t = 1 AND k = 1;
			UPDATE odd SET k = 20 WHERE t = 1 AND k = 2;
			DELETE FROM odd WHERE t = 2;
			INSERT INTO odd VALUES (3, 3, 'new', 3, 'key3', 'b3', 'a3')} },
		{ target => 'bank_b', action => 'SELECT 1/0' }
	]);
is(wait_saga($coord, $gid), 'aborted', 'columns t, k, u, row, key, before, after: aborted');
is(step_rows($coord, $gid), "1|compensated\n2|failed", 'step 1 restored');
is(table_image($part, 'bank_a', 'odd'), $odd_before, 'every row and column of odd as before');
is(at_rows($part, 'bank_a'), '0 0', 'no undo or lock rows left');

# --- forged reservations -----------------------------------------------------
$part->safe_psql('bank_b', q{CREATE ROLE mallory LOGIN; GRANT SELECT ON account TO mallory});
my ($rc, $out, $err) = $part->psql('bank_b',
	q{INSERT INTO saga_participant.at_lock (tab, key, coordinator, gid)
		VALUES ('public.account'::regclass, '{"id": 2}', 'x', 'forged')},
	connstr => $part->connstr('bank_b') . ' user=mallory');
like($err, qr/new row violates row-level security policy for table "at_lock"/,
	'a role that may not change a table cannot reserve its rows');
is(at_rows($part, 'bank_b'), '0 0', 'no reservation was made');
$gid = at_saga(
	gid => 'at-not-forged',
	steps => [ { target => 'bank_b', action => move_sql(2, -1), expect_rows => 1, max_attempts => 2 } ]);
is(wait_saga($coord, $gid), 'succeeded', 'an at saga on the row goes through');
is(balances($part, 'bank_b')->{2}, 99, 'and changed it');

# --- TRUNCATE and DDL of a table that is not enabled -------------------------
$gid = at_saga(
	gid => 'at-truncate',
	steps => [ { target => 'bank_a', action => 'UPDATE account SET balance = 1 WHERE id = 2; TRUNCATE plain' } ]);
is(wait_saga($coord, $gid), 'aborted', 'TRUNCATE of a table not enabled: the saga aborts');
like(last_error($gid, 1),
	qr/^0A000 at step 1 took an ACCESS EXCLUSIVE lock on table plain, which at mode cannot undo\nDETAIL: .*\nHINT: Use DELETE instead of TRUNCATE/,
	'the step failed (0A000), naming the table');
is($part->safe_psql('bank_a', 'SELECT id || note FROM plain'), '1keep me', 'plain keeps its row');
is(balances($part, 'bank_a')->{2}, 100, 'nothing of the step landed');

$gid = at_saga(
	gid => 'at-alter',
	steps => [ { target => 'bank_a', action => 'ALTER TABLE plain ADD COLUMN extra int' } ]);
is(wait_saga($coord, $gid), 'aborted', 'ALTER TABLE: the saga aborts');
like(last_error($gid, 1), qr/^0A000 at step 1 took an ACCESS EXCLUSIVE lock on table plain/,
	'the same error');
is($part->safe_psql('bank_a', "SELECT count(*) FROM pg_attribute WHERE attrelid = 'plain'::regclass AND attname = 'extra'"),
	'0', 'the column was not added');

$gid = at_saga(
	gid => 'at-temp',
	steps => [ { target => 'bank_a',
				 action => 'CREATE TEMP TABLE scratch (x int) ON COMMIT DROP; INSERT INTO scratch VALUES (1); '
				   . 'TRUNCATE scratch; ' . move_sql(2, -1) } ]);
is(wait_saga($coord, $gid), 'succeeded', 'a temporary table can be truncated');
is(balances($part, 'bank_a')->{2}, 99, 'and the step applied');

# --- a change rolled back inside the action ----------------------------------
$gid = at_saga(
	gid => 'at-subxact',
	steps => [
		{ target => 'bank_a',
		  action => q{DO $$ BEGIN INSERT INTO plain VALUES (5, 'undone'); RAISE EXCEPTION 'no'; EXCEPTION WHEN raise_exception THEN NULL; END $$; }
			. move_sql(2, -1) },
		{ target => 'bank_b', action => 'SELECT 1/0' }
	]);
is(wait_saga($coord, $gid), 'aborted', 'a change rolled back in an exception block: the saga runs on');
is(step_rows($coord, $gid), "1|compensated\n2|failed", 'step 1 succeeded, then was restored');
is($part->safe_psql('bank_a', 'SELECT count(*) FROM plain'), '1', 'plain holds only its row');
is(balances($part, 'bank_a')->{2}, 99, 'account 2 restored');

$gid = at_saga(
	gid => 'at-subxact-kept',
	steps => [ { target => 'bank_a',
				 action => q{DO $$ BEGIN INSERT INTO plain VALUES (6, 'kept'); EXCEPTION WHEN OTHERS THEN NULL; END $$} } ]);
is(wait_saga($coord, $gid), 'aborted', 'a change kept from an exception block still fails the step');
like(last_error($gid, 1), qr/^55000 table plain is not enabled for at mode/, 'naming the table');
is($part->safe_psql('bank_a', 'SELECT count(*) FROM plain'), '1', 'nothing landed in plain');
is(at_rows($part, 'bank_a') . ' / ' . at_rows($part, 'bank_b'), '0 0 / 0 0', 'no undo or lock rows left anywhere');

$coord->stop;
$part->stop;
done_testing();
