# 022_xa_crash.pl: mode xa across crashes.
#
# Each case moves money on its own account (1, 2, 3 on both banks), so a
# case that goes wrong does not hold locks the next one needs.
#
#  - immediate shutdown of the participant while step 1 is prepared and
#    step 2 runs: the prepared transaction survives the crash, step 2's
#    attempt dies with it and is run again; the saga succeeds and nothing
#    stays prepared;
#  - immediate shutdown of the coordinator (which loses the progress the
#    worker wrote asynchronously, see below), restarted at once, while step 2
#    still runs: whichever way the race goes, the saga ends consistent
#    (succeeded with both applied, or aborted with none) and the recovery
#    sweep leaves no prepared transaction behind (steps with short
#    timeouts and 2 attempts keep the slow paths short);
#  - immediate shutdown of the coordinator between prepare and commit, with
#    the default settings: step 1 is prepared, step 2 is still running and
#    prepares while the coordinator is down; after the restart the saga
#    ends consistent and no prepared transaction is left.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;
use SagaModes;

my ($coord, $part) =
  standard_setup(accounts => { 1 => 100, 2 => 100, 3 => 100 });
# The worker writes progress (a step started, a step prepared) with
# synchronous_commit off and only decisions durably, relying on the barrier
# after a crash that lost progress.  A slow WAL writer makes an immediate
# shutdown lose that progress every time, not only when it falls in the
# usual 200 ms window, so the coordinator crashes below test that path.
$coord->append_conf('postgresql.conf', 'wal_writer_delay = 10s');
$coord->reload;

my $xact_names =
  q{SELECT string_agg(database || ':' || gid, ' ' ORDER BY gid) FROM pg_prepared_xacts};

# A query counting the saga's prepared transactions on the participant,
# named "pgsaga_<coordinator>_<internal id>_<step>".
sub prepared_query
{
	my ($gid) = @_;
	my $id = $coord->safe_psql('coord',
		'SELECT id FROM saga.gtx WHERE gid = ' . quote_literal($gid));
	return "SELECT count(*) FROM pg_prepared_xacts WHERE gid ~ '^pgsaga_[0-9a-f]+_${id}_[0-9]+\$'";
}

sub prepared_of
{
	my ($gid) = @_;
	return $part->safe_psql('postgres', prepared_query($gid));
}

sub wait_none_prepared
{
	my ($gid, $what) = @_;
	ok(poll_until($part, 'postgres', prepared_query($gid), '0'),
		"$what: no prepared transaction of the saga is left")
	  or diag $part->safe_psql('postgres', $xact_names);
	return;
}

# Balances and ledgers on account $id agree with the final status:
# succeeded means both steps applied once, aborted means neither.
sub check_consistent
{
	my ($gid, $status, $id, $amount, $what) = @_;
	ok($status eq 'succeeded' || $status eq 'aborted',
		"$what: the saga is final ($status)");
	my $applied = $status eq 'succeeded';
	is( $part->safe_psql('bank_a',
			"SELECT trim_scale(balance) FROM account WHERE id = $id"),
		100 - ($applied ? $amount : 0),
		"$what: bank_a balance matches $status");
	is( $part->safe_psql('bank_b',
			"SELECT trim_scale(balance) FROM account WHERE id = $id"),
		100 + ($applied ? $amount : 0),
		"$what: bank_b balance matches $status");
	is( ledger_rows($part, 'bank_a', $gid),
		$applied ? "1|action|$id|-$amount" : '',
		"$what: bank_a ledger matches $status");
	is( ledger_rows($part, 'bank_b', $gid),
		$applied ? "2|action|$id|$amount" : '',
		"$what: bank_b ledger matches $status");
	return;
}

# A two-step xa transfer on account $id; step 2 sleeps 3 s first.
sub submit_transfer
{
	my ($gid, $id, $amount, %step_opts) = @_;
	return submit_saga(
		$coord,
		gid => $gid,
		mode => 'xa',
		steps => [
			{
				target => 'bank_a',
				action => move_sql($id, -$amount),
				expect_rows => 1,
				%step_opts
			},
			{
				target => 'bank_b',
				action => move_sql($id, $amount, 'action', sleep => 3),
				expect_rows => 1,
				%step_opts
			}
		]);
}

# --- immediate shutdown of the participant while prepared -----------------
my $gid = submit_transfer('xa-part-crash', 2, 20);
ok(wait_for_sleeper($part, 'bank_b'), 'participant crash: step 2 is running');
is(step_rows($coord, $gid), "1|prepared\n2|running", 'step 1 is prepared');
is(prepared_of($gid), 1, 'the participant holds the prepared step 1');

