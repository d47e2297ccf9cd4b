# 050_at.pl: mode at, sagas rolled back from the row images the participant
# recorded.
#
#  - a 2-step transfer succeeds: balances moved, no undo or lock rows left;
#  - step 2 fails: every row step 1 changed is as before, column by column
#    (updated twice, deleted, inserted, primary key changed, NULLs, a
#    TOASTed 100kB text), undo and lock rows gone, saga aborted;
#  - dirty rollback: a session outside pg_saga changes step 1's row while
#    step 2 waits on a lock the test holds; the restore refuses, step and
#    saga end failed, NOTIFY saga_alert, the row stays as written; after the
#    operator reconciles it saga.retry() ends aborted;
#  - two at sagas on the same row: the second retries (40001) while the
#    first holds the row, and once the first rolled back it goes through on
#    the restored value;
#  - a table that is not enabled, one without a primary key: the step fails
#    naming the table, nothing of it lands;
#  - the barrier: a rollback of an action that never took effect (an abort
#    while the action waits) is a null rollback; a repeated rollback does
#    nothing;
#  - crashes during a restore (it waits on a row lock the test holds):
#    kill -9 of the worker, an immediate shutdown of the coordinator, then a
#    restart of the participant: the saga ends aborted, every row restored
#    once.
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
CREATE TABLE item (
	id		int PRIMARY KEY,
	name	text,
	note	text,
	qty		int,
	tags	text[]
);
CREATE TABLE loose (id int, note text);
CREATE TABLE plain (id int PRIMARY KEY, note text);
INSERT INTO item VALUES
	(1, 'one', NULL, 1, '{a,b}'),
	(2, 'two', 'second', NULL, NULL),
	(3, 'big', (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 3200) i), 3, '{}');
});
	$coord->safe_psql('coord',
		"SELECT saga.setup_participant('$db', at_tables => '{account, ledger, item}')");
}
is( $part->safe_psql('bank_a',
		"SELECT length(note) = 102400 AND pg_relation_size(reltoastrelid) > 0
		   FROM item, pg_class WHERE id = 3 AND oid = 'item'::regclass"),
	't', 'item 3 holds a 100kB text, stored out of line (TOASTed)');

sub at_saga
{
	my (%args) = @_;
	return submit_saga($coord, mode => 'at', %args);
}

# --- a transfer that succeeds ---------------------------------------------
my $gid = at_saga(
	gid => 'at-transfer',
	steps => [
		{ target => 'bank_a', action => move_sql(1, -30), expect_rows => 1 },
		{ target => 'bank_b', action => move_sql(1, 30), expect_rows => 1 }
	]);
is(wait_saga($coord, $gid), 'succeeded', 'transfer: succeeded');
is(step_rows($coord, $gid), "1|succeeded\n2|succeeded", 'both steps succeeded');
is_deeply(balances($part, 'bank_a'), { 1 => 70, 2 => 100 }, 'bank_a: 30 taken');
is_deeply(balances($part, 'bank_b'), { 1 => 130, 2 => 100 }, 'bank_b: 30 given');
is(at_rows($part, 'bank_a') . ' / ' . at_rows($part, 'bank_b'), '0 0 / 0 0',
	'no undo or lock rows left on either participant');
is( $coord->safe_psql('coord',
		"SELECT string_agg(coalesce(step::text, '-') || ' ' || event, ', ' ORDER BY event, step)
		   FROM saga.history
		  WHERE gid = 'at-transfer' AND event IN ('commit_decided', 'forget_done', 'succeeded')"),
	'- commit_decided, 1 forget_done, 2 forget_done, - succeeded',
	'history: the decision, one forget per target, succeeded');
is( $coord->safe_psql('coord',
		"SELECT max(at) FILTER (WHERE event = 'commit_decided') < min(at) FILTER (WHERE event = 'forget_done')
		    AND max(at) FILTER (WHERE event = 'forget_done') < min(at) FILTER (WHERE event = 'succeeded')
		   FROM saga.history WHERE gid = 'at-transfer'"),
	't', 'in that order: decision, forgets, succeeded');

# --- step 2 fails: step 1's rows come back exactly ------------------------
my %before = map { $_ => table_image($part, 'bank_a', $_) } qw(account ledger item);
$gid = at_saga(
	gid => 'at-undo',
	steps => [
		{
			target => 'bank_a',
			action => q{
UPDATE account SET balance = balance - 10 WHERE id = 1;
UPDATE account SET balance = balance - 5 WHERE id = 1;
DELETE FROM account WHERE id = 2;
INSERT INTO account VALUES (3, 7);
INSERT INTO ledger (gid, step, op, id, delta) VALUES (current_setting('saga.gid'), 1, 'action', 1, -15);
UPDATE item SET id = 10, name = NULL, tags = NULL WHERE id = 1;
UPDATE item SET name = 'renamed' WHERE id = 10;
DELETE FROM item WHERE id = 2;
UPDATE item SET note = note || 'tail', qty = NULL WHERE id = 3;
INSERT INTO item VALUES (4, NULL, repeat(md5('x'), 4000), NULL, '{z}')}
		},
		{ target => 'bank_b', action => move_sql(1, -1000) }
	]);
is(wait_saga($coord, $gid), 'aborted', 'step 2 failed: saga aborted');
is(step_rows($coord, $gid), "1|compensated\n2|failed",
	'step 1 restored from its images, step 2 failed');
foreach my $t (qw(account ledger item))
{
	is(table_image($part, 'bank_a', $t), $before{$t},
		"bank_a.$t: every row and column as before the saga");
}
is(at_rows($part, 'bank_a'), '0 0', 'bank_a: undo and lock rows gone');
like( $coord->safe_psql('coord',
		"SELECT detail FROM saga.history WHERE gid = 'at-undo' AND step = 1 AND event = 'compensation_done'"),
	qr/restored from before-images/, 'history: step 1 restored from before-images');

# --- dirty rollback --------------------------------------------------------
my $locker = $part->background_psql('bank_b');
$locker->query_safe('SELECT pg_advisory_lock(4242)');
my $listener = $coord->background_psql('coord');
$listener->query_safe('LISTEN saga_alert');
$gid = at_saga(
	gid => 'at-dirty',
	steps => [
		{ target => 'bank_a', action => move_sql(2, -10), expect_rows => 1 },
		{
			target => 'bank_b',
			action => 'SELECT pg_advisory_xact_lock(4242); ' . move_sql(2, -1000)
		}
	]);
ok( poll_until(
		$part, 'bank_b',
		"SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND NOT granted"),
	'step 2 waits on the lock the test holds');
is(step_rows($coord, $gid), "1|succeeded\n2|running", 'step 1 succeeded meanwhile');
is(balances($part, 'bank_a')->{2}, 90, 'step 1 took 10 from account 2');
# a writer outside pg_saga changes step 1's row
$part->safe_psql('bank_a', 'UPDATE account SET balance = 55 WHERE id = 2');
$locker->query_safe('SELECT pg_advisory_unlock(4242)');
is(wait_saga($coord, $gid), 'failed', 'dirty rollback: saga failed');
is(step_rows($coord, $gid, 'step, status, last_sqlstate'), "1|failed|55000\n2|failed|23514",
	'step 1 failed (its rollback refused), step 2 failed (its action)');
my $last_error = $coord->safe_psql('coord',
	"SELECT last_error FROM saga.transactions WHERE gid = 'at-dirty'");
like($last_error, qr/dirty rollback/, 'last_error says dirty rollback');
like($last_error, qr/table account/, 'it names the table');
like($last_error, qr/\{"id": 2\}/, 'and the key');
like($last_error, qr/balance is 55, the step left 90/, 'and what differs');
is(balances($part, 'bank_a')->{2}, 55, 'the row is left as the other session wrote it');
is(at_rows($part, 'bank_a'), '2 2',
	'its undo records and reservations are kept (the account row and the ledger row)');
# the images are private to the role that wrote them, as the barrier is
$part->safe_psql('bank_a', 'CREATE ROLE peeker LOGIN');
my $as_peeker = $part->connstr('bank_a') . ' user=peeker';
is( $part->safe_psql('bank_a',
		'SELECT (SELECT count(*) FROM saga_participant.at_undo) || \' \' || (SELECT count(*) FROM saga_participant.at_lock)',
		connstr => $as_peeker),
	'0 0', 'another role sees none of the undo records and reservations');
my ($prc, $pout, $perr) = $part->psql('bank_a',
	q{INSERT INTO saga_participant.at_undo (coordinator, owner, gid, step, tab, op) VALUES ('x', 'postgres', 'at-dirty', 1, 'account', 'UPDATE')},
	connstr => $as_peeker);
like($perr, qr/row-level security/, 'nor can it forge one in the name of another role');
$part->safe_psql('bank_a', q{DELETE FROM saga_participant.at_lock}, connstr => $as_peeker);
is(at_rows($part, 'bank_a'), '2 2', 'nor delete another role\'s reservation');

my $notified = 0;
foreach (1 .. 100)
{
	if ($listener->query_safe('SELECT 1') =~ /saga_alert.*at-dirty/)
	{
		$notified = 1;
		last;
	}
	select(undef, undef, undef, 0.1);
}
ok($notified, 'NOTIFY saga_alert with the gid');
$listener->quit;

# the operator reconciles: the other session's change is undone by hand
$part->safe_psql('bank_a', 'UPDATE account SET balance = 90 WHERE id = 2');
$coord->safe_psql('coord', "SELECT saga.retry('at-dirty')");
is(wait_saga($coord, $gid), 'aborted', 'after reconciling, saga.retry ends aborted');
is(step_rows($coord, $gid), "1|compensated\n2|failed", 'step 1 restored');
is(balances($part, 'bank_a')->{2}, 100, 'account 2 back to its before-image');
is(ledger_rows($part, 'bank_a', $gid), '', 'the ledger row of step 1 is gone');
is(at_rows($part, 'bank_a'), '0 0', 'undo and lock rows gone');

# --- two at sagas on the same row -----------------------------------------
$locker->query_safe('SELECT pg_advisory_lock(4343)');
my $first = at_saga(
	gid => 'at-first',
	steps => [
		{ target => 'bank_a', action => move_sql(1, -20), expect_rows => 1 },
		{
			target => 'bank_b',
			action => 'SELECT pg_advisory_xact_lock(4343); ' . move_sql(1, -1000)
		}
	]);
ok( poll_until(
		$part, 'bank_b',
		"SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND objid = 4343 AND NOT granted"),
	'the first saga holds account 1 of bank_a and waits in its step 2');
is(balances($part, 'bank_a')->{1}, 50, 'the first saga took 20 from 70');
my $second = at_saga(
	gid => 'at-second',
	steps => [ { target => 'bank_a', action => move_sql(1, -5), expect_rows => 1, max_attempts => 1000 } ]);
ok( poll_until(
		$coord, 'coord',
		"SELECT attempts >= 3 AND last_sqlstate = '40001' FROM saga.steps WHERE gid = 'at-second'"),
	'the second saga retries transiently while the row is reserved');
like( $coord->safe_psql('coord', "SELECT last_error FROM saga.steps WHERE gid = 'at-second'"),
	qr/row \{"id": 1\} of table account is reserved by at saga "at-first"/,
	'its error names the row and the saga holding it');
is(saga_status($coord, $second), 'running', 'the second saga is still running');
is(balances($part, 'bank_a')->{1}, 50, 'the second saga changed nothing yet');
$locker->query_safe('SELECT pg_advisory_unlock(4343)');
is(wait_saga($coord, $first), 'aborted', 'the first saga rolled back');
is(wait_saga($coord, $second), 'succeeded', 'then the second went through');
is(balances($part, 'bank_a')->{1}, 65, 'on the restored value: 70 - 5');
is(ledger_rows($part, 'bank_a', $first), '', 'the first saga left no ledger row');
is(ledger_rows($part, 'bank_a', $second), '1|action|1|-5', 'the second one, once');
is(at_rows($part, 'bank_a'), '0 0', 'no undo or lock rows left');

# --- a remote role that is not a superuser ---------------------------------
# the participant objects grant what an at step needs; row-level security
# keeps the role to its own images and reservations
$part->safe_psql(
	'bank_a', q{
CREATE ROLE clerk LOGIN;
GRANT SELECT, INSERT, UPDATE, DELETE ON account, ledger TO clerk;
GRANT USAGE ON SEQUENCE ledger_seq_seq TO clerk;
});
my $pport = $part->port;
$coord->safe_psql(
	'coord', qq{
CREATE SERVER bank_a_clerk FOREIGN DATA WRAPPER pg_saga
	OPTIONS (host '127.0.0.1', port '$pport', dbname 'bank_a');
CREATE USER MAPPING FOR CURRENT_USER SERVER bank_a_clerk OPTIONS (user 'clerk');
});
$gid = at_saga(
	gid => 'at-clerk-ok',
	steps => [ { target => 'bank_a_clerk', action => move_sql(2, -1), expect_rows => 1 } ]);
is(wait_saga($coord, $gid), 'succeeded', 'a plain remote role: an at saga succeeds');
is(balances($part, 'bank_a')->{2}, 99, 'and moved the money');
$gid = at_saga(
	gid => 'at-clerk-back',
	steps => [
		{ target => 'bank_a_clerk', action => move_sql(2, -1), expect_rows => 1 },
		{ target => 'bank_b', action => move_sql(2, -1000) }
	]);
is(wait_saga($coord, $gid), 'aborted', 'a plain remote role: an at saga rolls back');
is(step_rows($coord, $gid), "1|compensated\n2|failed", 'its step restored');
is(balances($part, 'bank_a')->{2}, 99, 'the money is back');
is(ledger_rows($part, 'bank_a', $gid), '', 'its ledger row is gone');
is(at_rows($part, 'bank_a'), '0 0', 'no undo or lock rows left');

# --- tables that cannot take part -----------------------------------------
$gid = at_saga(
	gid => 'at-plain',
	steps => [ { target => 'bank_a',
				 action => "UPDATE account SET balance = 1 WHERE id = 1; INSERT INTO plain VALUES (1, 'x')" } ]);
is(wait_saga($coord, $gid), 'aborted', 'a table not enabled: the saga aborts');
is(step_rows($coord, $gid, 'step, status, last_sqlstate'), '1|failed|55000',
	'the step failed for a business reason (55000)');
like( $coord->safe_psql('coord', "SELECT last_error FROM saga.steps WHERE gid = 'at-plain'"),
	qr/^table plain is not enabled for at mode\nDETAIL: Step 1 changed it; nothing of the step took effect\.\nHINT: Enable it with SELECT saga_participant\.at_enable\('plain'\)/,
	'the error names the table and says how to enable it');
is($part->safe_psql('bank_a', 'SELECT count(*) FROM plain'), '0', 'nothing landed in plain');
is(balances($part, 'bank_a')->{1}, 65, 'nor in account');

$gid = at_saga(
	gid => 'at-loose',
	steps => [ { target => 'bank_a', action => "INSERT INTO loose VALUES (1, 'x')" } ]);
is(wait_saga($coord, $gid), 'aborted', 'a table without primary key: the saga aborts');
like( $coord->safe_psql('coord', "SELECT last_sqlstate || ' ' || last_error FROM saga.steps WHERE gid = 'at-loose'"),
	qr/^42P16 table loose has no primary key, so an at step cannot change it/,
	'the error names the table (42P16)');
my ($rc, $out, $err) = $coord->psql('coord',
	"SELECT saga.setup_participant('bank_a', at_tables => '{loose}')");
like($err, qr/table loose has no primary key/, 'setup_participant refuses to enable it');
is($part->safe_psql('bank_a', 'SELECT count(*) FROM loose'), '0', 'nothing landed in loose');

# --- the barrier: null rollback, repeated rollback ------------------------
my $locker_a = $part->background_psql('bank_a');
$locker_a->query_safe('SELECT pg_advisory_lock(4444)');
$gid = at_saga(
	gid => 'at-null',
	steps => [ { target => 'bank_a',
				 action => 'SELECT pg_advisory_xact_lock(4444); ' . move_sql(1, -1) } ]);
ok( poll_until(
		$part, 'bank_a',
		"SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND objid = 4444 AND NOT granted"),
	'the action waits on the lock the test holds');
$coord->safe_psql('coord', "SELECT saga.abort('at-null', 'operator')");
is(wait_saga($coord, $gid), 'aborted', 'aborted while its action was in flight');
like( $coord->safe_psql('coord',
		"SELECT detail FROM saga.history WHERE gid = 'at-null' AND step = 1 AND event = 'compensation_done'"),
	qr/null compensation/, 'the rollback was a null rollback');
is(barrier_rows($part, 'bank_a', $gid), "1|action|compensation\n1|compensation|compensation",
	'the barrier holds the action slot taken by the rollback');
$locker_a->query_safe('SELECT pg_advisory_unlock(4444)');
$locker_a->quit;
my $coordinator = $part->safe_psql('bank_a',
	"SELECT coordinator FROM saga_participant.barrier WHERE gid = 'at-null' LIMIT 1");
is( $part->safe_psql('bank_a',
		"SELECT reply FROM saga_participant.run_at('$coordinator', 'at-null', 1, 'action', \$\$@{[ move_sql(1, -1) ]}\$\$)"),
	'hanging', 'a late action finds its slot taken and does nothing');
# each saga's records carry its own barrier identity (coordinator id and saga key)
my $undo_coordinator = $part->safe_psql('bank_a',
	"SELECT coordinator FROM saga_participant.barrier WHERE gid = 'at-undo' LIMIT 1");
is( $part->safe_psql('bank_a',
		"SELECT reply FROM saga_participant.run_at('$undo_coordinator', 'at-undo', 1, 'compensation', NULL)"),
	'duplicate', 'a repeated rollback does nothing');
is(balances($part, 'bank_a')->{1}, 65, 'account 1 untouched by either');
is(table_image($part, 'bank_a', 'item'), $before{item}, 'item untouched by the repeated rollback');
is(at_rows($part, 'bank_a') . ' / ' . at_rows($part, 'bank_b'), '0 0 / 0 0', 'no undo or lock rows left');
is(ledger_duplicates($part, 'bank_a') . ledger_duplicates($part, 'bank_b'), '',
	'no branch applied twice');

# --- crashes during a restore ----------------------------------------------
$locker->query_safe('SELECT pg_advisory_lock(4545)');
$gid = at_saga(
	gid => 'at-crash',
	steps => [
		{ target => 'bank_a', action => move_sql(1, -3), expect_rows => 1 },
		{
			target => 'bank_b',
			action => 'SELECT pg_advisory_xact_lock(4545); ' . move_sql(1, -1000)
		}
	]);
ok( poll_until(
		$part, 'bank_b',
		"SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND objid = 4545 AND NOT granted"),
	'crash: step 2 waits on the lock the test holds');
is(balances($part, 'bank_a')->{1}, 62, 'step 1 took 3');
my $rowlock = $part->background_psql('bank_a');
$rowlock->query_safe('BEGIN');
$rowlock->query_safe('SELECT 1 FROM account WHERE id = 1 FOR UPDATE');
$locker->query_safe('SELECT pg_advisory_unlock(4545)');
my $restore_waits = "SELECT count(*) > 0 FROM pg_stat_activity WHERE datname = 'bank_a'
	AND wait_event_type = 'Lock' AND query LIKE '%run_at%'";
ok(poll_until($part, 'bank_a', $restore_waits), 'the restore of step 1 waits on the row lock');
my $pid = worker_pid($coord);
ok(kill('KILL', $pid), "kill -9 worker $pid");
ok(wait_for_worker($coord, 'coord', $pid), 'the worker is back');
ok(poll_until($part, 'bank_a', $restore_waits), 'a restore still waits on the row');
$coord->stop('immediate');
$coord->start;
ok(wait_for_worker($coord, 'coord'), 'the worker is back after an immediate shutdown');
is(saga_status($coord, $gid), 'compensating', 'the saga is still compensating');
is(balances($part, 'bank_a')->{1}, 62, 'nothing restored while the row is locked');
$locker->quit;
$part->restart;					# ends the session holding the row lock too
eval { $rowlock->quit };
is(wait_saga($coord, $gid), 'aborted', 'after the participant restart the saga ends aborted');
is(balances($part, 'bank_a')->{1}, 65, 'account 1 restored once');
is(ledger_rows($part, 'bank_a', $gid), '', 'the ledger row of step 1 is gone');
is(barrier_rows($part, 'bank_a', $gid), "1|action|action\n1|compensation|compensation",
	'the barrier: one action, one rollback');
is(at_rows($part, 'bank_a'), '0 0', 'no undo or lock rows left');

$coord->stop;
$part->stop;
done_testing();
