# 006_deadline.pl: a saga past its deadline rolls back.
#
# timeout => '1 second' and a second step that sleeps beyond it: the saga
# ends aborted, step 1 is compensated, the balances are restored, and the
# history shows why.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;

my ($coord, $part) = standard_setup();

my $gid = submit_saga(
	$coord,
	gid => 'deadline-1',
	timeout => '1 second',
	steps => [
		{
			target => 'bank_a',
			action => move_sql(1, -30),
			compensation => move_sql(1, 30, 'compensation')
		},
		{
			target => 'bank_b',
			action => move_sql(1, 30, 'action', sleep => 6),
			compensation => move_sql(1, -30, 'compensation')
		}
	]);
is( $coord->safe_psql(
		'coord',
		"SELECT deadline IS NOT NULL AND deadline > submitted_at FROM saga.transactions WHERE gid = 'deadline-1'"
	),
	't',
	'the deadline is set from the submit');
is(wait_saga($coord, $gid), 'aborted', 'the saga past its deadline aborted');
is(step_rows($coord, $gid), "1|compensated\n2|compensated",
	'step 1 compensated, the in-flight step 2 compensated');
is_deeply(balances($part, 'bank_a'), { 1 => 100, 2 => 100 }, 'bank_a restored');
is_deeply(balances($part, 'bank_b'), { 1 => 100, 2 => 100 }, 'bank_b restored');
is(ledger_rows($part, 'bank_a', $gid), "1|action|1|-30\n1|compensation|1|30",
	'bank_a: action and compensation once each');
is(ledger_sum($part, 'bank_b', $gid), '0', 'bank_b: no net effect');
like(ledger_rows($part, 'bank_b', $gid),
	qr/^(2\|action\|1\|30\n2\|compensation\|1\|-30)?$/,
	'bank_b: step 2 either never landed or was compensated once');

# the in-flight step was cancelled on the participant
ok( poll_until(
		$part, 'bank_b',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
	),
	'no step left running on bank_b');

my $history = history_rows($coord, $gid);
like($history, qr/deadline|time.?out|timed out/i, 'history tells the deadline passed')
  or diag $history;
like($history, qr/^1\|[^\n]*compensat/im, 'history shows step 1 compensated');
like($history, qr/aborted/i, 'history shows the final status');
is( $coord->safe_psql(
		'coord',
		"SELECT finished_at IS NOT NULL FROM saga.transactions WHERE gid = 'deadline-1'"),
	't',
	'finished_at set');

# a saga that meets its deadline is unaffected
$gid = submit_saga(
	$coord,
	gid => 'deadline-ok',
	timeout => '1 minute',
	steps => [
		{
			target => 'bank_a',
			action => move_sql(2, -5),
			compensation => move_sql(2, 5, 'compensation')
		}
	]);
is(wait_saga($coord, $gid), 'succeeded', 'a saga within its deadline succeeds');
is_deeply(balances($part, 'bank_a'), { 1 => 100, 2 => 95 }, 'bank_a');

$coord->stop;
$part->stop;
done_testing();
