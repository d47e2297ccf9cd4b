# 021_xa.pl: mode xa (every action left PREPAREd, then COMMIT PREPARED on
# all, or ROLLBACK PREPARED).
#
#  - success: both balances moved, steps succeeded, no prepared
#    transaction left on the participant;
#  - the last step fails: the prepared first step is rolled back, nothing
#    changed anywhere;
#  - a target on a cluster with max_prepared_transactions = 0: the step
#    fails with an error naming the target and the setting, saga aborted;
#  - abort while a step is preparing slowly: the saga is aborted, and the
#    transaction that the abandoned attempt prepares afterwards is rolled
#    back by the recovery sweep: nothing is left prepared, nothing applied.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;
use SagaModes;

my ($coord, $part) = standard_setup();

my $xact_names = q{SELECT string_agg(gid, ' ' ORDER BY gid) FROM pg_prepared_xacts};

# --- success --------------------------------------------------------------
my $gid = submit_saga(
	$coord,
	gid => 'xa-ok',
	mode => 'xa',
	steps => [
		{ target => 'bank_a', action => move_sql(1, -30), expect_rows => 1 },
		{ target => 'bank_b', action => move_sql(1, 30), expect_rows => 1 }
	]);
is(wait_saga($coord, $gid), 'succeeded', 'xa success: saga succeeded');
is(step_rows($coord, $gid), "1|succeeded\n2|succeeded",
	'both steps committed');
is_deeply(balances($part, 'bank_a'), { 1 => 70, 2 => 100 }, 'bank_a debited');
is_deeply(balances($part, 'bank_b'), { 1 => 130, 2 => 100 }, 'bank_b credited');
is(ledger_rows($part, 'bank_a', $gid), '1|action|1|-30', 'bank_a: applied once');
is(ledger_rows($part, 'bank_b', $gid), '2|action|1|30', 'bank_b: applied once');
is(barrier_rows($part, 'bank_a', $gid), '1|action|action',
	'bank_a barrier: the action, committed with it');
is(prepared_xacts($part), 0, 'no prepared transaction left on the participant');
my $events = history_events($coord, $gid);
like($events,
	qr/1:action_succeeded .*2:action_succeeded .*:commit_decided .*:succeeded$/,
	'history: both prepared, then the decision, then succeeded')
  or diag $events;
like($events, qr/1:commit_done/, 'history: step 1 committed');
like($events, qr/2:commit_done/, 'history: step 2 committed');
like(
	$coord->safe_psql('coord',
		"SELECT detail FROM saga.history WHERE gid = 'xa-ok' AND step = 1 AND event = 'action_succeeded'"),
	qr/prepared/,
	'history: the action was prepared');

# --- the last step fails --------------------------------------------------
$gid = submit_saga(
	$coord,
	gid => 'xa-fail',
	mode => 'xa',
	steps => [
		{ target => 'bank_a', action => move_sql(2, -20), expect_rows => 1 },
		{ target => 'bank_b', action => move_sql(2, -1000), expect_rows => 1 }
	]);
is(wait_saga($coord, $gid), 'aborted', 'xa failure: saga aborted');
is( step_rows($coord, $gid, 'step, status, last_sqlstate'),
	"1|compensated|\n2|failed|23514",
	'step 1 rolled back, step 2 failed on the CHECK constraint');
is_deeply(balances($part, 'bank_a'), { 1 => 70, 2 => 100 }, 'bank_a unchanged');
is_deeply(balances($part, 'bank_b'), { 1 => 130, 2 => 100 }, 'bank_b unchanged');
is(ledger_rows($part, 'bank_a', $gid) . ledger_rows($part, 'bank_b', $gid),
	'', 'no ledger row anywhere');
is(barrier_rows($part, 'bank_a', $gid) . barrier_rows($part, 'bank_b', $gid),
	'', 'no barrier row anywhere: rolled back with the work');
is(prepared_xacts($part), 0, 'no prepared transaction left');
$events = history_events($coord, $gid);
like($events, qr/2:action_failed .*:rollback_decided .*1:rollback_done .*:aborted$/,
	'history: failure, decision, ROLLBACK PREPARED, final status')
  or diag $events;
unlike($events, qr/commit_/, 'history: nothing committed');

# --- a target that does not accept prepared transactions ------------------
my $noprep = new_participant('noprep', start => 0);
$noprep->append_conf('postgresql.conf', 'max_prepared_transactions = 0');
$noprep->start;
create_bank($noprep, 'bank_c', { 1 => 100 });
add_target($coord, 'bank_c', $noprep, 'bank_c');

$gid = submit_saga(
	$coord,
	gid => 'xa-noprep',
	mode => 'xa',
	steps => [
		{ target => 'bank_a', action => move_sql(2, -10), expect_rows => 1 },
		{ target => 'bank_c', action => move_sql(1, 10), expect_rows => 1 }
	]);
