# 003_participant_down.pl: a participant that is down is a transient failure.
#
#  - forward: the saga waits with growing attempts while the participant is
#    stopped, then succeeds exactly once when it comes back;
#  - compensation: a compensation whose participant is down is retried
#    without limit and the saga ends aborted once it is back.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;

my ($coord, $part) = standard_setup();

# --- participant down before submit ---------------------------------------
$part->stop;
my $gid = submit_saga(
	$coord,
	gid => 'down-1',
	steps => [
		{
			target => 'bank_a',
			action => move_sql(1, -25),
			compensation => move_sql(1, 25, 'compensation'),
			max_attempts => 1000
		},
		{
			target => 'bank_b',
			action => move_sql(1, 25),
			compensation => move_sql(1, -25, 'compensation'),
			max_attempts => 1000
		}
	]);
ok( poll_until(
		$coord, 'coord',
		"SELECT attempts >= 3 AND next_attempt_at IS NOT NULL
		   FROM saga.steps WHERE gid = 'down-1' AND step = 1"),
	'step 1 is retried while the participant is down');
like(saga_status($coord, 'down-1'), qr/^(pending|running)$/,
	'the saga is not final');
like(
	$coord->safe_psql('coord',
		"SELECT last_sqlstate FROM saga.steps WHERE gid = 'down-1' AND step = 1"),
	qr/^08/,
	'the step records a connection failure (class 08)');
is( $coord->safe_psql(
		'coord',
		"SELECT status || '|' || attempts FROM saga.steps WHERE gid = 'down-1' AND step = 2"
	),
	'pending|0',
	'step 2 has not started');
my $attempts = $coord->safe_psql('coord',
	"SELECT attempts FROM saga.steps WHERE gid = 'down-1' AND step = 1");
ok( poll_until(
		$coord, 'coord',
		"SELECT attempts > $attempts FROM saga.steps WHERE gid = 'down-1' AND step = 1"
	),
	'attempts keep growing');
like(history_rows($coord, $gid), qr/retry/i, 'history records retries');

$part->start;
is(wait_saga($coord, $gid), 'succeeded',
	'the saga succeeds once the participant is back');
is_deeply(balances($part, 'bank_a'), { 1 => 75, 2 => 100 }, 'bank_a debited once');
is_deeply(balances($part, 'bank_b'), { 1 => 125, 2 => 100 }, 'bank_b credited once');
is(ledger_rows($part, 'bank_a', $gid), '1|action|1|-25', 'bank_a: one ledger row');
is(ledger_rows($part, 'bank_b', $gid), '2|action|1|25', 'bank_b: one ledger row');
is(step_rows($coord, $gid), "1|succeeded\n2|succeeded", 'both steps succeeded');

# --- participant down during compensation ----------------------------------
# Step 2 runs on a second participant, sleeps, then fails; meanwhile the
# participant of step 1 is stopped, so its compensation cannot connect.
my $part2 = new_participant('part2');
create_bank($part2, 'bank_c', { 1 => 100 });
add_target($coord, 'bank_c', $part2, 'bank_c');

$gid = submit_saga(
	$coord,
	gid => 'down-2',
	steps => [
		{
			target => 'bank_a',
			action => move_sql(2, -40),
			compensation => move_sql(2, 40, 'compensation')
		},
		{
			target => 'bank_c',
			action => move_sql(1, -1000, 'action', sleep => 4),
			compensation => move_sql(1, 1000, 'compensation')
		}
	]);
ok( poll_until(
		$part2, 'bank_c',
		"SELECT count(*) > 0 FROM pg_stat_activity
		  WHERE datname = 'bank_c' AND wait_event = 'PgSleep'
		    AND pid <> pg_backend_pid()"),
	'step 2 is running on bank_c');
is_deeply(balances($part, 'bank_a'), { 1 => 75, 2 => 60 },
	'step 1 applied before the participant stops');
$part->stop;

ok( poll_until(
		$coord, 'coord',
		"SELECT s.attempts >= 3 AND s.next_attempt_at IS NOT NULL AND t.status = 'compensating'
		   FROM saga.steps s JOIN saga.transactions t USING (gid)
		  WHERE gid = 'down-2' AND s.step = 1"),
	'the compensation of step 1 is retried while bank_a is down');
is( $coord->safe_psql(
		'coord',
		"SELECT status || '|' || last_sqlstate FROM saga.steps WHERE gid = 'down-2' AND step = 2"
	),
	'failed|23514',
	'step 2 failed with its CHECK violation');
$attempts = $coord->safe_psql('coord',
	"SELECT attempts FROM saga.steps WHERE gid = 'down-2' AND step = 1");
ok( poll_until(
		$coord, 'coord',
		"SELECT attempts > $attempts FROM saga.steps WHERE gid = 'down-2' AND step = 1"
	),
	'compensation attempts keep growing');
is(saga_status($coord, 'down-2'), 'compensating', 'still compensating');

$part->start;
is(wait_saga($coord, $gid), 'aborted', 'the saga aborts once bank_a is back');
is(step_rows($coord, $gid), "1|compensated\n2|failed", 'step statuses');
is_deeply(balances($part, 'bank_a'), { 1 => 75, 2 => 100 }, 'bank_a restored');
is_deeply(balances($part2, 'bank_c'), { 1 => 100 }, 'bank_c untouched');
is(ledger_rows($part, 'bank_a', $gid), "1|action|2|-40\n1|compensation|2|40",
	'bank_a: action and compensation once each');
is(ledger_rows($part2, 'bank_c', $gid), '', 'bank_c: nothing');
is(ledger_duplicates($part, 'bank_a') . ledger_duplicates($part, 'bank_b'),
	'', 'no branch applied twice');

$coord->stop;
$part->stop;
$part2->stop;
done_testing();
