# 004_worker_crash.pl: the worker dies while a step is in flight.
#
#  - kill -9: the postmaster reinitializes, the worker comes back, the saga
#    completes and the step took effect exactly once;
#  - pg_terminate_backend: the worker comes back by itself, also with a step
#    in flight.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;

my ($coord, $part) = standard_setup();
my $in_flight = q{
SELECT count(*) > 0 FROM pg_stat_activity
 WHERE datname = 'bank_a' AND wait_event = 'PgSleep'
   AND pid <> pg_backend_pid()};

sub sleepy_transfer
{
	my ($gid, $id) = @_;
	return submit_saga(
		$coord,
		gid => $gid,
		steps => [
			{
				target => 'bank_a',
				action => move_sql($id, -10, 'action', sleep => 3),
				compensation => move_sql($id, 10, 'compensation')
			},
			{
				target => 'bank_b',
				action => move_sql($id, 10),
				compensation => move_sql($id, -10, 'compensation')
			}
		]);
}

# --- kill -9 of the worker mid-step ----------------------------------------
my $pid = wait_for_worker($coord, 'coord');
like($pid, qr/^\d+$/, 'worker running');
my $gid = sleepy_transfer('crash-1', 1);
ok(poll_until($part, 'bank_a', $in_flight), 'step 1 in flight on bank_a');
ok(kill('KILL', $pid), "kill -9 worker $pid");

my $new_pid = wait_for_worker($coord, 'coord', $pid);
like($new_pid, qr/^\d+$/, 'a new worker runs after the crash');
isnt($new_pid, $pid, 'it is a new process');
ok( $coord->log_contains(qr/terminated by signal 9/),
	'the postmaster saw the crash');

is(wait_saga($coord, $gid), 'succeeded', 'the saga completes after the crash');
is(ledger_rows($part, 'bank_a', $gid), '1|action|1|-10',
	'step 1 applied exactly once');
is(ledger_rows($part, 'bank_b', $gid), '2|action|1|10',
	'step 2 applied exactly once');
is_deeply(balances($part, 'bank_a'), { 1 => 90, 2 => 100 }, 'bank_a');
is_deeply(balances($part, 'bank_b'), { 1 => 110, 2 => 100 }, 'bank_b');
is(barrier_rows($part, 'bank_a', $gid), '1|action|action',
	'one barrier record for step 1');

# --- pg_terminate_backend of the worker mid-step -----------------------------
$pid = $new_pid;
$gid = sleepy_transfer('term-1', 2);
ok(poll_until($part, 'bank_a', $in_flight), 'step 1 of term-1 in flight');
is($coord->safe_psql('postgres', "SELECT pg_terminate_backend($pid)"),
	't', 'worker terminated');
$new_pid = wait_for_worker($coord, 'coord', $pid);
like($new_pid, qr/^\d+$/, 'the worker comes back by itself');
is(wait_saga($coord, $gid), 'succeeded', 'term-1 completes');
is(ledger_rows($part, 'bank_a', $gid), '1|action|2|-10',
	'term-1 step 1 applied exactly once');
is(ledger_rows($part, 'bank_b', $gid), '2|action|2|10',
	'term-1 step 2 applied exactly once');
is_deeply(balances($part, 'bank_a'), { 1 => 90, 2 => 90 }, 'bank_a');
is_deeply(balances($part, 'bank_b'), { 1 => 110, 2 => 110 }, 'bank_b');

# --- and when idle -----------------------------------------------------------
$pid = $new_pid;
$coord->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
$new_pid = wait_for_worker($coord, 'coord', $pid);
like($new_pid, qr/^\d+$/, 'an idle worker comes back after termination');
$gid = submit_saga(
	$coord,
	gid => 'after-term',
	steps => [ { target => 'bank_a', action => move_sql(1, -1) } ]);
is(wait_saga($coord, $gid), 'succeeded', 'the new worker runs sagas');

is(ledger_duplicates($part, 'bank_a') . ledger_duplicates($part, 'bank_b'),
	'', 'no branch applied twice');

$coord->stop;
$part->stop;
done_testing();