is(wait_saga($coord, $gid), 'aborted',
	'max_prepared_transactions = 0: saga aborted');
is( step_rows($coord, $gid, 'step, status, last_sqlstate, last_error'),
	"1|compensated||\n2|failed|55000|target \"bank_c\" does not accept prepared transactions: "
	  . 'set max_prepared_transactions above zero there',
	'the step error names the target and the setting');
like(
	$coord->safe_psql('coord',
		"SELECT last_error FROM saga.transactions WHERE gid = 'xa-noprep'"),
	qr/bank_c.*max_prepared_transactions/,
	'saga.transactions.last_error says it too');
is_deeply(balances($noprep, 'bank_c'), { 1 => 100 }, 'bank_c unchanged');
is(ledger_rows($noprep, 'bank_c', $gid), '', 'bank_c: no ledger row');
is(barrier_rows($noprep, 'bank_c', $gid), '', 'bank_c: no barrier row');
is_deeply(balances($part, 'bank_a'), { 1 => 70, 2 => 100 }, 'bank_a unchanged');
is(prepared_xacts($part), 0, 'no prepared transaction left on bank_a');
$noprep->stop;

# --- abort while a step prepares slowly -----------------------------------
# Step 2 sleeps 5 s before its UPDATE and PREPARE.  The abort abandons the
# call, but the participant runs it to its end and prepares it after the
# saga was rolled back: the recovery sweep (at most a minute later) must
# roll that orphan back.
$gid = submit_saga(
	$coord,
	gid => 'xa-abort',
	mode => 'xa',
	steps => [
		{ target => 'bank_a', action => move_sql(1, -5), expect_rows => 1 },
		{
			target => 'bank_b',
			action => move_sql(1, 5, 'action', sleep => 5),
			expect_rows => 1
		}
	]);
ok(wait_for_sleeper($part, 'bank_b'), 'step 2 is running');
is(step_rows($coord, $gid), "1|prepared\n2|running",
	'step 1 is prepared while step 2 runs');
is(prepared_xacts($part, 'bank_a'), 1,
	'bank_a holds the prepared transaction of step 1');
$coord->safe_psql('coord', "SELECT saga.abort('xa-abort', 'test abort')");
is(wait_saga($coord, $gid), 'aborted', 'abort during a prepare: saga aborted');
is(step_rows($coord, $gid), "1|compensated\n2|compensated",
	'step 1 rolled back; step 2 cancelled (its rollback counts as done)');
$events = history_events($coord, $gid);
like($events, qr/:abort_requested .*:rollback_decided .*2:action_cancelled/,
	'history: abort, decision, step 2 cancelled') or diag $events;
is(prepared_xacts($part, 'bank_a'), 0, 'step 1 rolled back at once');

ok(poll_until($part, 'postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE wait_event = 'PgSleep'"),
	'the abandoned attempt of step 2 ended on the participant');
ok(poll_until($part, 'postgres', 'SELECT count(*) = 0 FROM pg_prepared_xacts'),
	'no prepared transaction is left behind')
  or diag $part->safe_psql('postgres', $xact_names);

# An orphan: a transaction prepared under step 2's name after the saga was
# rolled back, as an abandoned attempt on an older participant would leave.
# The recovery sweep must roll it back from the local decision.
my $coord_hex = $coord->safe_psql('coord', "SELECT replace(id, '-', '') FROM saga.coordinator");
my $saga_id = $coord->safe_psql('coord', "SELECT id FROM saga.gtx WHERE gid = 'xa-abort'");
my $orphan = "pgsaga_${coord_hex}_${saga_id}_2";
$part->safe_psql('bank_b',
	"BEGIN; UPDATE account SET balance = balance + 5 WHERE id = 1; PREPARE TRANSACTION '$orphan'");
is(prepared_xacts($part, 'bank_b'), 1, 'an orphan is prepared on bank_b');
ok(poll_until($part, 'postgres', 'SELECT count(*) = 0 FROM pg_prepared_xacts'),
	'the sweep resolved the orphan')
  or diag $part->safe_psql('postgres', $xact_names);
ok( $coord->log_contains(
		qr/rolled back in-doubt prepared transaction \Q$orphan\E on target bank_b/),
	'the coordinator log names the orphan the sweep rolled back');
is_deeply(balances($part, 'bank_a'), { 1 => 70, 2 => 100 }, 'bank_a unchanged');
is_deeply(balances($part, 'bank_b'), { 1 => 130, 2 => 100 }, 'bank_b unchanged');
is(ledger_rows($part, 'bank_a', $gid) . ledger_rows($part, 'bank_b', $gid),
	'', 'no ledger row anywhere');
is(barrier_rows($part, 'bank_b', $gid), '', 'bank_b: no barrier row');

is(ledger_duplicates($part, 'bank_a') . ledger_duplicates($part, 'bank_b'),
	'', 'no branch applied twice');

$coord->stop;
$part->stop;
done_testing();