$part->stop('immediate');
ok( poll_until(
		$coord, 'coord',
		"SELECT attempts > 0 AND next_attempt_at IS NOT NULL FROM saga.steps "
		  . "WHERE gid = 'xa-part-crash' AND step = 2"),
	'the coordinator noticed the lost call of step 2 and will retry');
isnt(saga_status($coord, $gid), 'succeeded',
	'the saga cannot finish while the participant is down');
$part->start;
is(prepared_of($gid), 1,
	'the prepared transaction of step 1 survived the crash');

my $status = wait_saga($coord, $gid);
is($status, 'succeeded', 'the saga completes after the participant restart');
check_consistent($gid, $status, 2, 20, 'participant crash');
is(step_rows($coord, $gid), "1|succeeded\n2|succeeded", 'both steps committed');
wait_none_prepared($gid, 'participant crash');
is(barrier_rows($part, 'bank_b', $gid), '2|action|action',
	'bank_b: one barrier record for step 2 (the lost attempt left none)');

# --- coordinator crash, restarted while step 2 still runs ------------------
$gid = submit_transfer('xa-coord-race', 3, 10,
	timeout => '5s', max_attempts => 2);
ok(wait_for_sleeper($part, 'bank_b'), 'quick restart: step 2 is running');
is(step_rows($coord, $gid), "1|prepared\n2|running", 'step 1 is prepared');
$coord->stop('immediate');
$coord->start;
$status = wait_saga($coord, $gid);
note "xa-coord-race ended $status; history:\n" . history_rows($coord, $gid);
check_consistent($gid, $status, 3, 10, 'quick restart');
# aborted: step 1 is rolled back, or failed if the crash lost the record of
# its prepare (the sweep then rolls the orphan back)
like(
	$coord->safe_psql('coord',
		"SELECT status FROM saga.steps WHERE gid = 'xa-coord-race' AND step = 1"),
	$status eq 'succeeded' ? qr/^succeeded$/ : qr/^(compensated|failed)$/,
	'quick restart: step 1 committed or rolled back with the saga')
  or diag history_rows($coord, $gid);
wait_none_prepared($gid, 'quick restart');
check_consistent($gid, $status, 3, 10,
	'quick restart, once nothing is prepared');

# --- immediate shutdown of the coordinator between prepare and commit -----
$gid = submit_transfer('xa-coord-crash', 1, 30);
ok(wait_for_sleeper($part, 'bank_b'), 'coordinator crash: step 2 is running');
is(step_rows($coord, $gid), "1|prepared\n2|running",
	'the coordinator recorded step 1 as prepared');
my $prepared_q = prepared_query($gid);
is(prepared_of($gid), 1, 'the participant holds the prepared step 1');

$coord->stop('immediate');
# The participant either notices its caller is gone and aborts step 2
# (client_connection_check_interval, set by the worker), or runs it to its
# end and prepares it: both must end consistent.
ok( poll_until($part, 'postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE wait_event = 'PgSleep'"),
	'step 2 ended on the participant while the coordinator was down');
like($part->safe_psql('postgres', $prepared_q), qr/^[12]$/,
	'step 1 (and perhaps step 2) is left prepared while the coordinator is down')
  or diag $part->safe_psql('postgres', $xact_names);
$coord->start;

$status = wait_saga($coord, $gid);
note "xa-coord-crash ended $status; history:\n" . history_rows($coord, $gid);
check_consistent($gid, $status, 1, 30, 'coordinator crash');
like(
	step_rows($coord, $gid),
	$status eq 'succeeded'
	? qr/^1\|succeeded\n2\|succeeded$/
	: qr/^1\|(compensated|failed)\n2\|(compensated|failed|skipped)$/,
	'coordinator crash: step statuses match the saga')
  or diag history_rows($coord, $gid);
wait_none_prepared($gid, 'coordinator crash');
if ($status eq 'succeeded')
{
	like(history_events($coord, $gid), qr/2:probe_started .*2:action_succeeded/,
		'history: the restarted worker probed step 2 before it prepared it');
	is(barrier_rows($part, 'bank_b', $gid), '2|action|action',
		'bank_b: one barrier record for step 2');
}

is($part->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'),
	'0', 'nothing prepared is left on the participant');
is(ledger_duplicates($part, 'bank_a') . ledger_duplicates($part, 'bank_b'),
	'', 'no branch applied twice');

$coord->stop;
$part->stop;
done_testing();
